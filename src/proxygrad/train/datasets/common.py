"""What every on-disk reader shares: :class:`Samples` (files + labels of one split) and the folder checks.

A reader (one module per dataset) returns ``(classes, train, test)``: the class names and two :class:`Samples`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import DOWNLOADABLE, DataConfig


@dataclass
class Samples:
    """One split on disk: image files and their labels (int in 0..len(classes)-1)."""

    files: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, keep: Sequence[int]) -> Samples:
        return Samples([self.files[i] for i in keep], [self.labels[i] for i in keep])


def dataset_root(cfg: DataConfig) -> Path:
    """``cfg.root`` as a Path; ValueError when unset, FileNotFoundError when missing (and no download)."""
    if not cfg.root:
        raise ValueError(f"dataset {cfg.dataset} needs a root folder (--root)")
    root = Path(cfg.root).expanduser()
    if not root.is_dir() and not cfg.download:
        raise FileNotFoundError(f"dataset root {root} does not exist" +
                                (" (pass --download to fetch it through torchvision)"
                                 if cfg.dataset in DOWNLOADABLE else ""))
    return root


def first_dir(candidates: Sequence[Path], what: str, layout: str) -> Path:
    """The first existing folder of ``candidates``; FileNotFoundError naming them and ``layout`` otherwise."""
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"no {what} folder found; looked for {', '.join(str(p) for p in candidates)}. "
                            f"Expected layout: {layout}")


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (torchvision's extensions), sorted."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def check_exist(files: list[Path]) -> None:
    """FileNotFoundError counting and naming (up to 3) the ``files`` that are missing."""
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image files listed by the dataset are missing, e.g. "
                                f"{', '.join(str(f) for f in missing[:3])}")
