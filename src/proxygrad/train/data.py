"""Image classification data for training, as users have it on disk (the paper's Appendix 11.1).

Datasets (``DATASETS``), each read from its own files:

- ``caltech101``: torchvision's layout ``ROOT/caltech101/101_ObjectCategories/<class>/image_XXXX.jpg``; the 101
  classes without ``BACKGROUND_Google``; per seed, ``train_per_class`` (20) training and ``test_per_class`` (10)
  test images drawn at random from each class. ``download=True`` fetches it through torchvision.
- ``cub200``: CUB-200-2011's own files under ``ROOT/CUB_200_2011/``: ``images.txt``, ``image_class_labels.txt``,
  ``train_test_split.txt``, ``classes.txt`` and ``images/`` (5994 training, 5794 test images). torchvision offers
  no download.
- ``flowers102``: torchvision's layout ``ROOT/flowers-102/`` with ``jpg/``, ``imagelabels.mat``, ``setid.mat``;
  the official training and validation sets merged (2040 training images), the test set (6149) for testing.
  ``download=True`` fetches it through torchvision.
- ``imagefolder``: any ``ROOT/train/<class>/*`` + ``ROOT/test/<class>/*`` (or ``val/``) tree, or ``ROOT/<class>/*``
  split per seed with ``test_fraction`` of each class held out.
- ``digits``: the bundled scikit-learn digits (1347 training, 450 test images, 32 x 32, gray as RGB).

Every split is a :class:`torch.utils.data.Dataset` of ``(image, label)`` with images float32 (3, H, W) in
[0, 1] pixel units (resized so the shorter side is ``resize``). :class:`RandomCropFlip` and
:class:`CenterCrop` crop and normalize them; the random crop offset and flip of a sample depend only on
(seed, epoch, index), never on the batch, the worker or the process, so a resumed or data-parallel run sees
exactly the same inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

DATASETS = ("caltech101", "cub200", "flowers102", "imagefolder", "digits")
DOWNLOADABLE = ("caltech101", "flowers102")
CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
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


# ---- sample lists --------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """One split on disk: image files and their labels (int in 0..len(classes)-1)."""

    files: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, keep: Sequence[int]) -> Samples:
        return Samples([self.files[i] for i in keep], [self.labels[i] for i in keep])


@dataclass
class Splits:
    """A dataset's classes and its training and test splits."""

    classes: tuple[str, ...]
    train: Dataset
    test: Dataset


def _first_dir(candidates: Sequence[Path], what: str, layout: str) -> Path:
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"no {what} folder found; looked for {', '.join(str(p) for p in candidates)}. "
                            f"Expected layout: {layout}")


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise ValueError(f"dataset {cfg.dataset} needs a root folder (--root)")
    root = Path(cfg.root).expanduser()
    if not root.is_dir() and not cfg.download:
        raise FileNotFoundError(f"dataset root {root} does not exist" +
                                (" (pass --download to fetch it through torchvision)"
                                 if cfg.dataset in DOWNLOADABLE else ""))
    return root


def _image_files(folder: Path) -> list[Path]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def caltech101_samples(cfg: DataConfig, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """Caltech101 (101 classes, no background): per class ``train_per_class`` + ``test_per_class`` images drawn
    without replacement by ``numpy.random.default_rng(seed)``, class by class in sorted order."""
    root = _root(cfg)
    if cfg.download:
        from torchvision.datasets import Caltech101

        Caltech101(str(root), download=True)
    layout = "ROOT/caltech101/101_ObjectCategories/<class>/image_0001.jpg (torchvision's Caltech101)"
    folder = _first_dir([root / "caltech101" / "101_ObjectCategories", root / "101_ObjectCategories"]
                        + ([root] if root.name == "101_ObjectCategories" else []), "101_ObjectCategories", layout)
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "BACKGROUND_Google"))
    if not classes:
        raise FileNotFoundError(f"{folder} holds no class folders; expected layout: {layout}")
    rng = np.random.default_rng(seed)
    need = cfg.train_per_class + cfg.test_per_class
    train, test = Samples([], []), Samples([], [])
    for label, name in enumerate(classes):
        files = _image_files(folder / name)
        if len(files) < need:
            raise ValueError(f"class folder {folder / name} has {len(files)} images, fewer than the "
                             f"{cfg.train_per_class} + {cfg.test_per_class} the split draws")
        order = rng.permutation(len(files))
        for target, picks in ((train, order[:cfg.train_per_class]), (test, order[cfg.train_per_class:need])):
            target.files += [files[i] for i in picks]
            target.labels += [label] * len(picks)
    return classes, train, test


