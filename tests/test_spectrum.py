"""Colour decorrelation, average amplitude spectra, their files, the command and the shipped spectra."""
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from proxygrad.am.colour import COLOUR_SQRT, colour_matrix, decorrelate, recorrelate
from proxygrad.am.spectrum import (
    BUNDLED,
    Spectrum,
    bundled_command,
    bundled_path,
    bundled_spectrum,
    compute_spectrum,
    decode_image,
    image_amplitude,
    load_spectrum,
    magnitude_for,
    make_bundled,
    save_spectrum,
)
from proxygrad.cli import main

# Horama's color_correlation_svd_sqrt (horama/common.py), which it applies as flat_pixels @ matrix: it is M^T.
HORAMA_MATRIX = [[0.56282854, 0.58447580, 0.58447580],
                 [0.19482528, 0.00000000, -0.19482528],
                 [0.04329450, -0.10823626, 0.06494176]]


def cosine(height, width, k1, k2):
    """cos(2 pi (k1 m / H + k2 n / W)) on an (H, W) grid, float64."""
    m = torch.arange(height, dtype=torch.float64)[:, None]
    n = torch.arange(width, dtype=torch.float64)[None]
    return torch.cos(2 * math.pi * (k1 * m / height + k2 * n / width))


def write_png(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


# ---- colour ----------------------------------------------------------------------------------------------------
def test_colour_matrix_is_c_over_its_largest_column_norm():
    m = colour_matrix()
    largest = math.sqrt(0.26 ** 2 + 0.27 ** 2 + 0.27 ** 2)  # column 0 is the longest
    assert torch.allclose(m, torch.tensor(COLOUR_SQRT, dtype=torch.float64) / largest, atol=1e-15)
    assert torch.linalg.vector_norm(m, dim=0).max().item() == pytest.approx(1.0, abs=1e-15)
    assert torch.allclose(m.T, torch.tensor(HORAMA_MATRIX, dtype=torch.float64), atol=1e-7)


def test_recorrelate_is_m_per_pixel_and_decorrelate_its_inverse():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    m = colour_matrix()
    y = recorrelate(x)
    assert torch.allclose(y[1, :, 2, 3], m @ x[1, :, 2, 3], atol=1e-14)
    assert torch.allclose(y, (x.permute(0, 2, 3, 1) @ m.T).permute(0, 3, 1, 2), atol=1e-14)
    assert torch.allclose(decorrelate(y), x, atol=1e-12)
    assert torch.allclose(recorrelate(decorrelate(x)), x, atol=1e-12)
    x32 = x.float()
    assert recorrelate(x32).dtype == torch.float32
    assert torch.allclose(decorrelate(recorrelate(x32)), x32, atol=1e-5)


def test_one_channel_is_identity_and_bad_shapes_fail():
    x = torch.rand(2, 1, 3, 3)
    assert torch.equal(recorrelate(x), x) and torch.equal(decorrelate(x), x)
    for bad in (torch.rand(3, 4, 4), torch.rand(1, 2, 4, 4), torch.ones(1, 3, 2, 2, dtype=torch.int64)):
        with pytest.raises(ValueError, match="recorrelate"):
            recorrelate(bad)


# ---- the spectrum of one image ---------------------------------------------------------------------------------
def test_a_cosine_puts_its_energy_at_its_rfft_bin():
    h, w, k1, k2 = 16, 12, 3, 2
    amplitude = image_amplitude((0.5 + 0.25 * cosine(h, w, k1, k2))[None])
    # standardized: sqrt(2) cos = (e^{i theta} + e^{-i theta}) / sqrt(2); only +theta lies in rfft's half plane
    expected = torch.zeros(1, h, w // 2 + 1, dtype=torch.float64)
    expected[0, k1, k2] = math.sqrt(h * w) / math.sqrt(2)
    assert amplitude.shape == (1, h, w // 2 + 1)
    assert torch.allclose(amplitude, expected, atol=1e-10)


def test_a_cosine_in_one_decorrelated_channel_stays_there():
    h, w, k1, k2 = 8, 10, 1, 3
    decorrelated = torch.zeros(1, 3, h, w, dtype=torch.float64)
    decorrelated[0, 0] = cosine(h, w, k1, k2)
    amplitude = image_amplitude(recorrelate(decorrelated)[0])
    # standardized over 3 channels: std = sqrt(1/6), so channel 0 becomes sqrt(6) cos
    expected = torch.zeros(3, h, w // 2 + 1, dtype=torch.float64)
    expected[0, k1, k2] = math.sqrt(6) / 2 * math.sqrt(h * w)
    assert torch.allclose(amplitude, expected, atol=1e-10)


def test_standardization_makes_it_invariant_to_gain_and_offset():
    gen = torch.Generator().manual_seed(1)
    gray = torch.rand(1, 9, 7, dtype=torch.float64, generator=gen)
    assert torch.allclose(image_amplitude(3 * gray + 0.2), image_amplitude(gray), atol=1e-12)
    rgb = torch.rand(3, 9, 7, dtype=torch.float64, generator=gen)
    assert torch.allclose(image_amplitude(3 * rgb), image_amplitude(rgb), atol=1e-12)
    # an offset equal in all decorrelated channels is removed too (one mean over pixels and channels)
    offset = recorrelate(torch.full((1, 3, 1, 1), 0.2, dtype=torch.float64))[0]
    assert torch.allclose(image_amplitude(3 * rgb + offset), image_amplitude(rgb), atol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        image_amplitude(torch.full((1, 4, 4), 0.5))


def test_decode_scales_to_cover_then_centre_crops(tmp_path):
    # 40 wide x 20 high: red 8 | gray 24 | blue 8. Scale 0.5 -> 20 x 10, crop columns 5..15 = original 10..30
    array = np.full((20, 40, 3), 128, dtype=np.uint8)
    array[:, :8] = (255, 0, 0)
    array[:, 32:] = (0, 0, 255)
    data = write_png(tmp_path / "wide.png", array).read_bytes()
    image = decode_image(data, (10, 10), 3)
    assert image.shape == (3, 10, 10)
    assert torch.allclose(image, torch.full_like(image, 128 / 255), atol=1e-12)
    tall = decode_image(data, (10, 30), 1)  # cover 30 wide -> 30 x 15, crop rows 2..12
    assert tall.shape == (1, 10, 30)
    unchanged = decode_image(data, (20, 40), 3)  # same size: no resampling
    assert torch.equal(unchanged, torch.from_numpy(array).permute(2, 0, 1).double() / 255)


# ---- a folder --------------------------------------------------------------------------------------------------
def hand_amplitude(array):
    """numpy only: [0, 1], decorrelate with the inverse of the hand-written M, standardize, |rfft2|."""
    x = np.asarray(array, dtype=np.float64) / 255
    if x.ndim == 3:
        c = np.array(COLOUR_SQRT)
        m = c / np.sqrt((c ** 2).sum(axis=0)).max()
        x = np.einsum("ij,hwj->ihw", np.linalg.inv(m), x)
    else:
        x = x[None]
    x = (x - x.mean()) / x.std()
    return np.abs(np.fft.rfft2(x, norm="ortho"))


def test_the_spectrum_is_the_hand_average_over_images(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(12, 10, 3)) for _ in range(3)]
    (tmp_path / "sub").mkdir()
    for name, array in zip(("b.png", "a.jpg.png", "sub/c.PNG"), arrays):
        write_png(tmp_path / name, array)
    (tmp_path / "notes.txt").write_text("not an image")
    spectrum = compute_spectrum(tmp_path, size=(12, 10), channels=3, progress=False)
    expected = np.mean([hand_amplitude(a) for a in arrays], axis=0)
    assert spectrum.magnitude.dtype == torch.float32 and spectrum.magnitude.shape == (3, 12, 6)
    assert np.allclose(spectrum.magnitude.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert spectrum.source["images"] == 3 and spectrum.source["folder"] == str(tmp_path.resolve())
    assert spectrum.source["size"] == [12, 10] and spectrum.source["channels"] == 3
    first = compute_spectrum(tmp_path, size=(12, 10), channels=3, max_images=1, progress=False)  # a.jpg.png
    assert np.allclose(first.magnitude.numpy(), hand_amplitude(arrays[1]), rtol=1e-5, atol=1e-5)
    assert first.source["sha256"] != spectrum.source["sha256"]


def test_a_cosine_png_through_the_folder_path(tmp_path):
    h, w, k1, k2 = 16, 16, 2, 5
    write_png(tmp_path / "cos.png", np.round(127.5 + 100 * cosine(h, w, k1, k2).numpy()))
    magnitude = compute_spectrum(tmp_path, size=16, channels=1, progress=False).magnitude[0]
    assert magnitude[k1, k2].item() == pytest.approx(math.sqrt(h * w / 2), rel=1e-3)
    rest = magnitude.clone()
    rest[k1, k2] = 0
    assert rest.max().item() < 0.05  # 8-bit rounding noise only (the peak is 11.3)


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        compute_spectrum(tmp_path / "missing", progress=False)
    with pytest.raises(ValueError, match="no image files"):
        compute_spectrum(tmp_path, progress=False)
    write_png(tmp_path / "good.png", np.zeros((4, 4)) + np.arange(4))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "broken.png"))):
        compute_spectrum(tmp_path, size=4, progress=False)
    for kwargs in ({"size": (0, 4)}, {"size": (4, 4, 4)}, {"channels": 2}, {"max_images": 0}):
        with pytest.raises(ValueError):
            compute_spectrum(tmp_path, progress=False, **kwargs)


# ---- files -----------------------------------------------------------------------------------------------------
def small_spectrum():
    magnitude = torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(2))
    return Spectrum(magnitude, (6, 7), {"folder": "/data", "images": 5, "size": [6, 7], "note": ["a", 1]})


def test_save_load_round_trip(tmp_path):
    spectrum = small_spectrum()
    path = save_spectrum(tmp_path / "s.pt", spectrum)
    loaded = load_spectrum(path)
    assert torch.equal(loaded.magnitude, spectrum.magnitude)
    assert loaded.size == (6, 7) and loaded.source == spectrum.source and loaded.channels == 3
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"magnitude", "size", "source"}
    assert not [p for p in tmp_path.iterdir() if p.name != "s.pt"]  # no temporary file left
    with pytest.raises(ValueError, match="plain types"):
        save_spectrum(tmp_path / "t.pt", Spectrum(spectrum.magnitude, (6, 7), {"path": tmp_path}))


