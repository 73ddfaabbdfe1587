"""`keras-birds export` on a tiny birds-mini run: files, labels inside, I/O, the parity gate, bad input."""
import json
import shutil

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.inference.runners import open_runner
from keras_birds.export import metadata as md
from keras_birds.export import tflite as tflite_export
from keras_birds.export import verify as gate
from keras_birds.run_dir import RunDir

IMAGE_SIZE = 96  # the tiny run of tests/export/conftest.py

FILES = ["model.onnx", "model_fp32.tflite", "model_fp16.tflite", "model_dynamic.tflite", "model_int8.tflite"]


def _entry(result, name):
    return next(f for f in result.report["files"] if f["file"] == name)


def test_files_written_with_labels_inside(exported, tiny_run):
    import onnx

    classes = tiny_run.read_classes()
    assert len(classes) == 25
    out = exported.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES + ["labels.txt", "export.json", "web"])  # --web
    assert (out / "labels.txt").read_text().splitlines() == classes
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert props["labels"].splitlines() == classes
    assert "0-255" in props["input"] and props["input_mean"] == "0" and props["input_std"] == "1"
    for name in FILES[1:]:
        data = (out / name).read_bytes()
        meta = md.read_metadata(data)
        assert meta["min_parser_version"] == "1.0.0"
        (inp,), (outp,) = meta["inputs"], meta["outputs"]
        assert inp["content"] == "image" and inp["color_space"] == "RGB"
        assert inp["default_size"] == [IMAGE_SIZE, IMAGE_SIZE]
        assert inp["normalization"] == {"mean": [0.0], "std": [1.0]}
        assert outp["associated_files"] == [{"name": "labels.txt", "type": 2}]  # TENSOR_AXIS_LABELS
        assert md.associated_files(data)["labels.txt"].decode().splitlines() == classes
        # what every consumer of the file (eval, predict, the gate) reads back
        assert open_runner(out / name).class_names == classes


def test_input_output_shapes_and_dtypes(exported):
    s = IMAGE_SIZE
    onnx_io = _entry(exported, "model.onnx")
    assert onnx_io["input"] == {"name": "pixels", "shape": [1, s, s, 3], "dtype": "float32"}
    assert onnx_io["output"] == {"name": "probabilities", "shape": [1, 25], "dtype": "float32"}
    for name in ("model_fp32.tflite", "model_fp16.tflite", "model_dynamic.tflite"):
        e = _entry(exported, name)
        assert (e["input"]["shape"], e["input"]["dtype"]) == ([1, s, s, 3], "float32"), name
        assert (e["output"]["shape"], e["output"]["dtype"]) == ([1, 25], "float32"), name
    e = _entry(exported, "model_int8.tflite")
    assert (e["input"]["shape"], e["input"]["dtype"]) == ([1, s, s, 3], "uint8")
    assert (e["output"]["shape"], e["output"]["dtype"]) == ([1, 25], "uint8")
    # uint8 in = the raw pixel; uint8 out = probability * 256 (softmax's fixed output scale)
    assert e["input"]["quantization"]["zero_point"] == 0
    assert abs(e["input"]["quantization"]["scale"] - 1.0) < 0.01
    assert e["output"]["quantization"] == {"scale": 1 / 256, "zero_point": 0}
    assert e["per_channel_weights"] is True
    assert e["float_ops"] == []  # every op int8 by default
    sizes = {f["file"]: f["size_bytes"] for f in exported.report["files"]}
    assert sizes["model_int8.tflite"] < 0.4 * sizes["model_fp32.tflite"]
    assert sizes["model_fp16.tflite"] < 0.6 * sizes["model_fp32.tflite"]


def test_parity_within_the_gate(exported, tiny_run):
    report = json.loads((exported.out_dir / "export.json").read_text())
    assert report["passed"] is True and exported.passed
    assert report["validation_images"] == 25
    assert report["calibration"] == {"images": 75, "species": 25, "of_species": 25, "split": "train"}
    keras = report["keras"]
    assert keras["latency_ms_b1_median"] > 0 and keras["size_bytes"] > 0
    for f in report["files"]:
        g = f["gate"]
        assert f["verified"] is True and g["passed"] is True, g
        assert g["images"] == 25 and g["keras_top1"] >= 0.5  # the fixture is a real classifier
        if f["quantize"] in ("int8", "dynamic"):
            assert g["top1_drop_points"] <= 1.0
        else:
            assert g["top1_agreement"] >= 0.995 and g["max_abs_prob_diff"] < 0.02
        assert f["latency_ms_b1_median"] > 0 and f["speedup_vs_keras"] > 0
        if f["format"] == "tflite":  # one thread too: what a phone app often runs
            assert f["latency_ms_b1_1thread_median"] > 0
    # the same figures by hand, through the runners: probabilities in, probabilities out
    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import load_source

    images, labels = BatchLoader(load_source(tiny_run.read_recipe()["data"])["valid"], IMAGE_SIZE, 25).load_batch(0)
    ref = open_runner(tiny_run.path).predict(images)
    for name in ("model.onnx", "model_int8.tflite"):
        probs = open_runner(exported.out_dir / name).predict(images)
        assert probs.shape == (25, 25)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=0.05)
        assert (probs.argmax(1) == ref.argmax(1)).mean() >= (0.9 if "int8" in name else 0.995)


