"""cleanvision's file dataset, made safe for any image mode and cheap to hand to worker processes.

Imports cleanvision (pandas, matplotlib: ~0.6 s), so audit.py imports it only when it runs checks.
"""
from __future__ import annotations

import os

from cleanvision.dataset.fsspec_dataset import FSDataset
from PIL import Image

from keras_birds.data.images import to_rgb

# Single-channel (or grey + alpha) modes: kept greyscale, so cleanvision's grayscale check sees them.
GREY_MODES = {"1", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def for_cleanvision(img: Image.Image) -> Image.Image:
    """cleanvision 0.3.7 reads 'L' or 3-channel images; an 'LA' image crashes its brightness check.
    Other modes become what training sees (to_rgb); greyscale ones stay one channel ('L')."""
    if img.mode in ("RGB", "L"):
        return img
    rgb = to_rgb(img)
    return rgb.convert("L") if img.mode in GREY_MODES else rgb


def to_key(path: str) -> str:
    """The name cleanvision knows a file by. Its pandas tables take only UTF-8-encodable text, and
    a file name may hold any bytes (lone surrogates in Python): latin-1 gives each byte one character."""
    return os.fsencode(path).decode("latin-1")


def from_key(key: str) -> str:
    return os.fsdecode(key.encode("latin-1"))


class CleanvisionFiles(FSDataset):
    """Local files for Imagelab, named by to_key, decoded through for_cleanvision."""

    def __getitem__(self, item) -> Image.Image:
        with Image.open(from_key(item)) as img:
            img.load()
            out = for_cleanvision(img)
            return out.copy() if out is img else out  # a copy outlives the closed file

    def __getstate__(self):
        # cleanvision pickles the dataset into every task of its process pool (one per ~N/5000 files),
        # and a worker only opens the path it is given. With its file lists that is quadratic: ~26 GB
        # pickled per check for the 84,635 train images of BIRDS-525; without them, a few hundred bytes.
        state = self.__dict__.copy()
        state["_filepaths"], state["index"] = [], []
        return state