GOOD = {"magnitude": torch.ones(1, 4, 3), "size": [4, 4], "source": {}}


@pytest.mark.parametrize("payload, problem", [
    ({**GOOD, "magnitude": torch.ones(4, 3)}, "3 dims"),
    ({**GOOD, "magnitude": torch.ones(1, 4, 4)}, "last dim"),
    ({**GOOD, "magnitude": torch.ones(1, 5, 3)}, "does not fit"),
    ({**GOOD, "magnitude": torch.ones(2, 4, 3)}, "1 or 3 channels"),
    ({**GOOD, "magnitude": -torch.ones(1, 4, 3)}, "negative"),
    ({**GOOD, "magnitude": torch.full((1, 4, 3), float("nan"))}, "NaN"),
    ({**GOOD, "magnitude": torch.zeros(1, 4, 3)}, "all zero"),
    ({**GOOD, "magnitude": torch.ones(1, 4, 3, dtype=torch.complex64)}, "real floating"),
    ({"magnitude": torch.ones(1, 4, 3), "size": [4, 4]}, "missing key.*source"),
    ({**GOOD, "size": [4]}, "size"),
    ([torch.ones(1, 4, 3)], "expected a dict"),
])
def test_bad_files_are_named_with_their_problem(tmp_path, payload, problem):
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + problem):
        load_spectrum(path)


