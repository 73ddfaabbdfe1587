"""keras-birds compare on a really trained tiny run and its ONNX export; the zoo's build-only rows."""
import csv
import json

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.comparison.compare import compare, exported_files
from keras_birds.errors import UserError


@pytest.fixture(scope="module")
def comparison(trained_tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    return compare([trained_tiny_run.path], split="test", exported=True, out=out, latency_runs=3, progress=False,
                   log=lambda *_: None)


def test_rows_are_the_eval_figures_of_the_run_and_its_export(comparison, trained_tiny_run):
    from keras_birds.evaluation.evaluate import evaluate

    keras_row, onnx_row = comparison.rows
    assert (keras_row["name"], keras_row["format"]) == ("tiny_lite0", "keras")
    assert onnx_row["format"] == "onnx fp32"
    report = evaluate(trained_tiny_run.path, split="test", latency_runs=0, progress=False,
                      out=trained_tiny_run.path / "eval-check")
    assert keras_row["top1"] == report["top1"] and keras_row["top5"] == report["top5"]
    assert abs(onnx_row["top1"] - keras_row["top1"]) <= 1 / 25  # same model, float32 either way
    summary = json.loads(trained_tiny_run.summary_json.read_text())
    assert keras_row["valid_top1"] == summary["best_val_top1"]
    assert keras_row["params"] == report["params"] and keras_row["fp32_mb"] == pytest.approx(report["params"] * 4 / 1e6, abs=1e-3)
    assert keras_row["int8_mb"] is None  # no model_int8.tflite was exported
    for row in comparison.rows:
        assert row["latency_ms"] > 0 and row["throughput_img_s"] > 0 and row["device"]


def test_files_written_and_recommendation_follows_the_rule(comparison):
    files = comparison.files
    assert all(p.is_file() for p in files.values())
    assert files["pareto.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = files["comparison.md"].read_text()
    assert "| tiny_lite0 | keras |" in md and "| tiny_lite0 | onnx fp32 |" in md and "**Recommended:** tiny_lite0" in md
    rows = list(csv.DictReader(files["comparison.csv"].open()))
    assert [r["format"] for r in rows] == ["keras", "onnx fp32"]
    best = max(float(r["top1"]) for r in rows)
    near = [r for r in rows if 100 * (best - float(r["top1"])) <= 0.5 + 1e-9]
    smallest = min(near, key=lambda r: (float(r["size_mb"]), float(r["latency_ms"])))
    rec = json.loads(files["comparison.json"].read_text())["recommended"]
    assert rec["format"] in {r["format"] for r in near}
    if len(near) == 1 or all(float(r["latency_ms"]) >= float(smallest["latency_ms"]) for r in near):
        assert rec["format"] == smallest["format"]


def test_exported_files_order_and_unverified_last(tmp_path):
    from keras_birds.run_dir import RunDir

    (tmp_path / "export").mkdir()
    for name in ("model_int8.unverified.tflite", "model_fp32.tflite", "model.onnx", "labels.txt"):
        (tmp_path / "export" / name).write_bytes(b"x")
    assert [p.name for p in exported_files(RunDir(tmp_path))] == ["model.onnx", "model_fp32.tflite",
                                                                  "model_int8.unverified.tflite"]


def test_not_a_run_is_refused_before_any_evaluation(trained_tiny_run, tmp_path):
    with pytest.raises(UserError, match="is not a keras-birds run directory"):
        compare([trained_tiny_run.path, tmp_path], out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "missing")])
    assert res.exit_code == 2 and res.stderr.startswith("error: run directory") and res.stderr.count("\n") == 1


def test_cli_prints_the_table(trained_tiny_run, tmp_path):
    res = CliRunner().invoke(main, ["compare", str(trained_tiny_run.path), "--split", "valid", "--out",
                                    str(tmp_path / "c"), "--latency-runs", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert "valid top-1" in res.stdout and "**Recommended:** tiny_lite0" in res.stdout
    assert (tmp_path / "c" / "comparison.csv").is_file()


def test_zoo_rows_for_random_init_builds(tmp_path):
    import keras

    from keras_birds.comparison.zoo import zoo_rows
    from keras_birds.models.build import build_classifier

    rows = zoo_rows(["efficientnet_lite0"], n_classes=10, export_int8=True, latency_runs=2, log=lambda *_: None)
    keras_row, int8_row = rows
    params = build_classifier("efficientnet_lite0", 10, "none").count_params()
    keras.backend.clear_session()
    assert keras_row["params"] == params and keras_row["fp32_mb"] == pytest.approx(params * 4 / 1e6, abs=1e-3)
    assert keras_row["top1"] is None and keras_row["valid_top1"] is None
    assert int8_row["format"] == "tflite int8" and keras_row["int8_mb"] == int8_row["int8_mb"]
    # int8 weights: about a quarter of float32 (BatchNorm folded away); distinct random weights, none shared
    assert 0.2 < int8_row["int8_mb"] / keras_row["fp32_mb"] < 0.4
    assert int8_row["latency_ms"] > 0 and "LiteRT" in int8_row["device"]
    from keras_birds.comparison.compare import write_comparison

    result = write_comparison(rows, tmp_path, None)
    assert "**Recommended:** none" in result.files["comparison.md"].read_text()
    assert result.files["pareto.png"].is_file()  # size vs latency without accuracy


def test_recipe_models_are_the_distinct_architectures_of_recipes(repo_root):
    from keras_birds.comparison.zoo import recipe_models

    models = recipe_models(repo_root / "recipes")
    assert len(models) == len(set(models)) == 10
    assert {"resnet18", "resnet34", "resnet50", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
            "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "convnext_tiny"} == set(models)
