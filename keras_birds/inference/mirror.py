"""The mirror image: flip test-time augmentation in eval, predict and training's validation, and the
mirrored views head initialisation fits on. One definition, so all of them see the same pixels."""
from __future__ import annotations

import numpy as np


def mirrored(images):
    """Left-right mirror of an (N, H, W, C) batch: a contiguous NumPy copy (runtimes reject negative
    strides), or a backend tensor for a torch batch from the on-device augmenter."""
    if isinstance(images, (np.ndarray, list, tuple)):
        return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])
    import keras

    return keras.ops.flip(images, axis=2)


def flip_averaged(predict):
    """predict(images) averaged with predict(mirror images): a recipe's tta_flip."""
    return lambda images: (predict(images) + predict(mirrored(images))) / 2