def test_not_a_spectrum_file(tmp_path):
    for path in (tmp_path / "missing.pt", tmp_path):
        with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not a file"):
            load_spectrum(path)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "junk.pt")) + ".*torch.load"):
        load_spectrum(tmp_path / "junk.pt")


def test_magnitude_for_resizes_bilinearly():
    rows = torch.arange(4, dtype=torch.float32)[:, None].expand(4, 3)
    spectrum = Spectrum(torch.stack([rows + 1, torch.full((4, 3), 2.0), rows + 1]), (4, 4), {})
    assert torch.equal(magnitude_for(spectrum, (4, 5), 3), spectrum.magnitude)  # 5 // 2 + 1 == 3 columns
    up = magnitude_for(spectrum, (8, 10), 3)
    assert up.shape == (3, 8, 6)
    # align_corners=False: output row j samples input row (j + 0.5) / 2 - 0.5 (clamped at the border)
    assert torch.allclose(up[0, :, 0], torch.tensor([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]) + 1)
    assert torch.allclose(up[1], torch.full((8, 6), 2.0))
    with pytest.raises(ValueError, match=r"has 3 channel.*images have 1"):
        magnitude_for(spectrum, (8, 8), 1)


# ---- the command -----------------------------------------------------------------------------------------------
def test_command_writes_a_loadable_file(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        write_png(images / f"{i}.png", rng.integers(0, 256, size=(10 + i, 14, 3)))
    out = tmp_path / "out" / "s.pt"
    assert main(["spectrum", str(images), "--size", "8,12", "--channels", "1", "--out", str(out), "--quiet"]) == 0
    spectrum = load_spectrum(out)
    assert spectrum.magnitude.shape == (1, 8, 7) and spectrum.source["images"] == 3
    assert spectrum.source["command"].startswith(f"proxygrad spectrum {images}")
    assert json.loads(out.with_suffix(".json").read_text()) == spectrum.source
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["spectrum"], ["spectrum", "{images}", "--bundled", "digits"], ["spectrum", "{images}", "--size", "0"],
    ["spectrum", "{images}", "--max-images", "0"], ["spectrum", "{missing}"],
    ["spectrum", "{images}", "--out", "x.png"],
    ["spectrum", "--bundled", "digits", "--channels", "3"],
])
def test_command_rejects_bad_arguments_before_work(tmp_path, argv):
    images = tmp_path / "images"
    images.mkdir()
    argv = [a.format(images=images, missing=tmp_path / "missing") for a in argv]
    assert main(argv + ["--quiet"]) == 2
    assert not list(tmp_path.rglob("*.pt"))


