"""Robust decoding: any image mode or size -> RGB uint8 at the model's input size."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

# Truncated files must fail loudly (and be skipped), not decode as half-grey images.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadImage(Exception):
    """The file is unreadable, truncated or not an image."""


class TooManyPixels(BadImage):
    """The image claims more pixels than the caller allows (a decompression bomb, or just too big)."""


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB view of any mode; transparent pixels go on white, as a viewer would show them."""
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit greyscale (PNG/TIFF): Pillow's convert("RGB") clips at 255 (all white); scale to 8 bits.
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")


# What Pillow raises for a file it cannot decode whole (truncated, corrupt, not an image, too big).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def load_rgb(path, size: int, max_pixels: int | None = None) -> np.ndarray:
    """Decode `path` (a path or a binary file object) to a (size, size, 3) uint8 array; BadImage if it cannot be
    decoded whole; TooManyPixels, from the header alone, if it claims more than `max_pixels`."""
    try:
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise TooManyPixels(f"{img.width}x{img.height} pixels, over the limit of {max_pixels:,}")
            img.load()
            rgb = to_rgb(img)
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except Image.DecompressionBombError as e:  # Pillow's own limit, hit before ours could be checked
        raise TooManyPixels(f"more pixels than Pillow's safety limit ({e})") from e
    except DECODE_ERRORS as e:
        raise BadImage(f"{type(e).__name__}: {e}") from e


def open_rgb(path) -> Image.Image:
    """Decode `path` whole to an RGB image at its own size (as load_rgb does before resizing);
    BadImage if it cannot be: the same verdict the training loader reaches."""
    try:
        with Image.open(path) as img:
            img.load()
            rgb = to_rgb(img)
            return img.copy() if rgb is img else rgb  # a copy outlives the closed file
    except DECODE_ERRORS as e:
        raise BadImage(f"{type(e).__name__}: {e}") from e
