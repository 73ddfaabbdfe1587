"""The parity gate on real files of the tiny birds-mini run (tests/export/conftest.py): a correct fp16
file passes; files broken the ways apps see them broken fail."""
import numpy as np

from keras_birds.export import export as workflow
from keras_birds.export import tflite as tflite_export
from keras_birds.export.export import export


def _entry(result, quantize, fmt="tflite"):
    return next(f for f in result.report["files"] if f["quantize"] == quantize and f["format"] == fmt)


def test_a_correct_fp16_file_passes(exported):
    g = _entry(exported, "fp16")["gate"]
    assert g["passed"] is True and g["decisive_changes"] == 0 and g["lost"] == 0, g
    assert g["images"] == 25 and g["near_ties"] + g["decisive_changes"] <= 25 and g["max_abs_prob_diff"] < 0.02
    assert g["drop_bound_points"] < 0 and "p1 - p2" in g["criterion"]


def test_wrong_normalisation_fails(tiny_run, tmp_path, monkeypatch):
    """The file scales pixels to 0..1 where the model was trained on -1..1 (a classic preprocessing bug)."""
    real_load = workflow._load_torch_model

    def zero_to_one(*args, **kwargs):
        model = real_load(*args, **kwargs)
        pre = model.get_layer("preprocess")
        pre.scale, pre.offset = 1 / 255.0, 0.0
        return model

    monkeypatch.setattr(workflow, "_load_torch_model", zero_to_one)
    result = export(tiny_run.path, onnx=True, tflite=False, out=tmp_path / "export", latency_runs=0,
                    log=lambda *_: None)
    g = _entry(result, "none", "onnx")["gate"]
    assert not result.passed and g["passed"] is False and g["decisive_changes"] > 0, g
    assert (tmp_path / "export" / "model.unverified.onnx").is_file()


def test_int8_calibrated_on_noise_fails(tiny_run, tmp_path, monkeypatch, capfd):
    """Calibration on random pixels instead of bird photos: the activation ranges are wrong. Without progress
    (export -q) the calibration shows no bar (issue 29, 7)."""
    def noise(index, image_size, n, seed=0):
        images = np.random.default_rng(seed).integers(0, 256, (64, image_size, image_size, 3), dtype=np.uint8)
        return images, {"images": 64, "species": 0, "of_species": len(index.class_names), "split": "noise"}

    monkeypatch.setattr(tflite_export, "calibration_images", noise)
    result = export(tiny_run.path, onnx=False, quantize=["int8"], out=tmp_path / "export", latency_runs=0,
                    log=lambda *_: None, progress=False)
    said = capfd.readouterr().err
    assert "int8 calibration" not in said and "%|" not in said, said
    g = _entry(result, "int8")["gate"]
    assert not result.passed and g["passed"] is False and g["lost"] > g["gained"], g
    assert (tmp_path / "export" / "model_int8.unverified.tflite").is_file()
