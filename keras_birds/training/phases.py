"""One training phase's set-up: which layers train, and the compiled optimizer, loss and metrics.

Public so that tools/bench_train.py times exactly what train() runs for a phase.
"""
from __future__ import annotations

import keras

from keras_birds.models.build import BACKBONE
from keras_birds.recipe import Recipe
from keras_birds.training import distill, distributed
from keras_birds.training.optimizer import make_optimizer
from keras_birds.training.schedule import Phase, one_cycle


def set_trainable(model, phase: Phase, freeze_bn: bool) -> None:
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = phase.train_backbone
    if phase.train_backbone and freeze_bn:
        # Keras runs a non-trainable BatchNormalization in inference mode: statistics stay frozen.
        for layer in backbone._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def compile_phase(model, recipe: Recipe, phase: Phase, steps_per_epoch: int, n_classes: int):
    """Compile for `phase`; returns its one-cycle LR schedule (the checkpoint callback logs it)."""
    schedule = one_cycle(phase.peak_lr, phase.epochs * steps_per_epoch)
    # The head multiplier applies to the all-layers phase; in the warm-up only the head trains.
    head_mult = recipe.head_lr_mult if phase.train_backbone else 1.0
    if recipe.teacher:  # targets are [one-hot | teacher probabilities]: training/distill.py
        loss = distill.KDLoss(n_classes, recipe.kd_temperature, recipe.kd_alpha, recipe.label_smoothing)
        metrics = distill.label_metrics(n_classes)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="top1"),
                   keras.metrics.TopKCategoricalAccuracy(min(5, n_classes), name="top5")]
    model.compile(optimizer=make_optimizer(schedule, recipe.weight_decay, head_mult), loss=loss, metrics=metrics)
    distributed.average_gradients(model.optimizer)  # no-op in a single process
    return schedule


def setup_phase(model, recipe: Recipe, phase: Phase, steps_per_epoch: int, n_classes: int):
    """set_trainable + compile_phase, as train() runs them at the start of each phase; returns the schedule."""
    set_trainable(model, phase, recipe.freeze_bn)
    return compile_phase(model, recipe, phase, steps_per_epoch, n_classes)
