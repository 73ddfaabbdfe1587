"""Runners: one predict() for Keras, ONNX and TFLite; batch-1 files, uint8 quantised files, labels."""
import json
import shutil

import numpy as np
import pytest

from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import folder_source
from keras_birds.errors import UserError
from keras_birds.inference.runners import KerasRunner, OnnxRunner, TFLiteRunner, open_runner
from keras_birds.run_dir import RunDir

NAMES4 = ["BLACK SWAN", "MANDRIN DUCK", "PARAKETT  AUKLET", "PLUSH CRESTED JAY"]


def reference_probs(images, w, b):
    logits = np.asarray(images, np.float64).mean((1, 2)) @ w + b
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def pixels(n, size=16, seed=0, dtype="uint8"):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(dtype)


# -- ONNX --------------------------------------------------------------------------------------
def test_onnx_dynamic_batch_with_labels_in_metadata(tmp_path, onnx_file):
    path, w, b = onnx_file(tmp_path / "m.onnx", labels=NAMES4)
    runner = open_runner(path)
    assert isinstance(runner, OnnxRunner) and runner.kind == "onnx"
    assert (runner.image_size, runner.n_classes, runner.fixed_batch, runner.output_step) == (16, 4, None, 0.0)
    assert runner.class_names == NAMES4 and "metadata" in runner.labels_from
    assert runner.params == 3 * 4 + 4 and runner.size_bytes == path.stat().st_size
    x = pixels(7)
    for images in (x, x.astype("float32")):
        probs = runner.predict(images)
        assert probs.shape == (7, 4) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, reference_probs(x, w, b), atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_fixed_batch_serves_any_n(tmp_path, onnx_file, batch):
    path, w, b = onnx_file(tmp_path / "m.onnx", batch=batch)
    runner = open_runner(path)
    assert runner.fixed_batch == batch
    x = pixels(5)
    np.testing.assert_allclose(runner.predict(x), reference_probs(x, w, b), atol=1e-5)
    assert runner.predict(x[:1]).shape == (1, 4)


def test_onnx_uint8_and_channels_first_inputs(tmp_path, onnx_file):
    x = pixels(4)
    path, w, b = onnx_file(tmp_path / "u8.onnx", uint8=True)
    np.testing.assert_allclose(open_runner(path).predict(x.astype("float32")), reference_probs(x, w, b), atol=1e-5)
    path, w, b = onnx_file(tmp_path / "nchw.onnx", nchw=True)
    runner = open_runner(path)
    assert runner.layout == "NCHW" and runner.image_size == 16
    np.testing.assert_allclose(runner.predict(x), reference_probs(x, w, b), atol=1e-5)


def test_labels_txt_beside_the_file_is_the_fallback(tmp_path, onnx_file):
    path, _, _ = onnx_file(tmp_path / "m.onnx")
    assert open_runner(path).class_names is None
    (tmp_path / "labels.txt").write_text("".join(f"{n}\n" for n in NAMES4))
    runner = open_runner(path)
    assert runner.class_names == NAMES4 and runner.labels_from.endswith("labels.txt")


# -- TFLite ------------------------------------------------------------------------------------
def test_tflite_float_dynamic_batch(tmp_path, tflite_file):
    path, w, b = tflite_file(tmp_path / "f.tflite")
    runner = open_runner(path)
    assert isinstance(runner, TFLiteRunner) and runner.kind == "tflite"
    assert (runner.image_size, runner.n_classes, runner.fixed_batch, runner.output_step) == (16, 4, None, 0.0)
    assert runner.params >= 3 * 4
    for n in (7, 2, 7):  # the interpreter input is resized as N changes
        x = pixels(n, seed=n)
        np.testing.assert_allclose(runner.predict(x), reference_probs(x, w, b), atol=1e-5)


def test_tflite_uint8_quantised_batch_1(tmp_path, tflite_file):
    path, w, b = tflite_file(tmp_path / "q.tflite", int8=True, batch=1)
    (tmp_path / "labels.txt").write_text("\n".join(NAMES4) + "\n")
    runner = open_runner(path)
    assert runner.input_dtype == np.uint8 and runner.output_dtype == np.uint8 and runner.fixed_batch == 1
    assert runner.output_step == pytest.approx(1 / 256)  # softmax in uint8: what eval allows the sums
    assert runner.class_names == NAMES4
    x = pixels(9)
    ref = reference_probs(x, w, b)
    for images in (x, x.astype("float32")):
        probs = runner.predict(images)  # 9 images through a batch-1 file, uint8 in, dequantised out
        assert probs.shape == (9, 4) and probs.dtype == np.float32
        assert np.abs(probs - ref).max() < 0.03
        assert np.allclose(probs.sum(1), 1, atol=0.03)


# -- Keras vs its ONNX export, on real images ----------------------------------------------------
def test_keras_run_and_its_onnx_export_agree_on_birds_mini(tiny_run, birds_mini):
    keras_runner = open_runner(tiny_run.path)
    onnx_runner = open_runner(tiny_run.path / "model.onnx")
    assert isinstance(keras_runner, KerasRunner)
    names = tiny_run.read_classes()
    assert keras_runner.class_names == names == onnx_runner.class_names
    assert keras_runner.image_size == onnx_runner.image_size == 64 and onnx_runner.fixed_batch == 1
    assert keras_runner.params > 10_000_000 and keras_runner.run_dir.path == tiny_run.path
    assert onnx_runner.run_dir.path == tiny_run.path
    index = folder_source(birds_mini)["test"]
    images, labels = BatchLoader(index, 64, 32, workers=1).load_batch(0)
    assert len(images) == 25
    pk, po = keras_runner.predict(images), onnx_runner.predict(images)
    np.testing.assert_allclose(pk, po, atol=1e-4)
    assert (pk.argmax(1) == po.argmax(1)).all()
    assert len(set(pk.argmax(1))) > 3  # the imprinted head tells images apart: not a constant answer
    assert (pk.argmax(1) == labels).mean() == (po.argmax(1) == labels).mean()


def test_run_without_model_keras_uses_best_weights(tiny_run, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for name in ("recipe.json", "classes.txt"):
        shutil.copy(tiny_run.path / name, run.path / name)
    reference = open_runner(tiny_run.path)
    reference.model.save_weights(run.best_weights)
    runner = open_runner(run.path)
    assert runner.path == run.best_weights
    x = pixels(3, size=64)
    np.testing.assert_allclose(runner.predict(x), reference.predict(x), atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------
def test_open_runner_rejects_what_is_not_a_model(tmp_path):
    for name in ("bad.onnx", "bad.tflite", "bad.keras"):
        (tmp_path / name).write_bytes(b"not a model at all" * 10)
        expected = "not a valid .keras zip archive" if name.endswith(".keras") else "not a loadable"
        with pytest.raises(UserError, match=expected):
            open_runner(tmp_path / name)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(UserError, match="unknown model file type"):
        open_runner(tmp_path / "model.pt")
    with pytest.raises(UserError, match="does not exist"):
        open_runner(tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="not a keras-birds run"):
        open_runner(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.json").write_text(json.dumps({"model": "resnet18"}))
    (tmp_path / "run" / "classes.txt").write_text("A\nB\n")
    with pytest.raises(UserError, match="no trained model yet .* let at least one epoch finish"):
        open_runner(tmp_path / "run")
