"""Decoding every kind of image file the wild produces -> (S, S, 3) uint8 RGB, or BadImage."""
import numpy as np
import pytest
from PIL import Image

from keras_birds.data.images import BadImage, load_rgb

S = 24
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _half_and_half(mode_colours, size=(40, 40)):
    """Left half colour A, right half colour B, as an RGB image."""
    a, b = mode_colours
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = a
    arr[:, size[0] // 2:] = b
    return Image.fromarray(arr)


def _check(arr, size=S):
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (size, size, 3)
    assert arr.dtype == np.uint8


def _left_right(arr):
    """Mean colour of the left and right quarter (away from the resize-blended middle)."""
    q = arr.shape[1] // 4
    return arr[:, :q].reshape(-1, 3).mean(0), arr[:, -q:].reshape(-1, 3).mean(0)


def test_rgb_jpeg(tmp_path):
    path = tmp_path / "a.jpg"
    _half_and_half((RED, BLUE)).save(path, quality=95)
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, RED, atol=20) and np.allclose(right, BLUE, atol=20)


def test_rgb_png_is_exact_at_native_size(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    arr = load_rgb(path, S)
    _check(arr)
    assert np.array_equal(arr, pixels)  # lossless and no resize: untouched


def test_greyscale_L_becomes_three_equal_channels(tmp_path):
    grey = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))
    path = tmp_path / "grey.jpg"
    Image.fromarray(grey, "L").save(path, quality=95)
    arr = load_rgb(path, S)
    _check(arr)
    assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2])
    assert arr[:, 0, 0].mean() < 30 and arr[:, -1, 0].mean() > 225  # the ramp survives


def test_16_bit_greyscale_png_keeps_its_tones(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (30, 1))
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    arr = load_rgb(path, S)
    _check(arr)
    assert arr[:, 0].mean() < 30 and arr[:, -1].mean() > 225
    assert 100 < arr[:, S // 2].mean() < 160


def test_rgba_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)  # colour hidden under alpha=0 on the left
    rgba[:, 20:, 3] = 255  # right half opaque
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, WHITE, atol=1)
    assert np.allclose(right, (10, 200, 30), atol=1)


def test_rgba_half_transparent_blends_with_white(tmp_path):
    rgba = np.zeros((S, S, 4), np.uint8)
    rgba[..., 3] = 128  # black at ~50% opacity over white -> mid grey
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_rgb(path, S)
    assert np.allclose(arr, 127, atol=2)


def test_greyscale_with_alpha_LA(tmp_path):
    la = np.zeros((S, S, 2), np.uint8)
    la[..., 0] = 40
    la[:, S // 2:, 1] = 255
    path = tmp_path / "a.png"
    Image.fromarray(la, "LA").save(path)
    arr = load_rgb(path, S)
    _check(arr)
    assert np.all(arr[:, : S // 2] == 255) and np.all(arr[:, S // 2:] == 40)


def _palette_image():
    idx = np.zeros((40, 40), np.uint8)
    idx[:, 20:] = 1
    img = Image.fromarray(idx, "P")
    img.putpalette(list(RED) + list(BLUE) + [0] * (256 * 3 - 6))
    return img


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_without_transparency(tmp_path, suffix):
    path = tmp_path / f"a{suffix}"
    _palette_image().save(path)
    assert Image.open(path).mode == "P"
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, RED, atol=1) and np.allclose(right, BLUE, atol=1)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_goes_on_white(tmp_path, suffix):
    path = tmp_path / f"a{suffix}"
    _palette_image().save(path, transparency=0)  # palette entry 0 (red) is transparent
    with Image.open(path) as im:
        assert im.mode == "P" and "transparency" in im.info
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, WHITE, atol=1) and np.allclose(right, BLUE, atol=1)


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    _half_and_half((RED, BLUE)).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, RED, atol=30) and np.allclose(right, BLUE, atol=30)


def test_black_and_white_mode_1(tmp_path):
    path = tmp_path / "bw.png"
    _half_and_half(((0, 0, 0), WHITE)).convert("1").save(path)
    arr = load_rgb(path, S)
    _check(arr)
    left, right = _left_right(arr)
    assert np.allclose(left, 0, atol=1) and np.allclose(right, 255, atol=1)


@pytest.mark.parametrize("wh", [(40, 300), (300, 40), (1, 1), (489, 283)])
def test_odd_sizes_are_resized_to_a_square(tmp_path, wh):
    path = tmp_path / "odd.jpg"
    Image.new("RGB", wh, (30, 60, 90)).save(path, quality=95)
    arr = load_rgb(path, S)
    _check(arr)
    assert np.allclose(arr.reshape(-1, 3).mean(0), (30, 60, 90), atol=4)


@pytest.mark.parametrize("fmt", ["BMP", "WEBP", "TIFF"])
def test_other_formats(tmp_path, fmt):
    path = tmp_path / f"a.{fmt.lower()}"
    Image.new("RGB", (30, 20), (200, 100, 50)).save(path, format=fmt)
    arr = load_rgb(path, 16)
    _check(arr, 16)
    assert np.allclose(arr.reshape(-1, 3).mean(0), (200, 100, 50), atol=6)


def test_a_jpeg_named_png_still_decodes(tmp_path):
    path = tmp_path / "really-a-jpeg.png"
    Image.new("RGB", (30, 30), (0, 128, 0)).save(path, format="JPEG")
    _check(load_rgb(path, S))


# -- files that must be rejected -------------------------------------------------------------------
def _good_jpeg_bytes(tmp_path):
    path = tmp_path / "good.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    return path.read_bytes()


def test_truncated_jpeg_is_bad(tmp_path):
    data = _good_jpeg_bytes(tmp_path)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage, match="truncated"):
        load_rgb(path, S)


def test_truncated_png_is_bad(tmp_path):
    src = tmp_path / "full.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(src)
    path = tmp_path / "cut.png"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(BadImage):
        load_rgb(path, S)


def test_text_file_named_jpg_is_bad(tmp_path):
    path = tmp_path / "text.jpg"
    path.write_text("<html>404 not found</html>\n")
    with pytest.raises(BadImage, match="cannot identify"):
        load_rgb(path, S)


def test_empty_file_is_bad(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(BadImage):
        load_rgb(path, S)


def test_missing_file_is_bad(tmp_path):
    with pytest.raises(BadImage, match="FileNotFoundError"):
        load_rgb(tmp_path / "gone.jpg", S)


def test_corrupt_jpeg_header_is_bad(tmp_path):
    data = bytearray(_good_jpeg_bytes(tmp_path))
    data[2:40] = b"\x00" * 38  # keep the SOI marker, destroy the headers
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(BadImage):
        load_rgb(path, S)


def test_real_non_square_birds_mini_image(birds_mini):
    files = sorted((birds_mini / "train" / "PLUSH CRESTED JAY").iterdir())
    for f in files:
        with Image.open(f) as im:
            assert im.size != (224, 224)
        arr = load_rgb(f, 64)
        _check(arr, 64)
        assert arr.std() > 5  # a real photo, not a blank
