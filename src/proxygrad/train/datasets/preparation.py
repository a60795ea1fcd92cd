""":func:`prepare`: decode every image once, drop (or name) corrupt files, measure the training mean and std."""
from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from .config import DataConfig
from .crops import CenterCrop
from .splits import load_splits


class _Guarded(Dataset):
    """(image or None, label, index, error text) so that one bad file does not stop a scan."""

    def __init__(self, view: Dataset):
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int):
        try:
            image, label = self.view[index]
            return image, label, index, None
        except ValueError as err:
            return None, -1, index, str(err)


def _as_list(batch):
    return batch


def scan(view: Dataset, *, workers: int = 0, progress: bool = False, desc: str = "scan",
         stats: bool = False) -> tuple[list[int], list[str], tuple[float, ...], tuple[float, ...]]:
    """Decode every image of ``view`` once.

    Returns (indices that failed, their error texts, per-channel mean, per-channel std); the mean and std are
    over every pixel of every readable image (float64 sums; ``stats=False`` returns empty tuples).
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = DataLoader(_Guarded(view), batch_size=32, num_workers=workers, collate_fn=_as_list)
    total = sq = None
    count = 0
    bad, errors = [], []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        for image, _, index, error in batch:
            if error is not None:
                bad.append(index)
                errors.append(error)
            elif stats:
                x = image.double().flatten(1)
                total = x.sum(1) if total is None else total + x.sum(1)
                sq = (x * x).sum(1) if sq is None else sq + (x * x).sum(1)
                count += x.shape[1]
    if not stats or count == 0:
        return bad, errors, (), ()
    mean = total / count
    std = (sq / count - mean ** 2).clamp_min(0).sqrt()
    return bad, errors, tuple(mean.tolist()), tuple(max(s, 1e-6) for s in std.tolist())


@dataclass
class Prepared:
    """What :func:`prepare` found: the usable splits, the training split's RGB mean and std ([0, 1] units,
    measured on the center crops the network is tested on) and the files that were skipped."""

    classes: tuple[str, ...]
    train: Dataset
    test: Dataset
    mean: tuple[float, ...]
    std: tuple[float, ...]
    skipped: list[str]


def prepare(cfg: DataConfig, seed: int = 0, *, workers: int = 0, progress: bool = False,
            known: dict | None = None) -> Prepared:
    """Load the splits, decode every image once (corrupt files: a ValueError naming them, or dropped and
    counted when ``cfg.skip_corrupt``) and measure the training split's mean and std.

    ``known`` (``{"mean", "std", "skipped"}`` from an earlier run, e.g. a checkpoint) skips the scan.
    """
    splits = load_splits(cfg, seed)
    train, test = splits.train, splits.test
    if known is not None:
        skipped = set(known["skipped"])
        train, test = (d.subset([i for i in range(len(d)) if d.name(i) not in skipped]) for d in (train, test))
        return Prepared(splits.classes, train, test, tuple(known["mean"]), tuple(known["std"]), list(skipped))
    skipped = []
    bad, errors, mean, std = scan(CenterCrop(train, cfg.image_size), workers=workers, progress=progress,
                                  desc="training images", stats=True)
    bad_test, errors_test, _, _ = scan(CenterCrop(test, cfg.image_size), workers=workers, progress=progress,
                                       desc="test images")
    if bad or bad_test:
        if not cfg.skip_corrupt:
            raise ValueError(f"{len(bad) + len(bad_test)} images cannot be read; first: {(errors + errors_test)[0]}")
        skipped = [train.name(i) for i in bad] + [test.name(i) for i in bad_test]
        train = train.subset(sorted(set(range(len(train))) - set(bad)))  # mean/std: readable images only
        test = test.subset(sorted(set(range(len(test))) - set(bad_test)))
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"no readable {'training' if len(train) == 0 else 'test'} images left in {cfg.root}")
    return Prepared(splits.classes, train, test, mean, std, skipped)
