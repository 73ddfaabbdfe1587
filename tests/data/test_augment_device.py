"""On-device augmentation (torch backend): the recipe's parameter ranges, measured on marked synthetic
images; determinism from the seed; the loader hands Keras float32 tensors on the training device."""
import math

import keras
import numpy as np
import pytest
import torch

from keras_birds.data.augment import TorchAugmenter, build_augmenter
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import folder_source
from keras_birds.recipe import Augment

S, N = 64, 400  # image side; images per measurement (each gets its own random transform)
C = (S - 1) / 2  # the centre, in pixel coordinates
OFF = dict(flip=False, perspective=0, rotation=0, translate=0, zoom=0, shear=0)


def _dots(*points, n=N):
    """n copies of a black S x S uint8 image with a bright 3x3 dot centred on each (x, y) point."""
    img = np.zeros((S, S, 3), np.uint8)
    for x, y in points:
        img[y - 1:y + 2, x - 1:x + 2] = 255
    return np.repeat(img[None], n, axis=0)


def _augment(images, seed=0, **steps):
    out = TorchAugmenter(Augment(**{**OFF, **steps}), seed)(images, key=(0, 0))
    assert out.shape == images.shape and out.dtype == torch.float32
    return keras.ops.convert_to_numpy(out)


def _centroids(out, mask=None):
    """Brightness-weighted (x, y) centre of each image (optionally of a column range only)."""
    w = out.mean(-1)
    if mask is not None:
        w = w * mask
    total = w.sum((1, 2))
    ys, xs = np.mgrid[0:S, 0:S]
    return (w * xs).sum((1, 2)) / total, (w * ys).sum((1, 2)) / total


def _one_dot_kept(out, images):
    # The dot is neither lost nor doubled (a reflection copy would double it): brightness is conserved.
    ratio = out.sum((1, 2, 3)) / images.sum((1, 2, 3))
    assert np.all(np.abs(ratio - 1) < 0.1), ratio.min()


def test_flip_mirrors_left_right_about_half_the_images():
    images = _dots((16, 24))  # left of centre: a mirror puts it at x = S - 1 - 16
    out = _augment(images, flip=True)
    kept = np.all(np.abs(out - images) < 1e-2, axis=(1, 2, 3))
    mirrored = np.all(np.abs(out - images[:, :, ::-1]) < 1e-2, axis=(1, 2, 3))
    assert np.all(kept ^ mirrored)  # every image exactly one of the two, never up-down
    assert 0.4 < mirrored.mean() < 0.6, mirrored.mean()


@pytest.mark.parametrize("degrees", [10.0, 30.0])
def test_rotation_stays_within_plus_minus_the_recipe_degrees(degrees):
    r = 14
    images = _dots((int(C + 0.5) + r, int(C + 0.5)))  # dot at (C + r + 0.5, C + 0.5): angle ~ 0
    out = _augment(images, rotation=degrees)
    _one_dot_kept(out, images)
    x, y = _centroids(out)
    angle0 = math.degrees(math.atan2(0.5, r + 0.5))
    angles = np.degrees(np.arctan2(y - C, x - C)) - angle0
    radius = np.hypot(x - C, y - C)
    assert np.allclose(radius, math.hypot(r + 0.5, 0.5), atol=0.5)  # rotated about the centre, not moved
    assert np.abs(angles).max() <= degrees + 1.0, np.abs(angles).max()
    assert angles.max() > 0.8 * degrees and angles.min() < -0.8 * degrees  # the whole range, both ways


def test_translation_stays_within_plus_minus_the_recipe_fraction():
    frac = 0.2
    images = _dots((32, 32))
    out = _augment(images, translate=frac)
    _one_dot_kept(out, images)
    x, y = _centroids(out)
    dx, dy = x - 32, y - 32
    limit = frac * S
    assert np.abs(dx).max() <= limit + 0.5 and np.abs(dy).max() <= limit + 0.5, (np.abs(dx).max(), np.abs(dy).max())
    for d in (dx, dy):
        assert d.max() > 0.8 * limit and d.min() < -0.8 * limit  # both axes, both ways
    assert abs(np.corrcoef(dx, dy)[0, 1]) < 0.2  # drawn independently per axis