# ---- the shipped spectra ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, images", [("digits", 1347), ("natural", 128)])
def test_shipped_spectra_load_with_their_provenance(name, images):
    spec = BUNDLED[name]
    spectrum = load_spectrum(name)
    height, width = spec["size"]
    assert spectrum.magnitude.shape == (spec["channels"], height, width // 2 + 1)
    assert spectrum.size == spec["size"] and bundled_spectrum(spec["channels"]).size == spec["size"]
    source = spectrum.source
    assert source["images"] == images and source["channels"] == spec["channels"]
    assert source["size"] == list(spec["size"]) and source["command"] == bundled_command(name)
    assert source["python"] == f"proxygrad.am.spectrum.make_bundled({name!r})"
    assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    assert json.loads(bundled_path(name).with_suffix(".json").read_text()) == source


@pytest.mark.parametrize("name", ["digits", "natural"])
def test_shipped_spectra_regenerate_to_the_same_numbers(name):
    shipped = load_spectrum(name)
    regenerated = make_bundled(name)
    assert torch.allclose(regenerated.magnitude, shipped.magnitude, rtol=1e-5, atol=1e-6)
    keys = ("images", "size", "channels", "command", "data", "recipe", "folder")
    assert {k: regenerated.source[k] for k in keys} == {k: shipped.source[k] for k in keys}
