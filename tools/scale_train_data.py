"""bench_scale.py's train-data verb, in its own process: what `train` spends on data before and around the model.

Run by `tools/bench_scale.py --train-data DATA --out DIR` with KERAS_BIRDS_CACHE set to a fresh folder.
Times, in order, with the code train() runs (recipes/effnet_lite0.py's loader settings, cache=true):
  index_seconds         load_source: listing the split folders
  cache_seconds         decoding the train split once into the uint8 array cache
  loader_epoch_seconds  one epoch of the augmenting, shuffled train loader through model.fit into a model
                        whose train step does nothing (the data path alone, Keras' enqueuer included)
  step_seconds          median of a few real all-layer EfficientNet-Lite0 steps (random weights), and
  projected_epoch_seconds  that times the steps of an epoch
and writes them to DIR/train_data.json.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path

REAL_STEPS = 6  # timed after 2 warm-up steps


def main(data: Path, out: Path) -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")  # as keras-birds' own commands
    import keras
    import numpy as np

    from keras_birds.data.augment import build_augmenter
    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import load_source
    from keras_birds.models.build import build_classifier, classifier_options
    from keras_birds.recipe import apply_overrides, load_recipe
    from keras_birds.training.phases import setup_phase
    from keras_birds.training.schedule import two_phase_plan

    recipe = apply_overrides(load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "effnet_lite0.py"),
                             {"data": str(data), "weights": "none", "cache": "true"})
    figures = {}
    started = time.time()
    index = load_source(recipe.data)["train"]
    figures["index_seconds"] = round(time.time() - started, 2)
    args = dict(image_size=recipe.image_size, batch_size=recipe.batch_size, workers=recipe.workers, cache=True)
    started = time.time()
    BatchLoader(index, **args)  # builds the cache entry
    figures["cache_seconds"] = round(time.time() - started, 2)
    loader = BatchLoader(index, shuffle=True, augmenter=build_augmenter(recipe.augment, recipe.seed), as_tensors=True,
                         **args)

    class Idle(keras.Model):
        def train_step(self, batch):  # the data path alone: the batch arrives and nothing is computed
            return {"rows": batch[0].shape[0]}

    idle = Idle(inputs=(x := keras.Input((2,))), outputs=keras.layers.Identity()(x))
    idle.compile()
    started = time.time()
    idle.fit(loader, epochs=1, verbose=0)
    figures["loader_epoch_seconds"] = round(time.time() - started, 2)
    figures["peak_rss_mb_data_path"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["batches"] = len(loader)

    n_classes = len(index.class_names)
    model = build_classifier(recipe.model, n_classes, "none", **classifier_options(recipe))
    setup_phase(model, recipe, two_phase_plan(recipe.epochs, recipe.lr)[1], len(loader), n_classes)
    stamps = []
    stamp = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None: stamps.append(time.perf_counter()))
    stamps.append(time.perf_counter())
    model.fit(loader, epochs=1, steps_per_epoch=REAL_STEPS + 2, verbose=0, callbacks=[stamp])
    step = float(np.median(np.diff(stamps)[2:]))
    figures["step_seconds"] = round(step, 3)
    figures["projected_epoch_seconds"] = round(step * len(loader), 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_data.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))
