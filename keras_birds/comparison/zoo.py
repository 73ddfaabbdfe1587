"""The size/speed half of the study's table without training: build each model with random
weights and measure parameters, float32 MB, Keras batch-1 latency and, optionally, the int8 .tflite
file's size and latency on this machine. Neither size nor speed depends on the weights' values.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from keras_birds.comparison.table import new_row
from keras_birds.console import log as _log

N_CLASSES = 525  # BIRDS-525: the head the app ships
CALIBRATION_IMAGES = 8  # int8 ranges from random pixels: the file's size does not depend on them


def recipe_models(recipes_dir) -> dict:
    """{model: (input sizes its recipes train at)} of the recipe files in `recipes_dir`, in file order."""
    from keras_birds.recipe_catalog import recipe_image_sizes

    return recipe_image_sizes(recipes_dir)


def zoo_rows(models, *, image_sizes=None, n_classes=N_CLASSES, export_int8=True, latency_runs=20, log=_log) -> list:
    """One Keras row per model and input size, plus its int8 .tflite row when export_int8.

    Each model is built at the sizes its recipes train at (`image_sizes`, as recipe_models gives them),
    else at resolve_image_size(model): the rows describe what the recipes ship.
    """
    import keras

    from keras_birds.inference.latency import measure_latency, torch_device
    from keras_birds.inference.runners import KerasRunner, TFLiteRunner
    from keras_birds.export.tflite import export_tflite
    from keras_birds.models.build import build_classifier, classifier_options
    from keras_birds.models.registry import resolve_image_size
    from keras_birds.recipe import Recipe

    builds = []  # (model, size, row name): one build per size the model's recipes train at
    for model_name in models:
        sizes = (image_sizes or {}).get(model_name) or (resolve_image_size(model_name),)
        builds += [(model_name, s, f"{model_name} {s}px" if len(sizes) > 1 else model_name) for s in sizes]
    rows = []
    rng = np.random.default_rng(0)
    for n, (model_name, size, name) in enumerate(builds, 1):
        log(f"[{n}/{len(builds)}] {name}: building at {size}px with random weights ...")
        # the default head at the resolved size, as the recipes build it
        options = classifier_options(Recipe(model=model_name, weights="none", image_size=size))
        model = build_classifier(model_name, n_classes, "none", **options)
        images = rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
        with tempfile.TemporaryDirectory(prefix="keras_birds_zoo_") as tmp:
            weights = Path(tmp) / "model.weights.h5"
            model.save_weights(weights)
            runner = KerasRunner(model, weights)
            timing = measure_latency(runner.predict, images, runs=latency_runs, batch_size=8)
            params = int(model.count_params())
            row = new_row(name=name, format="keras", params=params, fp32_mb=round(params * 4 / 1e6, 3),
                          size_mb=round(params * 4 / 1e6, 3), latency_ms=timing["latency_ms_b1_median"],
                          throughput_img_s=timing["throughput_img_s"], device=torch_device(),
                          source=f"random init, {size}px")
            rows.append(row)
            if export_int8:
                log(f"[{n}/{len(builds)}] {name}: converting to int8 .tflite ...")
                written = export_tflite(
                    model_name=model_name, weights=weights, n_classes=n_classes, options=options,
                    class_names=[f"class_{i}" for i in range(n_classes)], quantize=["int8"], out_dir=Path(tmp),
                    calibration=rng.integers(0, 256, (CALIBRATION_IMAGES, size, size, 3), dtype=np.uint8),
                    description={"name": name, "description": "random-init build for sizing", "version": "",
                                 "author": "keras-birds"})
                path = written["int8"]
                tfl = TFLiteRunner(path)
                t = measure_latency(tfl.predict, images, runs=latency_runs, batch_size=8)
                mb = round(path.stat().st_size / 1e6, 3)
                row["int8_mb"] = mb
                rows.append(new_row(name=name, format="tflite int8", params=params, int8_mb=mb, size_mb=mb,
                                    latency_ms=t["latency_ms_b1_median"], throughput_img_s=t["throughput_img_s"],
                                    device=tfl.device, source=f"random init, {size}px"))
                del tfl
        del model, runner
        keras.backend.clear_session()
    return rows
