"""proxygrad.train.data: the datasets in their real on-disk layouts (tiny fakes), crops, batches, errors.

The fake helpers here are shared with the other training tests.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from proxygrad.train import data as D

COLORS = [(220, 40, 40), (40, 200, 60), (50, 70, 230), (230, 210, 40)]


def write_image(path: Path, label: int, index: int, size=(20, 16)) -> Path:
    """A JPEG of the class color plus noise (seeded by label and index), ``size`` = (width, height)."""
    rng = np.random.default_rng([label, index])
    base = np.array(COLORS[label % len(COLORS)], dtype=float)
    pixels = np.clip(base + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")
    return path


def make_caltech(root: Path, classes=("accordion", "airplanes", "brain"), per_class=6) -> Path:
    """torchvision's Caltech101 layout, with a BACKGROUND_Google folder that must be excluded."""
    folder = root / "caltech101" / "101_ObjectCategories"
    for label, name in enumerate(("BACKGROUND_Google",) + tuple(classes)):
        for i in range(1, per_class + 1):
            write_image(folder / name / f"image_{i:04d}.jpg", label, i, size=(18 + i, 16))
    return root


def make_cub(root: Path, n_classes=3, per_class=4) -> Path:
    """CUB_200_2011 with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/."""
    base = root / "CUB_200_2011"
    images, labels, split, names = [], [], [], []
    image_id = 0
    for c in range(1, n_classes + 1):
        name = f"{c:03d}.Bird_{c}"
        names.append(f"{c} {name}")
        for i in range(per_class):
            image_id += 1
            rel = f"{name}/Bird_{c}_{i:04d}_{image_id}.jpg"
            write_image(base / "images" / rel, c - 1, i)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c}")
            split.append(f"{image_id} {1 if i % 2 == 0 else 0}")
    for name, lines in (("images.txt", images), ("image_class_labels.txt", labels),
                        ("train_test_split.txt", split), ("classes.txt", names)):
        (base / name).write_text("\n".join(lines) + "\n")
    return root


def make_flowers(root: Path, n_classes=3, per_class=5) -> Path:
    """torchvision's Flowers102 layout: flowers-102/jpg/image_XXXXX.jpg, imagelabels.mat, setid.mat."""
    from scipy.io import savemat

    base = root / "flowers-102"
    labels = []
    for c in range(n_classes):
        for i in range(per_class):
            labels.append(c + 1)
            write_image(base / "jpg" / f"image_{len(labels):05d}.jpg", c, i)
    ids = np.arange(1, len(labels) + 1)
    savemat(base / "imagelabels.mat", {"labels": np.array(labels)[None]})
    savemat(base / "setid.mat", {"trnid": ids[0::5][None], "valid": ids[1::5][None], "tstid": ids[[i for i in range(
        len(ids)) if i % 5 > 1]][None]})
    return root


def make_imagefolder(root: Path, n_classes=3, train=8, test=4, size=(20, 16)) -> Path:
    for split, n in (("train", train), ("test", test)):
        for c in range(n_classes):
            for i in range(n):
                write_image(root / split / f"class{c}" / f"{split}{i}.png", c, i + (1000 if split == "test" else 0),
                            size)
    return root


def labels_of(dataset) -> list[int]:
    return list(dataset.samples.labels)


# ---- layouts -------------------------------------------------------------------------------------------------
def test_caltech101_excludes_background_and_draws_per_class_splits_by_seed(tmp_path):
    root = make_caltech(tmp_path)
    cfg = D.data_config("caltech101", root=str(root), train_per_class=4, test_per_class=2)
    s0 = D.load_splits(cfg, seed=0)
    assert s0.classes == ("accordion", "airplanes", "brain")
    assert len(s0.train) == 12 and len(s0.test) == 6
    assert labels_of(s0.train) == [0] * 4 + [1] * 4 + [2] * 4 and labels_of(s0.test) == [0] * 2 + [1] * 2 + [2] * 2
    train_files, test_files = set(s0.train.samples.files), set(s0.test.samples.files)
    assert not train_files & test_files
    assert all("BACKGROUND_Google" not in str(f) for f in train_files | test_files)
    assert all(f.parent.name == s0.classes[label] for f, label in zip(s0.train.samples.files, labels_of(s0.train)))
    again = D.load_splits(cfg, seed=0)
    assert again.train.samples.files == s0.train.samples.files  # deterministic per seed
    assert D.load_splits(cfg, seed=1).train.samples.files != s0.train.samples.files
    # the root may also be the caltech101 folder itself
    assert D.load_splits(D.data_config("caltech101", root=str(root / "caltech101"), train_per_class=4,
                                       test_per_class=2)).classes == s0.classes


