"""Mixed precision: the recipe's `precision` sets the compute dtype of training only; weights, model.keras
and exports stay float32, and a bfloat16 run on CPU trains with finite loss and exports through the gate."""
import json
import math

import keras
import pytest

from keras_birds.errors import UserError
from keras_birds.models.build import build_classifier
from keras_birds.recipe import Augment, Recipe
from keras_birds.training.precision import resolve_precision, training_precision


def test_policy_applies_inside_only_and_variables_stay_float32():
    with training_precision("bfloat16"):
        model = build_classifier("efficientnet_lite0", 5, "none", image_size=32)
    conv = next(l for l in model.get_layer("backbone")._flatten_layers() if isinstance(l, keras.layers.Conv2D))
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert model.get_layer("head").compute_dtype == "float32"  # probabilities keep their digits
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert build_classifier("efficientnet_lite0", 5, "none", image_size=32).get_layer("head").dtype_policy.name == "float32"


def test_float16_gets_loss_scaling():
    from keras.src.optimizers.loss_scale_optimizer import LossScaleOptimizer

    with training_precision("float16"):
        model = build_classifier("efficientnet_lite0", 3, "none", image_size=32)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    assert isinstance(model.optimizer, LossScaleOptimizer)


def test_auto_is_float32_on_cpu_and_bad_values_are_one_line():
    import torch

    if not torch.cuda.is_available():
        assert resolve_precision("auto") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(UserError, match="precision must be one of auto, float32, bfloat16, float16, got 'fp8'"):
        Recipe(precision="fp8")


def test_bfloat16_run_on_cpu_trains_and_exports_through_the_gate(birds_mini, tmp_path):
    from keras_birds.export.export import export
    from keras_birds.training.train import train

    recipe = Recipe(model="efficientnet_lite0", weights="imagenet", data=str(birds_mini), image_size=64, batch_size=25,
                    epochs=(1, 1), lr=(1e-3, 1e-4), workers=1, head_init="class_mean", precision="bfloat16",
                    augment=Augment(False, 0, 0, 0, 0, 0), name="bf16")
    run = train(recipe, tmp_path / "run", verbose=0, log=lambda *_: None)
    rows = run.read_metrics()
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) and math.isfinite(r["val_loss"]) for r in rows)
    assert json.loads(run.summary_json.read_text())["precision"] == "bfloat16"
    assert json.loads(run.summary_json.read_text())["best_val_top1"] >= 0.5  # it learned, in bfloat16
    saved = keras.saving.load_model(run.model_keras)
    assert {l.dtype_policy.name for l in saved.layers} == {"float32"}
    result = export(run.path, quantize=["none"], out=tmp_path / "export", latency_runs=0, log=lambda *_: None)
    assert result.passed, [f["gate"] for f in result.report["files"]]
