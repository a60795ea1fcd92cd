"""The dataset names and :class:`DataConfig`: which data, and how each image reaches the network."""
from __future__ import annotations

from dataclasses import dataclass, replace

DATASETS = ("caltech101", "cub200", "flowers102", "imagefolder", "digits")
DOWNLOADABLE = ("caltech101", "flowers102")
CUB_URL = "https://www.vision.caltech.edu/datasets/cub_200_2011/"


@dataclass(frozen=True)
class DataConfig:
    """Which data and how each image reaches the network.

    Attributes:
        dataset: one of ``DATASETS``.
        root: the folder holding the dataset (not needed for digits).
        image_size: side of the square crop the network sees, pixels.
        resize: the shorter image side is resized to this before cropping (0 or None: keep the size).
        crop_padding: zero padding (pixels) around the image before the random crop.
        flip: random horizontal flips (probability 0.5) during training.
        train_per_class, test_per_class: Caltech101's per-class split sizes.
        test_fraction: share of each class held out for an ImageFolder tree without train/test folders.
        download: fetch the dataset through torchvision when it is missing (caltech101, flowers102).
        skip_corrupt: drop images that cannot be decoded (and count them) instead of stopping with an error.
    """

    dataset: str = "caltech101"
    root: str | None = None
    image_size: int = 224
    resize: int | None = 256
    crop_padding: int = 0
    flip: bool = True
    train_per_class: int = 20
    test_per_class: int = 10
    test_fraction: float = 0.2
    download: bool = False
    skip_corrupt: bool = False

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {', '.join(DATASETS)}")
        for name in ("image_size", "train_per_class", "test_per_class"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.resize is not None and (not isinstance(self.resize, int) or self.resize < 0):
            raise ValueError(f"resize must be an int >= 0 (0: keep the size), got {self.resize!r}")
        if self.resize == 0:
            object.__setattr__(self, "resize", None)
        if not isinstance(self.crop_padding, int) or self.crop_padding < 0:
            raise ValueError(f"crop_padding must be an int >= 0, got {self.crop_padding!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.download and self.dataset not in DOWNLOADABLE:
            raise ValueError(f"{self.dataset} cannot be downloaded through torchvision (only "
                             f"{', '.join(DOWNLOADABLE)})" + (f"; get CUB_200_2011.tgz from {CUB_URL} and extract "
                                                              f"it under the root" if self.dataset == "cub200" else ""))


def data_config(dataset: str, **overrides) -> DataConfig:
    """The defaults for ``dataset`` (224 crops of images resized to 256 with flips; digits: 32 x 32, 4 px
    padding, no flips since mirrored digits are other digits), with ``overrides`` (None values ignored)."""
    base = DataConfig(dataset="digits")
    if dataset == "digits":
        base = replace(base, image_size=32, resize=None, crop_padding=4, flip=False)
    given = {k: v for k, v in overrides.items() if v is not None}
    if dataset != "digits" and not given.get("root"):
        raise ValueError(f"dataset {dataset} needs a root folder (--root)")
    return replace(base, dataset=dataset, **given)
