"""The run directory of ``proxygrad visualize``: PNGs, a grid, an activation-vs-step plot, results.json."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from ..am.render import RenderResult
from ..models.spec import InputSpec
from ..surrogates import is_ascent
from ..surrogates.patch import KINDS, check_kinds
from .figures import image_grid, trace_plot
from .files import to_uint8, versions, write_bytes, write_figure, write_json, write_png
from .html import write_report


SLOPED = ("leaky", "proxygrad")
RECTIFIERS_ONLY = ("rectifiers",)  # the default kinds: what labels leave unsaid
NOT_ASCENT_NOTE = ("not an ascent direction of the objective (it drops every negative gradient at every "
                   "rectifier): shown for comparison, its activation does not measure an optimizer.")


def kinds_suffix(kinds=RECTIFIERS_ONLY) -> str:
    """What a proxy changes beyond the default, for labels: "" (rectifiers only), " [all]" (every kind) or
    e.g. " [rectifiers+smooth]", " [pooling]" (kinds in KINDS order). ``kinds``: as ``patched(kinds=...)``."""
    kinds = check_kinds(kinds)
    if kinds == RECTIFIERS_ONLY:
        return ""
    if set(kinds) == set(KINDS):
        return " [all]"
    return f" [{'+'.join(k for k in KINDS if k in kinds)}]"


def method_label(method: str, slope: float, temperature: float = 1.0, kinds=RECTIFIERS_ONLY) -> str:
    """The name a method's results go by: "relu", "proxygrad s=0.075", "softgate t=0.5", "redirected"; with
    kinds beyond rectifiers (method proxygrad) e.g. "proxygrad s=0.075 [all]" (see ``kinds_suffix``)."""
    if method in SLOPED:
        return f"{method} s={slope:g}{kinds_suffix(kinds)}"
    if method == "softgate":
        return f"{method} t={temperature:g}{kinds_suffix(kinds)}"
    return f"{method}{kinds_suffix(kinds)}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "objective"


def _class_name(spec: InputSpec, index: int | None) -> str | None:
    if index is None:
        return None
    return spec.class_names[index] if spec.class_names and 0 <= index < len(spec.class_names) else str(index)


def normalized_transparency(transparency: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """MACO's transparency map (C, H, W) >= 0 summed over channels and divided by its own max: (1, H, W) in
    [0, 1]. An all-zero map (or None: a rendering of 0 steps, shaped ``like`` the image) stays zero."""
    if transparency is None:
        return torch.zeros(1, *like.shape[1:])
    total = transparency.detach().float().cpu().sum(0, keepdim=True)
    peak = total.max()
    return total / peak if peak > 0 else torch.zeros_like(total)


def write_alpha_png(path: str | Path, image: torch.Tensor, alpha: torch.Tensor) -> Path:
    """Save an image (C, H, W) in [-1, 1] (C 1 or 3; gray is repeated into RGB) as an RGBA PNG whose alpha is
    ``alpha`` (1, H, W) in [0, 1] (0: transparent, 1: opaque), atomically."""
    rgb = to_uint8(image)
    rgb = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb
    opacity = to_uint8(alpha * 2 - 1)  # [0, 1] -> [-1, 1] -> 0..255
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([rgb, opacity])).save(buffer, format="PNG")
    return write_bytes(path, buffer.getvalue())


def _write_transparency(run_dir: Path, file: Path, image: torch.Tensor, transparency) -> dict:
    """The normalized map as a grayscale PNG and the image with it as alpha, next to ``file``; their paths."""
    alpha = normalized_transparency(transparency, image)
    stem = file.with_suffix("")
    paths = {"transparency": f"{stem}_transparency.png", "alpha": f"{stem}_alpha.png"}
    write_png(run_dir / paths["transparency"], alpha * 2 - 1)
    write_alpha_png(run_dir / paths["alpha"], image, alpha)
    return paths


def method_summary(result: RenderResult, targets: Sequence[int | None]) -> dict:
    """Mean and std of the original network's activation; share of images classified as their target;
    ``ascent``: whether the method's gradient is an ascent direction of the objective (False for guided)."""
    hits = [int(p) == t for p, t in zip(result.predicted.tolist(), targets) if t is not None]
    return {"ascent": is_ascent(result.config.method), "seconds": round(result.seconds, 3),
            "batch_size": result.batch_size, "mean_activation": result.activation.mean().item(),
            "std_activation": result.activation.std().item() if len(result.activation) > 1 else 0.0,
            "target_share": sum(hits) / len(hits) if hits else None,
            "images_with_zero_gradient_steps": int((result.zero_gradient_steps > 0).sum()),
            "images_with_nonfinite_gradient_steps": int((result.nonfinite_gradient_steps > 0).sum())}


