"""setup_phase: what train() and tools/bench_train.py run at the start of each phase."""
import keras
import pytest

from keras_birds.models.build import BACKBONE, build_classifier
from keras_birds.recipe import Recipe
from keras_birds.training.phases import setup_phase
from keras_birds.training.schedule import two_phase_plan


def _bn_layers(model):
    return [layer for layer in model.get_layer(BACKBONE)._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("freeze_bn", [False, True])
def test_setup_phase_sets_trainable_layers_and_compiles(freeze_bn):
    recipe = Recipe(model="efficientnet_lite0", weights="none", image_size=32, epochs=(1, 2), lr=(1e-2, 1e-3),
                    freeze_bn=freeze_bn, head_lr_mult=10.0)
    model = build_classifier(recipe.model, 3, "none", image_size=32)
    warmup, full = two_phase_plan(recipe.epochs, recipe.lr)

    schedule = setup_phase(model, recipe, warmup, steps_per_epoch=5, n_classes=3)
    assert not model.get_layer(BACKBONE).trainable
    assert len(model.trainable_weights) == 2  # the head's kernel and bias
    assert float(schedule(round(0.3 * 5))) == pytest.approx(1e-2)  # one-cycle peak at 30% of the phase
    assert model.compiled and not hasattr(model.optimizer, "head_lr_mult")  # head_lr_mult: phase 2 only

    schedule = setup_phase(model, recipe, full, steps_per_epoch=5, n_classes=3)
    assert model.get_layer(BACKBONE).trainable
    assert all(layer.trainable != freeze_bn for layer in _bn_layers(model))
    assert float(schedule(round(0.3 * 10))) == pytest.approx(1e-3)
    assert model.optimizer.head_lr_mult == 10.0
