"""The photo corruptions on real bird images: deterministic for a seed, identity at severity 0, stronger
(lower PSNR) with each severity, uint8 and shape kept; bad names and severities are one-line errors."""
import numpy as np
import pytest

from keras_birds.data.corruptions import CORRUPTIONS, GROUPS, corrupt, parse_names, parse_severities
from keras_birds.errors import UserError

NAMES = list(CORRUPTIONS)
DRAWS_NOTHING = {"defocus_blur", "jpeg"}  # no random draw: the same for every seed


def psnr(clean, other):
    mse = ((clean.astype(np.float64) - other.astype(np.float64)) ** 2).mean()
    return 10 * np.log10(255 ** 2 / mse) if mse else np.inf


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(bird_images, name):
    a = corrupt(bird_images, name, 3, seed=1, key=(0,))
    assert np.array_equal(a, corrupt(bird_images, name, 3, seed=1, key=(0,)))
    other = corrupt(bird_images, name, 3, seed=2, key=(0,))
    assert np.array_equal(a, other) == (name in DRAWS_NOTHING)


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_the_identity(bird_images, name):
    assert np.array_equal(corrupt(bird_images, name, 0, seed=3), bird_images)


@pytest.mark.parametrize("name", NAMES)
def test_strength_grows_with_severity(bird_images, name):
    """PSNR against the clean image, per image, falls at every step from severity 1 to 5."""
    by_severity = np.array([[psnr(img, out) for img, out in zip(bird_images, corrupt(bird_images, name, s))]
                            for s in range(1, 6)])
    assert np.all(np.diff(by_severity, axis=0) < 0), by_severity.round(1)
    assert by_severity[0].mean() < 40 and by_severity[-1].mean() < 30, by_severity.mean(1).round(1)  # visible


@pytest.mark.parametrize("name", NAMES)
def test_keeps_uint8_range_and_shape(bird_images, name):
    wide = np.concatenate([bird_images[:2], bird_images[:2, :, :36]], axis=2)  # 96 x 132: not square, not /8
    for images in (bird_images, wide):
        out = corrupt(images, name, 5)
        assert out.dtype == np.uint8 and out.shape == images.shape
        assert 0 < out.std()  # not flattened to one value


def test_every_corruption_is_documented_in_one_line():
    for name, c in CORRUPTIONS.items():
        assert c.doc and "\n" not in c.doc.strip(), name


def test_names_groups_and_severities_parse():
    assert parse_names("all") == tuple(NAMES)
    assert parse_names("blur") == GROUPS["blur"] == ("defocus_blur", "motion_blur")
    assert parse_names(" jpeg, fog ,fog") == ("fog", "jpeg")  # application order, once each
    assert parse_severities("all") == (1, 2, 3, 4, 5) and parse_severities("5,1") == (1, 5)


@pytest.mark.parametrize("bad", ["smog", "fog,smog", ",", ""])
def test_bad_name_is_one_line(bad):
    with pytest.raises(UserError) as e:
        parse_names(bad)
    assert "\n" not in str(e.value) and ("smog" in str(e.value) or "at least one" in str(e.value))


@pytest.mark.parametrize("bad", ["0", "6", "-1", "x", "1-5", "", "2.5"])
def test_bad_severity_is_one_line(bad):
    with pytest.raises(UserError, match="1 to 5") as e:
        parse_severities(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [-1, 6, 2.5, True])
def test_corrupt_refuses_a_bad_severity(bird_images, bad):
    with pytest.raises(UserError, match="0 to 5"):
        corrupt(bird_images, "fog", bad)