def write_visualization(run_dir: str | Path, results: Mapping[str, RenderResult], spec: InputSpec,
                        targets: Sequence[int | None], settings: dict, seconds: float) -> dict:
    """Write the run directory and return the results.json payload.

    ``results[method]`` must all render the same objectives and seeds in the same order; ``targets[i]``
    is the class objective i asks for (or None). A result rendered with ``transparency=True`` also gets, per
    image, its normalized transparency map and an RGBA copy (records' "transparency" and "alpha" files).
    """
    run_dir = Path(run_dir)
    first = next(iter(results.values()))
    images = []
    for method, result in results.items():
        for i, record in enumerate(result.records()):
            file = Path("images") / _slug(method) / f"{i:03d}_{_slug(record['objective'])}_seed{record['seed']}.png"
            write_png(run_dir / file, result.images[i])
            images.append({"method": method, **record, "predicted_name": _class_name(spec, record["predicted"]),
                           "target": targets[i], "target_name": _class_name(spec, targets[i]), "file": str(file)})
            if result.config.transparency:
                maps = None if result.transparency is None else result.transparency[i]
                images[-1].update(_write_transparency(run_dir, file, result.images[i], maps))
    labels = [f"{o} / seed {s}" if len(set(first.seeds)) > 1 else o for o, s in zip(first.objectives, first.seeds)]
    notes = {m: [f"{a:.2f} -> {_class_name(spec, p)}" for a, p in zip(r.activation.tolist(), r.predicted.tolist())]
             for m, r in results.items()}
    write_figure(run_dir / "grid.png", image_grid({m: r.images for m, r in results.items()}, labels, notes))
    traces = {m: (r.trace_steps, r.trace) for m, r in results.items()}
    write_figure(run_dir / "activation.png", trace_plot(traces, "objective (original network)"))
    methods = {m: method_summary(r, targets) for m, r in results.items()}
    payload = {"command": "visualize", "title": f"proxygrad visualize: {settings.get('model', '')}",
               "findings": findings(methods), "settings": settings, "versions": versions(), "seconds": round(seconds, 3),
               "methods": methods,
               "files": {"grid": "grid.png", "activation_plot": "activation.png"},
               "trace_steps": first.trace_steps,
               "traces": {m: r.trace.tolist() for m, r in results.items()},
               "images": images}
    write_json(run_dir / "results.json", payload)
    write_report(run_dir)
    return payload


def findings(methods: dict[str, dict]) -> list[str]:
    """One sentence per non-baseline method: is its mean activation higher than relu's? (when relu ran);
    and a note for each method that is not an ascent direction (guided)."""
    base = methods.get("relu")
    lines = []
    for method, summary in methods.items():
        if method == "relu":
            continue
        if base is not None:
            verdict = "higher than" if summary["mean_activation"] > base["mean_activation"] else "NOT higher than"
            lines.append(f"{method}: mean activation {summary['mean_activation']:.3g}, {verdict} relu's "
                         f"{base['mean_activation']:.3g} (original network).")
        if not summary.get("ascent", True):
            lines.append(f"{method}: {NOT_ASCENT_NOTE}")
    return lines