def test_caltech101_class_with_too_few_images_is_named(tmp_path):
    root = make_caltech(tmp_path, per_class=3)
    with pytest.raises(ValueError, match=r"accordion has 3 images, fewer than the 20 \+ 10"):
        D.load_splits(D.data_config("caltech101", root=str(root)))


def test_cub200_reads_its_own_index_files(tmp_path):
    root = make_cub(tmp_path)
    splits = D.load_splits(D.data_config("cub200", root=str(root)))
    assert splits.classes == ("001.Bird_1", "002.Bird_2", "003.Bird_3")
    assert len(splits.train) == 6 and len(splits.test) == 6  # is_train = 1 for i = 0, 2 of each class
    assert labels_of(splits.train) == [0, 0, 1, 1, 2, 2]
    assert all(f.parent.name == splits.classes[label]
               for f, label in zip(splits.train.samples.files, labels_of(splits.train)))
    image, label = splits.train[0]
    assert image.shape == (3, 256, 320) and image.dtype == torch.float32 and label == 0  # 20x16 -> short side 256


def test_cub200_errors_name_the_file(tmp_path):
    root = make_cub(tmp_path)
    base = root / "CUB_200_2011"
    (base / "train_test_split.txt").write_text("1 1\n2\n")
    with pytest.raises(ValueError, match=r"train_test_split.txt:2: expected 2 fields"):
        D.load_splits(D.data_config("cub200", root=str(root)))
    make_cub(root)
    first = next((base / "images").rglob("*.jpg"))
    first.unlink()
    with pytest.raises(FileNotFoundError, match=first.name):
        D.load_splits(D.data_config("cub200", root=str(root)))
    (base / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="classes.txt is missing"):
        D.load_splits(D.data_config("cub200", root=str(root)))
    with pytest.raises(FileNotFoundError, match="CUB_200_2011"):
        D.load_splits(D.data_config("cub200", root=str(tmp_path / "CUB_200_2011" / "images")))


def test_flowers102_merges_train_and_validation(tmp_path):
    from torchvision.datasets import Flowers102

    root = make_flowers(tmp_path)
    splits = D.load_splits(D.data_config("flowers102", root=str(root)))
    assert len(splits.train) == 6 and len(splits.test) == 9  # trnid + valid = 2 of every 5; tstid = 3 of 5
    names = [f.name for f in splits.train.samples.files]
    assert names == [f"image_{i:05d}.jpg" for i in (1, 6, 11, 2, 7, 12)]
    assert labels_of(splits.train) == [0, 1, 2, 0, 1, 2]
    assert splits.classes == tuple(Flowers102.classes[:3])
    (root / "flowers-102" / "setid.mat").unlink()
    with pytest.raises(FileNotFoundError, match="setid.mat is missing"):
        D.load_splits(D.data_config("flowers102", root=str(root)))


def test_imagefolder_with_and_without_split_folders(tmp_path):
    root = make_imagefolder(tmp_path / "a")
    splits = D.load_splits(D.data_config("imagefolder", root=str(root)))
    assert splits.classes == ("class0", "class1", "class2") and len(splits.train) == 24 and len(splits.test) == 12
    flat = tmp_path / "b"
    for c in range(2):
        for i in range(10):
            write_image(flat / f"c{c}" / f"{i}.png", c, i)
    one = D.load_splits(D.data_config("imagefolder", root=str(flat), test_fraction=0.3), seed=3)
    assert len(one.train) == 14 and len(one.test) == 6 and sorted(labels_of(one.test)) == [0, 0, 0, 1, 1, 1]
    assert not set(one.train.samples.files) & set(one.test.samples.files)


