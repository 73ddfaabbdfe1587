"""open_model(path) -> a runner with what its run says about running it: input size and flip TTA.

eval and predict both go through this, so a photo gets the answer eval's figures describe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from keras_birds.errors import UserError
from keras_birds.inference.context import RunContext
from keras_birds.inference.mirror import flip_averaged
from keras_birds.inference.runners import Runner, open_runner
from keras_birds.recipe import Recipe


@dataclass
class OpenedModel:
    runner: Runner
    run: RunContext | None  # the run the model belongs to (opened once), if any
    recipe: Recipe | None
    tta_flip: bool
    predict: Callable  # runner.predict, averaged with the mirror image when tta_flip


def open_model(path, tta_flip=None, threads: int | None = None) -> OpenedModel:
    """A run directory (or its RunContext), .keras, .tflite or .onnx file; tta_flip None: default_tta_flip;
    threads: a .tflite's or .onnx's runtime threads (default: every usable core)."""
    runner = open_runner(path, threads)
    run = runner.run_dir
    recipe = run.recipe() if run is not None else None
    check_image_size(runner, recipe)
    if tta_flip is None:
        tta_flip = default_tta_flip(runner, recipe)
    return OpenedModel(runner, run, recipe, bool(tta_flip), flip_averaged(runner.predict) if tta_flip else runner.predict)


def check_image_size(runner: Runner, recipe: Recipe | None):
    """Give a runner without a fixed input size its run's size; refuse a file whose size is not its run's."""
    size = recipe.image_size if recipe else None
    if runner.image_size is None:
        if size is None:
            raise UserError(f"{runner.path} has no fixed input size and no run directory says which to use")
        runner.image_size = int(size)
    elif size is not None and int(size) != runner.image_size:
        raise UserError(
            f"{runner.path} takes {runner.image_size}x{runner.image_size} images but its run "
            f"{runner.run_dir.path} was trained on {size}x{size}: it is not this run's model (re-export it)")


def default_tta_flip(runner: Runner, recipe: Recipe | None) -> bool:
    """The run recipe's tta_flip for the run's own Keras model, so a run's figures are reproduced.

    Off for an exported file (.tflite, .onnx) wherever it sits: it is judged as an app runs it, one
    pass per image, and answers the same inside its run directory as copied anywhere else.
    """
    return bool(recipe.tta_flip) if recipe and runner.kind == "keras" and in_run(runner) else False


def in_run(runner: Runner) -> bool:
    """The model is the run's own (model.keras / best weights), not a file exported elsewhere."""
    return runner.run_dir is not None and runner.path.parent == runner.run_dir.path
