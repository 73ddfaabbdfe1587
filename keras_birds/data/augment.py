"""Training-batch augmentation from a recipe's Augment settings, as Keras core layers."""
from __future__ import annotations

import keras

from keras_birds.recipe import Augment


def build_augmenter(aug: Augment, seed: int = 0):
    """A keras.Sequential over float pixel batches (N, H, W, 3), or None when every step is off."""
    layers = []
    if aug.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if aug.perspective:
        # factor = chance of a perspective warp per image; scale = how far the corners move.
        layers.append(keras.layers.RandomPerspective(factor=0.5, scale=aug.perspective, seed=seed + 1))
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.rotation / 360.0, seed=seed + 2))
    if aug.translate:
        layers.append(keras.layers.RandomTranslation(aug.translate, aug.translate, seed=seed + 3))
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.zoom, aug.zoom, seed=seed + 4))
    if aug.shear:
        layers.append(keras.layers.RandomShear(aug.shear, aug.shear, seed=seed + 5))
    return keras.Sequential(layers, name="augment") if layers else None