def test_bad_names_and_layouts_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid: caltech101, cub200"):
        D.data_config("imagenet", root=str(tmp_path))
    with pytest.raises(ValueError, match="needs a root folder"):
        D.data_config("cub200")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_splits(D.data_config("caltech101", root=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="101_ObjectCategories"):
        D.load_splits(D.data_config("caltech101", root=str(tmp_path / "empty")))
    with pytest.raises(ValueError, match="cannot be downloaded.*CUB_200_2011.tgz"):
        D.data_config("cub200", root=str(tmp_path), download=True)


# ---- images, statistics, corrupt files -------------------------------------------------------------------------
def test_prepare_measures_mean_and_std_of_the_training_center_crops(tmp_path):
    root = make_imagefolder(tmp_path, n_classes=2, train=3, test=2, size=(12, 10))
    cfg = D.data_config("imagefolder", root=str(root), image_size=8, resize=0)
    prepared = D.prepare(cfg)
    crops = []
    for f in sorted((root / "train").rglob("*.png")):
        pixels = np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255
        crops.append(pixels[1:9, 2:10])  # central 8x8 of 10x12
    crops = np.stack(crops)
    np.testing.assert_allclose(prepared.mean, crops.mean(axis=(0, 1, 2)), rtol=1e-6)  # float32 pixels
    np.testing.assert_allclose(prepared.std, crops.std(axis=(0, 1, 2)), rtol=1e-5)
    assert prepared.skipped == []


def test_corrupt_images_stop_with_the_file_named_or_are_skipped_and_counted(tmp_path):
    root = make_imagefolder(tmp_path, n_classes=2, train=3, test=2)
    bad = root / "train" / "class1" / "train1.png"
    bad.write_bytes(b"not an image at all")
    cfg = D.data_config("imagefolder", root=str(root), image_size=8)
    with pytest.raises(ValueError, match=r"1 images cannot be read; first: cannot read image .*train1.png"):
        D.prepare(cfg)
    prepared = D.prepare(D.data_config("imagefolder", root=str(root), image_size=8, skip_corrupt=True))
    assert prepared.skipped == [str(bad)] and len(prepared.train) == 5 and len(prepared.test) == 4
    again = D.prepare(cfg, known={"mean": prepared.mean, "std": prepared.std, "skipped": prepared.skipped})
    assert str(bad) not in map(str, again.train.samples.files)


def test_digits_are_the_bundled_data_as_rgb():
    from proxygrad.models import digits_data

    splits = D.load_splits(D.data_config("digits"))
    assert len(splits.train) == 1347 and len(splits.test) == 450
    image, label = splits.train[5]
    gray, labels = digits_data("train")
    assert image.shape == (3, 32, 32) and label == int(labels[5])
    torch.testing.assert_close(image, ((gray[5] + 1) / 2).expand(3, -1, -1))


# ---- crops and batches ---------------------------------------------------------------------------------------
def test_random_crop_flip_is_a_function_of_seed_epoch_and_index():
    image = torch.arange(3 * 6 * 7, dtype=torch.float32).view(3, 6, 7)
    base = D.ImageTensors(image[None].repeat(4, 1, 1, 1), torch.arange(4))
    view = D.RandomCropFlip(base, 5, mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0), padding=2, flip=True, seed=7)
    x, label = view[(2, 3)]
    rng = np.random.default_rng([7, 3, 2])  # what sample_rng draws, in the same order
    top, left, flip = rng.integers(0, 6 + 4 - 5 + 1), rng.integers(0, 7 + 4 - 5 + 1), rng.random() < 0.5
    padded = np.pad(image.numpy(), ((0, 0), (2, 2), (2, 2)))
    expected = padded[:, top:top + 5, left:left + 5]
    expected = expected[:, :, ::-1] if flip else expected
    expected = (expected - np.array([1.0, 2.0, 3.0])[:, None, None]) / 2
    np.testing.assert_allclose(x.numpy(), expected)
    assert label == 2
    torch.testing.assert_close(view[(2, 3)][0], x)
    crops = {tuple(view[(2, e)][0].flatten()[:3].tolist()) for e in range(12)}
    assert len(crops) > 3  # other epochs, other crops


def test_center_crop_takes_the_middle():
    image = torch.rand(3, 9, 12)
    x, _ = D.CenterCrop(D.ImageTensors(image[None], torch.zeros(1, dtype=torch.long)), 4)[0]
    torch.testing.assert_close(x, image[:, 2:6, 4:8])


def test_batches_split_each_global_batch_over_ranks():
    single = D.batches(50, 16, seed=1, epoch=4)
    assert [len(b) for b in single] == [16, 16, 16, 2]
    keys = [k for b in single for k in b]
    assert sorted(i for i, _ in keys) == list(range(50)) and all(epoch == 4 for _, epoch in keys)
    ranks = [D.batches(50, 16, seed=1, epoch=4, rank=r, world=3) for r in range(3)]
    assert [[len(b) for b in r] for r in ranks] == [[6, 6, 6], [5, 5, 5], [5, 5, 5]]  # last: < 2 per rank, dropped
    for i in range(3):
        assert [k for r in ranks for k in r[i]] == single[i]
    assert D.batches(50, 16, seed=1, epoch=5) != single
