"""Unknown species on real birds-mini images: the run knows 20 species, the other 5 are the unknowns."""
import json
import os
import shutil

import numpy as np
import pytest

from keras_birds.errors import UserError
from keras_birds.openset.calibrate import calibrate_unknown
from keras_birds.openset.rule import UnknownRule, file_rule, run_rule
from keras_birds.openset.scores import DEPLOYABLE, SCORES, score


@pytest.fixture(scope="module")
def calibrated(old_run, mini_split):
    return calibrate_unknown(old_run.path, mini_split[1], log=lambda *_: None)


@pytest.fixture(scope="module")
def exported(calibrated, old_run, tmp_path_factory):
    """The calibrated run's .onnx and int8 .tflite (one export for both tests that read them)."""
    from keras_birds.export.export import export

    out = tmp_path_factory.mktemp("unknown_export") / "export"
    export(old_run.path, onnx=True, tflite=True, quantize=("int8",), verify=False, latency_runs=0, out=out,
           log=lambda *_: None, progress=False)
    return out


def test_calibrate_picks_a_deployable_score_on_valid_and_stores_it(calibrated, old_run):
    stored = json.loads((old_run.path / "unknown.json").read_text())
    assert stored == json.loads(json.dumps(calibrated))
    figures = stored["candidates"]
    assert set(figures) == set(SCORES)  # the Keras run reports logit and feature scores too
    assert stored["score"] == max(DEPLOYABLE, key=lambda n: figures[n]["auroc"])
    assert stored["threshold"] == figures[stored["score"]]["threshold"]
    assert figures[stored["score"]]["known_accepted"] >= 0.95
    # No test image: 20 valid images of the run, 15 train + 5 valid images of the unknown species.
    assert "20 images" in stored["chosen_on"]["known"] and "20 images" in stored["chosen_on"]["unknown"]


def test_predict_applies_the_stored_rule_unless_told_otherwise(calibrated, old_run, mini_split):
    from keras_birds.prediction.predict import UNKNOWN, predict

    old_root, new_root = mini_split[0], mini_split[1]
    photos = sorted(old_root.glob("test/*/5.jpg")) + sorted(new_root.glob("test/*/5.jpg"))
    preds = predict(photos, old_run.path, top_k=20, progress=False)
    assert preds.unknown_rule == {"score": calibrated["score"], "threshold": calibrated["threshold"],
                                  "from": str(old_run.path / "unknown.json")}
    rule = UnknownRule(calibrated["score"], calibrated["threshold"], "")
    names = (old_run.path / "classes.txt").read_text().splitlines()
    for r in preds.results:
        probs = np.zeros(len(names))
        probs[[names.index(t["species"]) for t in r["top_k"]]] = [t["probability"] for t in r["top_k"]]
        if abs(score(rule.score, {"probs": probs[None]})[0] - rule.threshold) > 1e-4:  # rounding of the printed probabilities
            assert (r["species"] == UNKNOWN) == (not rule.accepted(probs)[0]), r
    assert any(r["species"] == UNKNOWN for r in preds.results)
    plain = predict(photos, old_run.path, top_k=1, threshold=0.0, progress=False)
    assert not any(r["species"] == UNKNOWN for r in plain.results) and plain.unknown_rule["from"] == "--threshold"


def test_eval_reports_every_score_and_the_stored_rule(calibrated, old_run, mini_split):
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.evaluation.report import terminal_table

    report = evaluate(old_run.path, split="test", unknown=mini_split[1], latency_runs=0, progress=False)
    o = report["open_set"]
    assert (o["n_known"], o["n_unknown"]) == (20, 5) and set(o["scores"]) == set(SCORES)
    assert all(0.0 <= f["auroc"] <= 1.0 and f["known_accepted"] >= 0.95 for f in o["scores"].values())
    assert o["stored_rule"]["score"] == calibrated["score"] and o["unknown_images"].endswith("[test]")
    assert "## Unknown species (open set)" in (old_run.path / "eval" / "model.keras-test" / "report.md").read_text()
    assert "unknown AUROC" in terminal_table(report)