def _read_table(path: Path, columns: int) -> list[list[str]]:
    """Rows of a whitespace-separated text file with ``columns`` fields (the last one may hold spaces)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (CUB-200-2011 needs {', '.join(CUB_FILES)} and images/)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            raise ValueError(f"{path}:{number}: expected {columns} fields, got {line!r}")
        rows.append(fields)
    return rows


def cub200_samples(cfg: DataConfig) -> tuple[tuple[str, ...], Samples, Samples]:
    """CUB-200-2011 with its official split (``train_test_split.txt``: 1 = training)."""
    root = _root(cfg)
    layout = f"ROOT/CUB_200_2011/ with {', '.join(CUB_FILES)} and images/<class>/<file>.jpg"
    base = _first_dir([root / "CUB_200_2011", root], "CUB_200_2011", layout)
    if not (base / "images.txt").is_file() and not (base / "images").is_dir():
        raise FileNotFoundError(f"{base} does not hold CUB-200-2011 (no images.txt, no images/); expected {layout}")
    try:
        paths = {i: p for i, p in _read_table(base / "images.txt", 2)}
        labels = {i: int(c) - 1 for i, c in _read_table(base / "image_class_labels.txt", 2)}
        is_train = {i: t.strip() == "1" for i, t in _read_table(base / "train_test_split.txt", 2)}
        names = {int(c) - 1: n.strip() for c, n in _read_table(base / "classes.txt", 2)}
    except ValueError as err:
        raise ValueError(f"corrupt CUB-200-2011 index file: {err}") from None
    classes = tuple(names[c] for c in sorted(names))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{base / 'classes.txt'}: class ids must run from 1 to {len(names)}")
    train, test = Samples([], []), Samples([], [])
    for image_id, rel in paths.items():
        for table, name in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise ValueError(f"{base / name} has no entry for image id {image_id} ({rel})")
        if not 0 <= labels[image_id] < len(classes):
            raise ValueError(f"{base / 'image_class_labels.txt'}: image {image_id} has class "
                             f"{labels[image_id] + 1}, outside 1..{len(classes)}")
        target = train if is_train[image_id] else test
        target.files.append(base / "images" / rel.strip())
        target.labels.append(labels[image_id])
    _check_exist(train.files + test.files)
    return classes, train, test


def flowers102_samples(cfg: DataConfig) -> tuple[tuple[str, ...], Samples, Samples]:
    """Flowers102: official ``trnid`` + ``valid`` for training, ``tstid`` for testing (``setid.mat``)."""
    from scipy.io import loadmat
    from torchvision.datasets import Flowers102

    root = _root(cfg)
    if cfg.download:
        Flowers102(str(root), download=True)
    layout = "ROOT/flowers-102/ with jpg/image_00001.jpg, imagelabels.mat, setid.mat (torchvision's Flowers102)"
    base = _first_dir([root / "flowers-102", root], "flowers-102", layout)
    mats = {}
    for name in ("imagelabels.mat", "setid.mat"):
        if not (base / name).is_file():
            raise FileNotFoundError(f"{base / name} is missing; expected layout: {layout}")
        try:
            mats[name] = loadmat(base / name, squeeze_me=True)
        except Exception as err:  # scipy raises ValueError, MatReadError, ... for bad files
            raise ValueError(f"cannot read {base / name} (corrupt .mat file?): {err}") from None
    try:
        labels = np.atleast_1d(mats["imagelabels.mat"]["labels"]).astype(int) - 1
        ids = {k: np.atleast_1d(mats["setid.mat"][k]).astype(int).tolist() for k in ("trnid", "valid", "tstid")}
    except KeyError as err:
        raise ValueError(f"{base}: .mat file lacks the variable {err} (expected 'labels' and trnid/valid/tstid)") \
            from None
    n_classes = int(labels.max()) + 1
    classes = tuple(Flowers102.classes[:n_classes]) if n_classes <= len(Flowers102.classes) else \
        tuple(str(c) for c in range(n_classes))

    def split(image_ids: list[int]) -> Samples:
        bad = [i for i in image_ids if not 1 <= i <= len(labels)]
        if bad:
            raise ValueError(f"{base / 'setid.mat'} names image ids {bad[:5]} outside 1..{len(labels)}")
        return Samples([base / "jpg" / f"image_{i:05d}.jpg" for i in image_ids], [int(labels[i - 1]) for i in image_ids])

    train, test = split(ids["trnid"] + ids["valid"]), split(ids["tstid"])
    _check_exist(train.files + test.files)
    return classes, train, test


def imagefolder_samples(cfg: DataConfig, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """``ROOT/train`` + ``ROOT/test`` (or ``ROOT/val``) ImageFolder trees, or one tree split per class by seed."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    root = _root(cfg)
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes, index = find_classes(str(root / "train"))
        train = make_dataset(str(root / "train"), index, IMG_EXTENSIONS)
        test_classes, _ = find_classes(str(test_dir))
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise ValueError(f"{test_dir} has classes missing from {root / 'train'}: {', '.join(unknown[:5])}")
        test = make_dataset(str(test_dir), index, IMG_EXTENSIONS, allow_empty=True)
        pack = lambda items: Samples([Path(p) for p, _ in items], [c for _, c in items])
        return tuple(classes), pack(train), pack(test)
    classes, index = find_classes(str(root))  # FileNotFoundError naming the folder when it has no class folders
    items = make_dataset(str(root), index, IMG_EXTENSIONS)
    rng = np.random.default_rng(seed)
    train, test = Samples([], []), Samples([], [])
    for label in range(len(classes)):
        files = [Path(p) for p, c in items if c == label]
        n_test = max(1, round(cfg.test_fraction * len(files)))
        if len(files) < 2:
            raise ValueError(f"class folder {root / classes[label]} needs at least 2 images to split, has "
                             f"{len(files)}")
        order = rng.permutation(len(files))
        for target, picks in ((test, order[:n_test]), (train, order[n_test:])):
            target.files += [files[i] for i in picks]
            target.labels += [label] * len(picks)
    return tuple(classes), train, test


