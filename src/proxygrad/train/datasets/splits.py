""":func:`load_splits`: a :class:`DataConfig` to its classes and training and test datasets, each dataset read by
its own module."""
from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from .caltech101 import caltech101_samples
from .common import Samples
from .config import DataConfig
from .cub200 import cub200_samples
from .digits import digits_tensors
from .flowers102 import flowers102_samples
from .imagefolder import imagefolder_samples
from .images import ImageFiles


@dataclass
class Splits:
    """A dataset's classes and its training and test splits."""

    classes: tuple[str, ...]
    train: Dataset
    test: Dataset


def _samples(cfg: DataConfig, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """(classes, training samples, test samples) of an on-disk dataset, from its reader."""
    if cfg.dataset == "caltech101":
        return caltech101_samples(cfg, seed)
    if cfg.dataset == "cub200":
        return cub200_samples(cfg)
    if cfg.dataset == "flowers102":
        return flowers102_samples(cfg)
    return imagefolder_samples(cfg, seed)


def load_splits(cfg: DataConfig, seed: int = 0) -> Splits:
    """The classes and the training and test :class:`Dataset` of ``cfg`` (images in [0, 1], uncropped).

    ``seed`` draws the Caltech101 and unsplit-ImageFolder splits; the other datasets have official ones.
    """
    if cfg.dataset == "digits":
        return Splits(tuple(str(d) for d in range(10)), digits_tensors("train"), digits_tensors("test"))
    classes, train, test = _samples(cfg, seed)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"dataset {cfg.dataset} at {cfg.root} has {len(train)} training and {len(test)} test "
                         f"images; both splits need some")
    return Splits(classes, ImageFiles(train, cfg.resize), ImageFiles(test, cfg.resize))