def test_export_carries_the_rule_next_to_the_labels(calibrated, exported, mini_split, tmp_path):
    from keras_birds.prediction.predict import predict

    inside = file_rule(exported / "model.onnx")
    assert (inside.score, inside.threshold) == (calibrated["score"], calibrated["threshold"])
    alone = tmp_path / "app" / "model.onnx"  # away from its run: the rule comes from the file itself
    alone.parent.mkdir()
    shutil.copy(exported / "model.onnx", alone)
    preds = predict(sorted(mini_split[1].glob("test/*/5.jpg")), alone, progress=False)
    assert preds.unknown_rule == {"score": inside.score, "threshold": inside.threshold, "from": "model.onnx metadata"}


def test_tflite_files_pack_the_rule_beside_labels_txt(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from keras_birds.export import metadata as md

    fn = tf.function(lambda x: tf.nn.softmax(tf.reduce_mean(x, axis=[1, 2]))).get_concrete_function(
        tf.TensorSpec([1, 8, 8, 3], tf.float32))
    plain = tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert()
    meta = md.build_metadata(image_size=8, n_classes=3, name="t", description="t")
    labelled = md.populate(plain, meta, {md.LABELS_FILE: b"A\nB\nC\n"})
    rule = json.dumps({"score": "margin", "threshold": 0.25}).encode()
    both = md.add_packed_file(labelled, "unknown.json", rule)
    assert md.associated_files(both) == {md.LABELS_FILE: b"A\nB\nC\n", "unknown.json": rule}
    assert md.read_metadata(both)["outputs"] == md.read_metadata(labelled)["outputs"]
    (tmp_path / "m.tflite").write_bytes(both)
    assert file_rule(tmp_path / "m.tflite") == UnknownRule("margin", 0.25, "m.tflite metadata")
    x = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    outs = []
    for model in (labelled, both):
        interpreter = Interpreter(model_content=model)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        outs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert np.array_equal(*outs)


def test_bad_unknown_folders_and_scores_are_one_line_errors(old_run, mini_split, tmp_path):
    known = tmp_path / "known"
    known.mkdir()
    os.symlink(mini_split[0] / "test" / mini_split[2][0], known / mini_split[2][0], target_is_directory=True)
    with pytest.raises(UserError, match=f"named after '{mini_split[2][0]}', a species the model knows"):
        calibrate_unknown(old_run.path, known, log=lambda *_: None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image files"):
        calibrate_unknown(old_run.path, tmp_path / "empty", log=lambda *_: None)
    with pytest.raises(UserError, match="--score must be auto or one an app computes"):
        calibrate_unknown(old_run.path, mini_split[1], score_name="energy", log=lambda *_: None)


def test_int8_file_alone_gives_the_runs_unknown_decisions(calibrated, exported, old_run, mini_split, tmp_path):
    """The app's file: the int8 .tflite carries the calibrated rule, and predict on it away from its run
    decides "unknown" exactly as inside the run, and as the run's Keras model does wherever int8 rounding
    cannot flip the comparison."""
    from keras_birds.prediction.predict import UNKNOWN, predict

    inside = exported / "model_int8.tflite"
    assert (file_rule(inside).score, file_rule(inside).threshold) == (calibrated["score"], calibrated["threshold"])
    alone = tmp_path / "app" / "model_int8.tflite"
    alone.parent.mkdir()
    shutil.copy(inside, alone)
    photos = sorted(mini_split[0].glob("*/*/*.jpg")) + sorted(mini_split[1].glob("*/*/*.jpg"))
    by_file = predict(photos, alone, top_k=1, progress=False)
    assert by_file.unknown_rule["from"] == "model_int8.tflite metadata"
    in_run = predict(photos, inside, top_k=1, progress=False)
    decided = lambda preds: [r["species"] == UNKNOWN for r in preds.results]  # noqa: E731
    assert decided(by_file) == decided(in_run)
    keras_preds = predict(photos, old_run.path, top_k=20, tta_flip=False, progress=False)  # the file has no TTA
    rule = UnknownRule(calibrated["score"], calibrated["threshold"], "")
    compared = 0
    for r_file, r_keras in zip(by_file.results, keras_preds.results):
        probs = np.array([[t["probability"] for t in r_keras["top_k"]]])  # all 20: every score reads them unordered
        if abs(score(rule.score, {"probs": probs})[0] - rule.threshold) > 0.05:  # beyond int8's rounding
            compared += 1
            assert (r_file["species"] == UNKNOWN) == (r_keras["species"] == UNKNOWN), (r_file, r_keras)
    assert 0 < sum(decided(by_file)) < len(photos) and compared >= len(photos) // 2
