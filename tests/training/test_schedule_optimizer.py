import keras
import numpy as np
import pytest

from keras_birds.training.optimizer import HeadLRAdamW, make_optimizer
from keras_birds.training.schedule import one_cycle, two_phase_plan


def test_one_cycle_shape():
    s = one_cycle(1e-2, 100)
    lrs = np.array([float(s(i)) for i in range(100)])
    assert lrs[0] == pytest.approx(1e-2 / 25, rel=1e-4)
    assert lrs.argmax() == 30 and lrs.max() == pytest.approx(1e-2, rel=1e-4)
    assert np.all(np.diff(lrs[:30]) > 0) and np.all(np.diff(lrs[30:]) < 0)
    assert lrs[-1] < 1e-2 / 1000


def test_two_phase_plan_numbers_epochs_across_phases():
    p1, p2 = two_phase_plan((2, 10), (1e-2, 1e-3))
    assert (p1.first_epoch, p1.end_epoch, p1.train_backbone, p1.peak_lr) == (0, 2, False, 1e-2)
    assert (p2.first_epoch, p2.end_epoch, p2.train_backbone, p2.peak_lr) == (2, 12, True, 1e-3)
    assert [p.number for p in two_phase_plan((0, 5), (1e-2, 1e-3))] == [2]


def _model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, name="body", use_bias=False)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head", use_bias=False)(x))


@pytest.mark.parametrize("mult", [1.0, 10.0])
def test_head_learning_rate_multiplier(mult):
    model = _model()
    opt = make_optimizer(1e-3, weight_decay=0.0, head_lr_mult=mult)
    assert isinstance(opt, HeadLRAdamW) == (mult != 1.0)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    grads = [keras.ops.ones_like(v) for v in model.trainable_variables]
    opt.apply(grads, model.trainable_variables)
    steps = {v.path.split("/")[0]: np.abs(keras.ops.convert_to_numpy(v) - b).max()
             for v, b in zip(model.trainable_variables, before)}
    # Adam's first step moves every weight by ~lr, whatever the gradient's size.
    assert steps["body"] == pytest.approx(1e-3, rel=1e-2)
    assert steps["head"] == pytest.approx(1e-3 * mult, rel=1e-2)
