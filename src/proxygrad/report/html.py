"""A static, self-contained HTML report of any run directory (opens from disk; images embedded).

It reads the run's ``results.json`` and shows: the title and findings, the settings, the tables (``tables``:
CSV files of the run, or ``methods`` summaries), the figures (``files``: named PNGs), and the per-image
PNGs (``images``: records with ``file``, grouped by ``method``; at most ``max_images`` per group). A small
inline script marks the page with ``data-images-ok="decoded/total"`` once every image has loaded, so a
headless browser can check that all images decode.
"""
from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

from .files import write_bytes

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 8px}
th{background:#f3f3f3}figure{display:inline-block;margin:4px;text-align:center;font-size:0.75em}
figure img{image-rendering:pixelated;min-width:64px}img.plot{max-width:100%}.finding{margin:0.2em 0}"""

CHECK_IMAGES = """window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-ok', ok + '/' + images.length);
});"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str)
        return text if len(text) < 200 else text[:197] + "..."
    return "" if value is None else str(value)


def _settings(settings: dict) -> str:
    return _table([{"setting": k, "value": v} for k, v in settings.items()])


def _tables(run_dir: Path, payload: dict) -> str:
    parts = []
    for table in payload.get("tables", []):
        with open(run_dir / table["csv"], newline="") as handle:
            rows = list(csv.DictReader(handle))
        parts.append(f"<h3>{html.escape(table['title'])}</h3>{_table(rows)}")
    if "methods" in payload:
        rows = [{"method": m, **summary} for m, summary in payload["methods"].items()]
        parts.append(f"<h3>Per method</h3>{_table(rows)}")
    return "".join(parts)


def _figures(run_dir: Path, payload: dict) -> str:
    return "".join(f"<h3>{html.escape(name)}</h3><img class='plot' alt='{html.escape(name)}' "
                   f"src='{_data_uri(run_dir / file)}'>" for name, file in payload.get("files", {}).items())


def _images(run_dir: Path, payload: dict, max_images: int) -> str:
    groups: dict[str, list[dict]] = {}
    for record in payload.get("images", []):
        groups.setdefault(str(record.get("method", "images")), []).append(record)
    parts = []
    for method, records in groups.items():
        shown = records[:max_images]
        note = f" (first {max_images} of {len(records)})" if len(records) > max_images else ""
        figures = "".join(
            f"<figure><img alt='{html.escape(str(r.get('objective', '')))}' src='{_data_uri(run_dir / r['file'])}'>"
            f"<figcaption>{html.escape(str(r.get('objective', '')))}<br>{_fmt(r.get('activation'))}</figcaption>"
            f"</figure>" for r in shown)
        parts.append(f"<h3>{html.escape(method)}{note}</h3>{figures}")
    return "".join(parts)


def render_html(run_dir: str | Path, max_images: int = 200) -> str:
    """The report page of ``run_dir`` as a string; FileNotFoundError when it has no results.json."""
    run_dir = Path(run_dir)
    results = run_dir / "results.json"
    if not results.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no results.json")
    payload = json.loads(results.read_text())
    title = payload.get("title") or f"proxygrad {payload.get('command', 'run')}"
    findings = "".join(f"<p class='finding'>{html.escape(line)}</p>" for line in payload.get("findings", []))
    sections = [("Findings", findings), ("Tables", _tables(run_dir, payload)),
                ("Figures", _figures(run_dir, payload)), ("Images", _images(run_dir, payload, max_images)),
                ("Settings", _settings(payload.get("settings", {}))),
                ("Versions", _settings(payload.get("versions", {})))]
    body = "".join(f"<h2>{name}</h2>{content}" for name, content in sections if content)
    seconds = payload.get("seconds")
    timing = f"<p>Run time: {seconds:.1f} s</p>" if isinstance(seconds, (int, float)) else ""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{CHECK_IMAGES}</script></head>"
            f"<body><h1>{html.escape(title)}</h1>{timing}{body}</body></html>")


def write_report(run_dir: str | Path, max_images: int = 200) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    page = render_html(run_dir, max_images)
    return write_bytes(Path(run_dir) / "report.html", page.encode())
