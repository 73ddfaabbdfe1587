"""Training-batch augmentation from a recipe's Augment settings, as Keras core layers."""
from __future__ import annotations

import keras
import numpy as np

from keras_birds.recipe import Augment


class Augmenter:
    """Applies Keras core augmentation layers to a NumPy batch (N, H, W, 3) of float pixels.

    The layers run inside a tf.function, their documented tf.data-safe path, whatever the Keras
    backend: on the torch backend their affine/perspective ops (a 3-D map_coordinates) took 137 s
    per 32-image 224px batch on CPU, against 0.22 s for the same layers on TF's kernels.
    """

    def __init__(self, layers):
        import tensorflow as tf  # installed with keras-hub

        self.layers = layers
        self._tf = tf
        self._fn = tf.function(self._apply, reduce_retracing=True)

    def _apply(self, x):
        for layer in self.layers:
            x = layer(x, training=True)
        return x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self._fn(self._tf.convert_to_tensor(x, dtype=self._tf.float32)).numpy()
        return np.clip(out, 0, 255)


def build_augmenter(aug: Augment, seed: int = 0):
    """An Augmenter over float pixel batches, or None when every step is off."""
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
    return Augmenter(layers) if layers else None
