"""RunContext: a run directory opened once for everything after training (eval, predict, export, compare).

It answers the questions each of them used to answer on its own, each answer read once:

    run = RunContext.existing(path, hint)
    run.recipe()          the stored recipe.json as a Recipe
    run.model_file()      model.keras, else best.weights.h5 (a run still training, or killed)
    run.class_names()     classes.txt
    run.split_index(split, data=None, exclude=None)   one split of its data, less its exclude list
    run.unfinished()      how far a run got whose training never ended (killed, or still going), else None

A RunContext is a RunDir, so every path of the run directory contract is there too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from keras_birds.errors import UserError, brief
from keras_birds.recipe import Recipe
from keras_birds.run_dir import RunDir

# What every recipe.json train has written holds; without them the file is someone else's JSON.
REQUIRED_KEYS = ("model", "image_size", "data")


@dataclass
class DataSplit:
    """One split to run a model on: the images, where they came from and the exclude list applied."""

    index: object  # SplitIndex
    data: str
    excluded: set  # absolute paths the exclude list names (whether or not in this split)
    from_run: bool  # the data is the run's own (recipe.json), not a --data override


class RunContext(RunDir):
    def __init__(self, path):
        super().__init__(path)
        self._recipe, self._classes = None, None

    def recipe(self) -> Recipe:
        if self._recipe is None:
            try:
                raw = self.read_recipe()
            except json.JSONDecodeError as e:
                raise UserError(f"{self.recipe_json} is not JSON ({brief(e)}): not a keras-birds recipe") from None
            missing = next((k for k in REQUIRED_KEYS if not isinstance(raw, dict) or k not in raw), None)
            if missing:
                raise UserError(f"{self.recipe_json} has no '{missing}': not a keras-birds recipe")
            try:
                self._recipe = Recipe.from_dict(raw)
            except UserError as e:
                raise UserError(f"{self.recipe_json}: {e}") from None
            except (TypeError, KeyError, ValueError) as e:  # a field this version does not know, or lacks
                raise UserError(f"{self.recipe_json} is not a recipe this keras-birds reads "
                                f"({brief(e, 160, with_type=True)})") from None
        return self._recipe

    def model_file(self) -> Path:
        """model.keras (written when training ends), else best.weights.h5 (the best epoch so far)."""
        for path in (self.model_keras, self.best_weights):
            if path.is_file():
                return path
        raise UserError(f"{self.path} has no trained model yet (no model.keras or best.weights.h5): "
                        f"let at least one epoch finish")

    def unfinished(self) -> dict | None:
        return unfinished(self)

    def class_names(self) -> list:
        if self._classes is None:
            names = self.read_classes()
            if not names:
                raise UserError(f"{self.classes_txt} is empty: it must list the run's classes, one per line")
            self._classes = names
        return list(self._classes)

    def split_index(self, split: str, data=None, exclude=None) -> DataSplit:
        return load_split(split, data, exclude, run=self)


def unfinished(run: RunDir) -> dict | None:
    """{"epochs_done", "epochs", "note"} of a run whose training has not ended, else None: the one test eval,
    predict, compare and report share. Training writes model.keras, then summary.json, only when it ends;
    state.json counts the epochs finished, recipe.json the epochs asked for."""
    if run.model_keras.is_file() or run.summary_json.is_file():
        return None
    done, epochs = run.epochs_progress()
    total = "?" if epochs is None else epochs
    note = f"unfinished: stopped after epoch {done} of {total}" if done else f"unfinished: no epoch of {total} finished"
    return {"epochs_done": done, "epochs": epochs, "note": note}


def load_split(split: str, data=None, exclude=None, run: RunContext | None = None) -> DataSplit:
    """One split of `data`, less the images an exclude list names.

    data None: the run's own data. exclude None: the run's own list when the data is the run's own
    (a --data override goes without it), else none; '' or 'none': none. A list that does not exist is
    a UserError (data.sources.missing_exclude_file), as in train.
    """
    from keras_birds.data.sources import read_exclude_file

    from_run = data is None
    if from_run:
        if run is None:
            raise ValueError("load_split needs `data` when there is no run")
        data = run.recipe().data
    recorded_in = None
    if exclude is None:
        exclude = run.recipe().exclude if from_run else ""
        recorded_in = run.recipe_json if exclude else None
    elif str(exclude).lower() == "none":
        exclude = ""
    excluded = read_exclude_file(exclude, recorded_in)
    try:
        index = _one_split(str(data), split)
    except UserError as e:
        if from_run:
            raise UserError(f"{e} (the run's data, from its recipe.json; pass --data PATH if it has moved, "
                            f"or to use other images)") from e
        raise
    return DataSplit(index.without(excluded) if excluded else index, str(data), excluded, from_run)


def _one_split(data: str, split: str):
    from keras_birds.data.sources import folder_source, load_source, named_source

    if named_source(data):
        return load_source(data)[split]
    return folder_source(data, splits=(split,))[split]  # only the split asked for needs to exist
