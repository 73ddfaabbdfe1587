"""A tiny finished run on birds-mini, exported once for the whole tests/export folder.

The run is written through RunDir, not trained: EfficientNet-Lite0 with its packaged ImageNet
weights (offline) at 96 px, head imprinted from class means of the 75 training images. That takes
seconds, reaches ~80% validation top-1 and gives predictions with real margins, so the int8 gate
is meaningful (random-init models output near-ties or NaN-prone huge logits; at 64 px one of the
25 validation images flips under int8).
"""
import json

import pytest

from keras_birds.recipe import Recipe
from keras_birds.run_dir import RunDir, atomic_save

IMAGE_SIZE = 96


def write_tiny_run(path, data, image_size=IMAGE_SIZE, weights="imagenet", pooling="avg", l2_features=False):
    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import load_source
    from keras_birds.models.build import build_classifier
    from keras_birds.training.head_init import init_head_from_class_means

    recipe = Recipe(model="efficientnet_lite0", weights=weights, data=str(data), image_size=image_size,
                    batch_size=32, epochs=(1, 0), workers=1, name="tiny", pooling=pooling, l2_features=l2_features)
    index = load_source(recipe.data)
    classes = index["train"].class_names
    run = RunDir(path)
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(classes)
    model = build_classifier(recipe.model, len(classes), recipe.weights, image_size, recipe.dropout,
                             pooling, l2_features)
    init_head_from_class_means(model, BatchLoader(index["train"], image_size, 32, workers=1), len(classes), scale=30.0)
    atomic_save(run.best_weights, model.save_weights)
    atomic_save(run.model_keras, model.save)
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, birds_mini):
    return write_tiny_run(tmp_path_factory.mktemp("export_run") / "run", birds_mini)


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory):
    """ONNX + TFLite fp32, fp16, dynamic, int8 of the tiny run (gate on) and OUT/web/, its page, through
    `keras-birds export --web`: the page tests (test_web_page.py) share this export instead of converting
    and gating the int8 file a second time. An ExportResult of OUT and its export.json."""
    from click.testing import CliRunner

    from keras_birds.cli import main
    from keras_birds.export.export import ExportResult

    out = tmp_path_factory.mktemp("export_out") / "export"
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--quantize", "none,fp16,dynamic,int8", "--web",
                                       "--out", str(out), "--latency-runs", "3", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'web'}/" in result.stdout
    return ExportResult(out, json.loads((out / "export.json").read_text()))


@pytest.fixture
def make_tiny_run(birds_mini):
    """write_tiny_run on birds-mini with other recipe settings (pooling, l2_features)."""
    return lambda path, **settings: write_tiny_run(path, birds_mini, **settings)
