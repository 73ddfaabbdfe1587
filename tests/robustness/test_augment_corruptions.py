"""Corruptions as training augmentation: Augment fields (strength, probability), batched and seeded like
the geometric steps, applied to the chosen share of a batch and never stronger than the strength."""
import numpy as np
import pytest

from keras_birds.data.augment import build_augmenter
from keras_birds.data.corruptions import CORRUPTIONS
from keras_birds.errors import UserError
from keras_birds.recipe import CORRUPTION_FIELDS, Augment, Recipe, apply_overrides

NO_GEOMETRY = dict(flip=False, perspective=0, rotation=0, translate=0, zoom=0, shear=0)


def _changed(out, images):
    return ~np.all(np.abs(np.asarray(out) - images) < 1e-3, axis=(1, 2, 3))


def test_every_corruption_has_an_augment_field_off_by_default():
    assert CORRUPTION_FIELDS == tuple(CORRUPTIONS)
    assert all(getattr(Augment(), n) == (0.0, 0.0) for n in CORRUPTION_FIELDS)
    assert build_augmenter(Augment(**NO_GEOMETRY, fog=(0.5, 0.0))) is None  # probability 0: nothing to do


def test_fields_take_strength_and_probability_from_set_and_json():
    r = apply_overrides(Recipe(), {"augment.jpeg": "0.8,0.2"})
    assert r.augment.jpeg == (0.8, 0.2)
    assert Recipe.from_dict(r.to_dict()).augment.jpeg == (0.8, 0.2)  # recipe.json stores a list


@pytest.mark.parametrize("value", [(1.5, 0.1), (0.5, -0.1), (0.5,), (float("nan"), 0.5), "x"])
def test_bad_field_is_one_line(value):
    with pytest.raises(UserError) as e:
        Augment(rain=value)
    assert "\n" not in str(e.value) and str(e.value).startswith("augment.rain must be two numbers in [0, 1]")


def test_chosen_share_is_corrupted_deterministically(bird_images):
    images = np.repeat(bird_images, 11, axis=0)[:64]
    aug = build_augmenter(Augment(**NO_GEOMETRY, gaussian_noise=(1.0, 0.5)), seed=4)
    out = aug(images, key=(0, 1)).cpu().numpy()
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    assert 0.3 < _changed(out, images).mean() < 0.7
    assert np.array_equal(out, aug(images, key=(0, 1)).cpu().numpy())  # same seed and key, same batch
    assert not np.array_equal(out, aug(images, key=(0, 2)).cpu().numpy())


def test_strength_is_the_most_a_batch_gets(bird_images):
    """gaussian_noise at strength 0.2 (severity 1): no image gets more than severity 1's noise (std 19.4)."""
    aug = build_augmenter(Augment(**NO_GEOMETRY, gaussian_noise=(0.2, 1.0)), seed=0)
    out = aug(bird_images, key=(0, 0)).cpu().numpy()
    noise_std = (out - bird_images).std(axis=(1, 2, 3))
    assert np.all(_changed(out, bird_images)) and noise_std.max() < 19.4 * 1.05, noise_std


def test_geometry_draws_are_unchanged_by_corruptions(bird_images):
    """Corruptions draw after the geometric steps, so turning them on keeps each image's warp."""
    plain = build_augmenter(Augment(), seed=1)(bird_images, key=(0, 0)).cpu().numpy()
    with_blur = build_augmenter(Augment(defocus_blur=(1.0, 1e-9)), seed=1)(bird_images, key=(0, 0)).cpu().numpy()
    assert np.allclose(plain, with_blur)