def test_zoom_scales_by_one_over_one_plus_minus_the_recipe_fraction():
    """Keras' convention: the output shows U(1-z, 1+z) times the input's extent (> 1 zooms out)."""
    z = 0.3
    images = _dots((16, 32), (47, 32))  # symmetric about the centre, 31 px apart
    out = _augment(images, zoom=z)
    left, right = (np.arange(S) < 32)[None, None, :], (np.arange(S) >= 32)[None, None, :]
    ratio = (_centroids(out, right)[0] - _centroids(out, left)[0]) / 31
    assert ratio.min() >= 1 / (1 + z) - 0.02 and ratio.max() <= 1 / (1 - z) + 0.02, (ratio.min(), ratio.max())
    assert ratio.min() < 0.85 and ratio.max() > 1.25  # zooms both in and out


def test_perspective_warps_a_quarter_of_the_images_as_the_keras_layer_does():
    """RandomPerspective(factor=0.5) draws p ~ U(0, 0.5) and warps when U(0, 1) < p: 1 image in 4."""
    images = np.repeat(np.add.outer(np.arange(S), np.arange(S)).astype(np.uint8)[None, :, :, None], N, 0)
    images = np.repeat(images, 3, axis=-1)
    out = _augment(images, perspective=0.5)
    changed = np.abs(out - images).max((1, 2, 3)) > 1
    assert 0.17 < changed.mean() < 0.33, changed.mean()
    # corners move by a fraction of their own coordinates: the top-left pixel stays where it was
    assert np.allclose(out[:, 0, 0], images[:, 0, 0], atol=1)


def test_same_seed_and_key_give_the_same_batch_and_others_differ():
    images = np.random.default_rng(0).integers(0, 256, (8, S, S, 3), dtype=np.uint8)
    a, b, c = TorchAugmenter(Augment(), 5), TorchAugmenter(Augment(), 5), TorchAugmenter(Augment(), 6)
    first = a(images, key=(0, 3))
    assert torch.equal(first, b(images, key=(0, 3)))  # same seed, same batch key: bit-identical
    assert torch.equal(first, a(images, key=(0, 3)))  # and again, from the same augmenter
    assert not torch.allclose(first, c(images, key=(0, 3)))  # another seed
    assert not torch.allclose(first, a(images, key=(1, 3)))  # another epoch
    assert not torch.allclose(first, a(images, key=(0, 4)))  # another batch
    # without a key, successive calls differ, and a fresh augmenter with the seed repeats them
    calls = [a(images), a(images)]
    assert not torch.allclose(*calls)
    fresh = TorchAugmenter(Augment(), 5)
    assert all(torch.equal(x, fresh(images)) for x in calls)


def test_the_loader_hands_keras_float32_pixels_on_the_training_device(small_dataset):
    index = folder_source(small_dataset)["train"]
    aug = build_augmenter(Augment(), seed=0)
    assert isinstance(aug, TorchAugmenter)
    assert aug.device == torch.device(keras.src.backend.torch.core.get_device())
    loader = BatchLoader(index, 32, batch_size=12, workers=1, augmenter=aug, seed=1)
    plain = BatchLoader(index, 32, batch_size=12, workers=1, seed=1)
    x, y = loader[0]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.device == aug.device
    assert tuple(x.shape) == (12, 32, 32, 3) and 0 <= float(x.min()) and float(x.max()) <= 255
    assert np.array_equal(y, plain[0][1])  # labels untouched
    assert torch.equal(x, loader[0][0])  # a batch read twice in one epoch: the same (any thread)
    loader.on_epoch_end()
    assert not torch.allclose(x, loader[0][0])  # a new epoch: new transforms


def test_threaded_loading_gives_the_same_batches_as_reading_in_order(small_dataset):
    """Transforms are keyed by (epoch, batch), so Keras' worker threads cannot reorder the random draws."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    index = folder_source(small_dataset)["train"]

    def loader(workers):
        return BatchLoader(index, 32, batch_size=3, workers=workers, augmenter=build_augmenter(Augment(), 4))

    threaded = PyDatasetAdapter(loader(2))
    assert threaded.enqueuer is not None
    got = [keras.ops.convert_to_numpy(x) for x, _ in threaded.get_numpy_iterator()]
    in_order = loader(1)
    want = [keras.ops.convert_to_numpy(in_order[i][0]) for i in range(len(in_order))]
    assert len(got) == len(want) == 4
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_other_backends_get_the_same_pixels_as_numpy_from_the_cpu():
    aug = Augment(perspective=0.2, zoom=0.1)
    other = build_augmenter(aug, seed=3, backend="jax")
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), np.uint8)
    out = other(images, key=(0, 0))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (3, 16, 16, 3)
    torch_side = build_augmenter(aug, seed=3, backend="torch")(images, key=(0, 0))
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(torch_side), atol=1e-4)
