"""The registry: native sizes are data; resolve_image_size is the one rule for the size a model trains at."""
import pytest

from keras_birds.errors import UserError
from keras_birds.models.registry import MODELS, TRAIN_SIZE, resolve_image_size
from keras_birds.recipe import Recipe, apply_overrides


def test_native_sizes_are_the_architectures_own():
    native = {name: spec.native_size for name, spec in MODELS.items() if spec.native_size != 224}
    assert native == {"efficientnet_b1": 240, "efficientnet_b2": 260, "efficientnet_lite1": 240,
                      "efficientnet_lite2": 260}


@pytest.mark.parametrize("name", list(MODELS))
def test_resolve_image_size(name):
    # The study's rule: 224 (BIRDS-525's own size) unless asked, whatever the native size.
    assert TRAIN_SIZE == 224 and resolve_image_size(name) == 224
    assert resolve_image_size(name, "native") == MODELS[name].native_size
    assert resolve_image_size(name, 96) == 96


def test_recipes_resolve_their_size_through_the_rule():
    assert Recipe(model="efficientnet_b2").image_size == 224
    assert Recipe(model="efficientnet_b2", image_size="native").image_size == 260
    assert Recipe(model="efficientnet_b2", image_size=300).image_size == 300
    r = apply_overrides(Recipe(model="efficientnet_b0"), {"model": "efficientnet_lite1", "image_size": "native"})
    assert (r.model, r.image_size) == ("efficientnet_lite1", 240)
    with pytest.raises(UserError, match=r"--set image_size=big: expected a whole number or native"):
        apply_overrides(Recipe(), {"image_size": "big"})


def test_native_of_an_unknown_model_is_one_line():
    with pytest.raises(UserError, match=r"^image_size='native' needs a known model, got 'resnet9000' \(known: "):
        Recipe(model="resnet9000", image_size="native")