def _check_exist(files: list[Path]) -> None:
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image files listed by the dataset are missing, e.g. "
                                f"{', '.join(str(f) for f in missing[:3])}")


# ---- datasets ------------------------------------------------------------------------------------------------
def read_image(path: Path, resize: int | None) -> Tensor:
    """An image file as float32 (3, H, W) in [0, 1], its shorter side resized (bilinear, antialiased) to
    ``resize``. ValueError naming the file when it cannot be decoded, FileNotFoundError when it is gone."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if resize is not None:
                w, h = image.size
                scale = resize / min(w, h)
                image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image {path} (corrupt or not an image: {err}); pass --skip-corrupt to "
                         f"skip such files") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)


class ImageFiles(Dataset):
    """``(image, label)`` from files: image float32 (3, H, W) in [0, 1] (see :func:`read_image`)."""

    def __init__(self, samples: Samples, resize: int | None):
        self.samples, self.resize = samples, resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return read_image(self.samples.files[index], self.resize), self.samples.labels[index]

    def subset(self, keep: Sequence[int]) -> ImageFiles:
        return ImageFiles(self.samples.subset(keep), self.resize)

    def name(self, index: int) -> str:
        return str(self.samples.files[index])


class ImageTensors(Dataset):
    """``(image, label)`` from memory: ``images`` float32 (N, 3, H, W) in [0, 1], ``labels`` int64 (N,)."""

    def __init__(self, images: Tensor, labels: Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, keep: Sequence[int]) -> ImageTensors:
        keep = torch.as_tensor(list(keep), dtype=torch.long)
        return ImageTensors(self.images[keep], self.labels[keep])

    def name(self, index: int) -> str:
        return f"image {index}"


def digits_tensors(split: str) -> ImageTensors:
    """The bundled digits (``proxygrad.models.digits_data``) as RGB in [0, 1]: (N, 3, 32, 32)."""
    from ..models.digits import digits_data

    images, labels = digits_data(split, 32)
    return ImageTensors(((images + 1) / 2).expand(-1, 3, -1, -1).contiguous(), labels)


def load_splits(cfg: DataConfig, seed: int = 0) -> Splits:
    """The classes and the training and test :class:`Dataset` of ``cfg`` (images in [0, 1], uncropped).

    ``seed`` draws the Caltech101 and unsplit-ImageFolder splits; the other datasets have official ones.
    """
    if cfg.dataset == "digits":
        return Splits(tuple(str(d) for d in range(10)), digits_tensors("train"), digits_tensors("test"))
    if cfg.dataset == "caltech101":
        classes, train, test = caltech101_samples(cfg, seed)
    elif cfg.dataset == "cub200":
        classes, train, test = cub200_samples(cfg)
    elif cfg.dataset == "flowers102":
        classes, train, test = flowers102_samples(cfg)
    else:
        classes, train, test = imagefolder_samples(cfg, seed)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"dataset {cfg.dataset} at {cfg.root} has {len(train)} training and {len(test)} test "
                         f"images; both splits need some")
    return Splits(classes, ImageFiles(train, cfg.resize), ImageFiles(test, cfg.resize))


# ---- crops ---------------------------------------------------------------------------------------------------
def _normalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


def crop(image: Tensor, top: int, left: int, size: int) -> Tensor:
    """The ``size`` x ``size`` window of (C, H, W) ``image`` at (top, left); outside the image is 0."""
    _, h, w = image.shape
    pad = (max(0, -left), max(0, left + size - w), max(0, -top), max(0, top + size - h))
    if any(pad):
        image = F.pad(image, pad)
        top, left = top + pad[2], left + pad[0]
    return image[:, top:top + size, left:left + size]


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random numbers of one training sample in one epoch (independent of batch, worker and process)."""
    return np.random.default_rng([seed, epoch, index])


