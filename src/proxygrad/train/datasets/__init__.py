"""Image classification data for training, as users have it on disk (the paper's Appendix 11.1).

One module per dataset layout (``DATASETS``): :mod:`.caltech101`, :mod:`.cub200`, :mod:`.flowers102`,
:mod:`.imagefolder` and :mod:`.digits` (bundled, no files). Each on-disk reader returns the class names and the
training and test :class:`~.common.Samples` (files + labels). The shared parts:

- :mod:`.config`: the dataset names, :class:`DataConfig` and :func:`data_config`.
- :mod:`.common`: :class:`Samples` and the folder checks every reader uses.
- :mod:`.images`: the splits as datasets of ``(image, label)``, images float32 (3, H, W) in [0, 1] pixel units
  (resized so the shorter side is ``resize``).
- :mod:`.splits`: :func:`load_splits` dispatches to the readers.
- :mod:`.crops`: :class:`RandomCropFlip` and :class:`CenterCrop` crop and normalize the images.
- :mod:`.sampling`: the random crop offset and flip of a sample and the epoch's batches depend only on
  (seed, epoch, index), never on the batch, the worker or the process, so a resumed or data-parallel run sees
  exactly the same inputs.
- :mod:`.preparation`: :func:`prepare` decodes every image once and measures the training mean and std.
"""
from .caltech101 import caltech101_samples
from .common import Samples
from .config import CUB_URL, DATASETS, DOWNLOADABLE, DataConfig, data_config
from .crops import CenterCrop, RandomCropFlip, crop
from .cub200 import CUB_FILES, cub200_samples
from .digits import digits_tensors
from .flowers102 import flowers102_samples
from .imagefolder import imagefolder_samples
from .images import ImageFiles, ImageTensors, read_image
from .preparation import Prepared, prepare, scan
from .sampling import batches, sample_rng
from .splits import Splits, load_splits

__all__ = ["CUB_FILES", "CUB_URL", "DATASETS", "DOWNLOADABLE", "CenterCrop", "DataConfig", "ImageFiles",
           "ImageTensors", "Prepared", "RandomCropFlip", "Samples", "Splits", "batches", "caltech101_samples",
           "crop", "cub200_samples", "data_config", "digits_tensors", "flowers102_samples", "imagefolder_samples",
           "load_splits", "prepare", "read_image", "sample_rng", "scan"]