def test_gate_fails_on_a_broken_model(tiny_run, tmp_path, monkeypatch):
    """A model whose head columns are shuffled exports fine but must not pass as verified."""
    from keras_birds.export import export as workflow

    real_load = workflow._load_torch_model

    def broken(*args, **kwargs):
        model = real_load(*args, **kwargs)
        head = model.get_layer("head")
        head.kernel.assign(np.roll(keras.ops.convert_to_numpy(head.kernel), 7, axis=1))
        return model

    monkeypatch.setattr(workflow, "_load_torch_model", broken)
    out = tmp_path / "export"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"stale file from an earlier export")
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--onnx", "--out", str(out), "--latency-runs", "0"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "where Keras is decisive" in result.output
    assert "verification failed" in result.output
    assert (out / "model.unverified.onnx").is_file()
    assert not (out / "model.onnx").exists()  # neither the new nor a stale file passes for verified
    report = json.loads((out / "export.json").read_text())
    assert report["passed"] is False
    (entry,) = report["files"]
    assert entry["verified"] is False and entry["gate"]["top1_agreement"] < 0.5


@pytest.mark.parametrize("make", ["missing", "empty", "no_model", "not_a_recipe"])
def test_bad_run_dir_is_one_line(tmp_path, make):
    path = tmp_path / "run"
    if make != "missing":
        path.mkdir()
    if make == "no_model":
        RunDir(path).prepare({"model": "resnet18", "image_size": 64, "data": str(tmp_path)}, overwrite=False)
        RunDir(path).write_classes(["A", "B"])
    if make == "not_a_recipe":
        (path / "recipe.json").write_text(json.dumps({"hello": 1}))
        (path / "classes.txt").write_text("A\n")
    result = CliRunner().invoke(main, ["export", str(path), "--latency-runs", "0"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and "Traceback" not in result.output
    assert str(path) in lines[-1]


def test_unknown_quantize_and_nothing_to_do(tiny_run):
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--quantize", "int4"])
    assert result.exit_code == 2 and "unknown --quantize int4" in result.output


def test_calibration_is_stratified_over_species(birds_mini):
    from keras_birds.data.sources import load_source

    train = load_source(str(birds_mini))["train"]
    sample = tflite_export.stratified_sample(train, 30)
    counts = np.bincount(sample.labels, minlength=25)
    assert len(sample) == 30 and counts.min() == 1 and counts.max() == 2
    assert len(tflite_export.stratified_sample(train, 1000)) == len(train)  # all, when asked for more


def test_unverified_names(tmp_path):
    f = tmp_path / "model_int8.tflite"
    f.write_bytes(b"x")
    failed = gate.settle_name(f, False)
    assert failed.name == "model_int8.unverified.tflite" and not f.exists()
    f.write_bytes(b"y")  # a later export that passes replaces the unverified one
    assert gate.settle_name(f, True) == f and not failed.exists()
    assert gate.verified_name(failed) == f


def test_max_pooled_unit_feature_head_exports_and_matches_keras(make_tiny_run, tmp_path):
    """A recipe's pooling/l2_features reach every rebuild: ONNX from the torch model, TFLite from the
    TensorFlow worker; a file built with the default average pooling would fail the parity gate."""
    from keras_birds.export.export import export

    run = make_tiny_run(tmp_path / "run", pooling="max", l2_features=True)
    result = export(run.path, quantize=["none"], out=tmp_path / "export", latency_runs=1, log=lambda *_: None)
    assert result.passed
    for f in result.report["files"]:
        assert f["verified"] is True and f["gate"]["top1_agreement"] >= 0.995, f
        assert f["gate"]["max_abs_prob_diff"] < 0.02 and f["gate"]["keras_top1"] >= 0.5
    model = keras.saving.load_model(run.model_keras)
    assert [l.__class__.__name__ for l in model.layers[-4:-2]] == ["GlobalMaxPooling2D", "UnitNormalization"]


def test_int8_keeps_its_worst_convolutions_float_when_the_recipe_asks(tiny_run, tmp_path):
    """Recipe field int8_float_convs 2 (export's default for the run): the 2 convolutions of largest
    quantisation error stay float, the rest int8; still raw uint8 pixels in, uint8 probabilities out, gated."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    recipe = json.loads((run / "recipe.json").read_text())
    (run / "recipe.json").write_text(json.dumps({**recipe, "int8_float_convs": 2}))
    result = CliRunner().invoke(main, ["export", str(run), "--tflite", "--quantize", "none,int8",
                                       "--latency-runs", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "int8 vs fp32 .tflite at batch 1:" in result.output and "(1 thread)" in result.output
    report = json.loads((tmp_path / "out" / "export.json").read_text())
    n = report["calibration"]["images"]  # issue 29, 7: the worker's calibration shows progress
    bars = [line for line in result.stderr.replace("\r", "\n").splitlines() if "int8 calibration" in line]
    assert bars and "%|" in bars[-1] and f"{n}/{n}" in bars[-1], result.stderr
    kept = report["int8_float_convs"]
    errors = [c["rmse_over_scale"] for c in kept]
    assert len(kept) == 2 and errors == sorted(errors, reverse=True) and min(errors) > 0
    assert {c["op"] for c in kept} <= {"CONV_2D", "DEPTHWISE_CONV_2D"}
    e = next(f for f in report["files"] if f["quantize"] == "int8")
    assert sum(op in ("CONV_2D", "DEPTHWISE_CONV_2D") for op in e["float_ops"]) == 2
    assert tflite_export.float_ops(tmp_path / "out" / "model_fp32.tflite")[:3] == ["MUL", "ADD", "CONV_2D"]
    assert (e["input"]["dtype"], e["output"]["dtype"], e["verified"]) == ("uint8", "uint8", True)
    assert e["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    bad = CliRunner().invoke(main, ["export", str(tiny_run.path), "--tflite", "--quantize", "int8",
                                    "--int8-float-convs", "-1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--int8-float-convs must be >= 0" in bad.output