class RandomCropFlip(Dataset):
    """Training view: keys ``(index, epoch)`` -> (normalized image (3, size, size), label).

    The image is padded by ``padding`` zeros, cropped at a uniformly random position (both ranges inclusive),
    flipped horizontally with probability 0.5 when ``flip``, then normalized by ``mean``/``std`` (per channel,
    [0, 1] pixel units). The random numbers come from :func:`sample_rng` (seed, epoch, index).
    """

    def __init__(self, base: Dataset, size: int, mean: Sequence[float], std: Sequence[float], *, padding: int = 0,
                 flip: bool = True, seed: int = 0):
        self.base, self.size, self.mean, self.std = base, size, tuple(mean), tuple(std)
        self.padding, self.flip, self.seed = padding, flip, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int]:
        index, epoch = key
        image, label = self.base[index]
        rng = sample_rng(self.seed, epoch, index)
        _, h, w = image.shape
        p = self.padding
        top = int(rng.integers(0, max(h + 2 * p - self.size, 0) + 1)) - p
        left = int(rng.integers(0, max(w + 2 * p - self.size, 0) + 1)) - p
        image = crop(image, top, left, self.size)
        if self.flip and rng.random() < 0.5:
            image = image.flip(-1)
        return _normalize(image, self.mean, self.std), label


class CenterCrop(Dataset):
    """Test view: index -> (normalized central ``size`` x ``size`` crop (3, size, size), label)."""

    def __init__(self, base: Dataset, size: int, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0)):
        self.base, self.size, self.mean, self.std = base, size, tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.base[index]
        _, h, w = image.shape
        image = crop(image, (h - self.size) // 2, (w - self.size) // 2, self.size)
        return _normalize(image, self.mean, self.std), label


# ---- preparation: decode everything once, drop corrupt files, measure the mean and std ------------------------
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


def batches(n: int, batch_size: int, seed: int, epoch: int, *, rank: int = 0, world: int = 1,
            min_shard: int = 2) -> list[list[tuple[int, int]]]:
    """This process's share of one epoch: lists of ``(index, epoch)`` keys for :class:`RandomCropFlip`.

    The epoch's order is a permutation drawn from (seed, epoch); it is cut into global batches of
    ``batch_size``; each global batch is split into ``world`` near-equal contiguous shards and shard ``rank``
    is returned. A last global batch whose shards would hold fewer than ``min_shard`` samples is dropped
    (BatchNorm needs two).
    """
    order = np.random.default_rng([seed, epoch, 2 ** 31 - 1]).permutation(n)
    out = []
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        if len(chunk) < min_shard * world:
            break
        out.append([(int(i), epoch) for i in np.array_split(chunk, world)[rank]])
    return out
