"""`keras-birds eval`: --json, report files, the same top-1 for a run and its ONNX, one-line errors."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.evaluation.evaluate import evaluate
from keras_birds.inference import model as inference_model  # where eval opens its runner
from keras_birds.run_dir import RunDir

JSON_KEYS = {"top1", "top5", "n_images", "params", "size_mb", "latency_ms_b1_median", "latency_ms_b1_p90",
             "throughput_img_s", "device"}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- the real thing ----------------------------------------------------------------------------
def test_eval_run_json_and_reports(tiny_run, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "keras_birds.cli", "eval", str(tiny_run.path), "--split", "test", "--json",
         "--latency-runs", "3", "--batch-size", "8", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": "torch"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # exactly one JSON object: anything else on stdout fails here
    assert isinstance(summary, dict) and JSON_KEYS <= set(summary)
    assert summary["n_images"] == 25 and summary["kind"] == "keras" and summary["split"] == "test"
    assert 0 <= summary["top1"] <= summary["top5"] <= 1
    assert summary["params"] > 10_000_000 and summary["size_mb"] > 1
    assert summary["latency_ms_b1_median"] > 0 and summary["latency_ms_b1_p90"] >= summary["latency_ms_b1_median"]
    assert summary["throughput_img_s"] > 0 and summary["device"]
    assert "top-1" in proc.stderr and "eval test" in proc.stderr  # table and progress bar on stderr
    report = json.loads((out / "report.json").read_text())
    assert report["top1"] == summary["top1"] and len(report["per_class"]) == 25
    assert np.asarray(report["confusion_matrix"]).sum() == 25
    assert [c["class"] for c in report["called_out"]] == ["PLUSH CRESTED JAY"]
    assert "84x140" in report["called_out"][0]["note"]
    md = (out / "report.md").read_text()
    assert "PLUSH CRESTED JAY" in md and "## Most confused species" in md and "confusion_matrix.png" in md
    for png in ("confusion_matrix.png", "reliability.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_run_and_its_onnx_export_give_the_same_top1(tiny_run, tmp_path):
    common = dict(split="test", progress=False, latency_runs=0, batch_size=8)
    keras_report = evaluate(tiny_run.path, out=tmp_path / "k", **common)
    onnx_report = evaluate(tiny_run.path / "model.onnx", out=tmp_path / "o", **common)  # data from the run
    assert onnx_report["kind"] == "onnx" and onnx_report["data"] == keras_report["data"]
    assert onnx_report["top1"] == keras_report["top1"] and onnx_report["top5"] == keras_report["top5"]
    assert keras_report["top1"] > 0.04  # above chance: the imprinted head works, predictions are not constant


def test_reproduces_the_figures_training_computes(tiny_run, birds_mini, tmp_path):
    """The validation top-1/top-5 training logs (callbacks.predict_probs, flip TTA included)."""
    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import folder_source
    from keras_birds.inference.runners import open_runner
    from keras_birds.evaluation.metrics import topk_accuracy
    from keras_birds.training.callbacks import predict_probs

    model = open_runner(tiny_run.path).model
    loader = BatchLoader(folder_source(birds_mini)["valid"], 64, 16, workers=1)
    probs, labels = predict_probs(model, loader, tta_flip=True)
    report = evaluate(tiny_run.path, split="valid", tta_flip=True, progress=False, latency_runs=0,
                      batch_size=16, out=tmp_path / "r")
    assert report["tta_flip"] is True
    assert report["top1"] == topk_accuracy(probs, labels, 1) and report["top5"] == topk_accuracy(probs, labels, 5)


def test_cli_table_and_default_report_folder(tiny_run):
    result = cli("eval", tiny_run.path / "model.onnx", "--latency-runs", "0", "-q")
    assert result.exit_code == 0, result.output
    assert "top-1" in result.stdout and "PLUSH CRESTED JAY" in result.stdout
    folder = tiny_run.eval_dir / "model.onnx-test"
    assert (folder / "report.json").is_file() and (folder / "report.md").is_file()
    assert json.loads((folder / "report.json").read_text())["latency_ms_b1_median"] is None


# -- known predictions through the whole workflow -------------------------------------------------
COLOURS = {"BLUE BIRD": (30, 30, 220), "GREEN BIRD": (30, 200, 30), "PLUSH CRESTED JAY": (220, 30, 30),
           "WHITE BIRD": (235, 235, 235)}


class ColourRunner:
    """A fake model: nearest colour wins, except GREEN BIRD, always called WHITE BIRD. Its labels come
    in another order than the data's folders and include a class the data does not have."""

    kind, image_size, params, size_bytes, device, run_dir = "fake", 16, 123, 4_000, "test device", None
    class_names = ["WHITE BIRD", "UNSEEN BIRD", "PLUSH CRESTED JAY", "GREEN BIRD", "BLUE BIRD"]
    n_classes, labels_from = 5, "the test"

    def __init__(self, path, threads=None):  # open_runner's signature
        self.path = path

    def predict(self, images):
        means = np.asarray(images, np.float64).mean((1, 2))
        names = list(COLOURS)
        nearest = [names[int(np.argmin([np.abs(m - np.array(c)).sum() for c in COLOURS.values()]))] for m in means]
        out = np.full((len(images), 5), 0.025, "float32")
        for i, name in enumerate(nearest):
            out[i, self.class_names.index("WHITE BIRD" if name == "GREEN BIRD" else name)] = 0.9
        return out


def colour_dataset(root, per_class=3, size=16):
    for name, colour in COLOURS.items():
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for k in range(per_class):
            odd = name == "PLUSH CRESTED JAY" and k == 0
            shape = (size + 7, size - 3, 3) if odd else (size, size, 3)
            Image.fromarray(np.full(shape, colour, np.uint8)).save(folder / f"{k}.png")
    return root


def test_known_predictions_through_evaluate(tmp_path, monkeypatch):
    monkeypatch.setattr(inference_model, "open_runner", ColourRunner)
    data = colour_dataset(tmp_path / "data")
    report = evaluate(tmp_path / "fake.model", data=str(data), progress=False, latency_runs=2, batch_size=5,
                      out=tmp_path / "out")
    assert report["n_images"] == 12 and report["classes_in_split"] == 4 and report["n_classes"] == 5
    assert report["top1"] == pytest.approx(0.75) and report["macro_top1"] == pytest.approx(0.75)
    assert report["model_classes_absent_from_data"] == ["UNSEEN BIRD"]
    by = {c["class"]: c for c in report["per_class"]}
    assert by["GREEN BIRD"]["top1"] == 0.0 and by["UNSEEN BIRD"]["n"] == 0 and by["UNSEEN BIRD"]["top1"] is None
    assert report["most_confused"][0] == {"true": "GREEN BIRD", "predicted": "WHITE BIRD", "count": 3,
                                          "fraction_of_true": 1.0}
    jay = report["called_out"]
    assert [c["class"] for c in jay] == ["PLUSH CRESTED JAY"] and jay[0]["correct"] == 3
    assert "1 of its 3 images here are not 16x16: 13x23" in jay[0]["note"]
    assert report["ece"] == pytest.approx(abs(0.75 - 0.9))
    assert report["latency_ms_b1_median"] > 0 and report["device"] == "test device"


def test_species_are_called_out_only_where_the_data_shows_it(tmp_path, monkeypatch):
    """No data set's species gets BIRDS-525's words: a species is called out for its images' sizes only
    when they differ from the split's, and the note says what this data shows."""
    from keras_birds.evaluation.report import terminal_table

    monkeypatch.setattr(inference_model, "open_runner", ColourRunner)
    data = colour_dataset(tmp_path / "data")
    for path in (data / "test" / "PLUSH CRESTED JAY").iterdir():  # every image the common size now
        Image.fromarray(np.full((16, 16, 3), COLOURS["PLUSH CRESTED JAY"], np.uint8)).save(path)
    report = evaluate(tmp_path / "fake.model", data=str(data), progress=False, latency_runs=0, out=tmp_path / "out")
    assert report["called_out"] == []
    assert "singled out" not in terminal_table(report) and "224x224" not in terminal_table(report)
    for k, path in enumerate(sorted((data / "test" / "PLUSH CRESTED JAY").iterdir())):
        Image.fromarray(np.full((20 + k, 12, 3), COLOURS["PLUSH CRESTED JAY"], np.uint8)).save(path)
    report = evaluate(tmp_path / "fake.model", data=str(data), progress=False, latency_runs=0, out=tmp_path / "out")
    assert [c["note"] for c in report["called_out"]] == ["none of its 3 images here is 16x16: 12x20, 12x21, 12x22"]


def test_exclude_option_reads_the_same_in_eval_and_export():
    helps = {name: next(p.help for p in main.commands[name].params if p.name == "exclude") for name in ("eval", "export")}
    assert helps["eval"].endswith("'none' or '' for none.") and helps["export"].endswith("'none' or '' for none.")


@pytest.mark.parametrize("step, shift, warns", [
    (0.0, 0.0, False),  # exact probabilities
    (1 / 256, -0.9 / 256, False),  # uint8 outputs: each score rounded, the sum short by < C * step / 2
    (0.0, -0.9 / 256, True),  # the same shortfall from a float model is not rounding
    (1 / 256, 0.2, True),  # scores, not probabilities
])
def test_warning_when_outputs_are_not_probabilities(tmp_path, monkeypatch, capsys, step, shift, warns):
    class Shifted(ColourRunner):
        output_step = step

        def predict(self, images):
            return super().predict(images) + np.float32(shift)

    monkeypatch.setattr(inference_model, "open_runner", Shifted)
    evaluate(tmp_path / "fake.model", data=str(colour_dataset(tmp_path / "data")), progress=False, latency_runs=0,
             out=tmp_path / "out")
    assert ("outputs do not sum to 1" in capsys.readouterr().err) == warns


def test_beyond_100_classes_a_top_confusions_chart(tmp_path, monkeypatch, make_dataset):
    data = make_dataset(tmp_path, 120, {"test": 1}, size=8)

    class RandomRunner(ColourRunner):
        class_names = sorted(os.listdir(data / "test"))
        n_classes = 120

        def predict(self, images):
            seed = int(np.asarray(images, np.int64).sum())
            return np.random.default_rng(seed).dirichlet(np.ones(120), len(images)).astype("float32")

    monkeypatch.setattr(inference_model, "open_runner", RandomRunner)
    report = evaluate(tmp_path / "fake.model", data=str(data), progress=False, latency_runs=0, out=tmp_path / "out")
    assert report["n_images"] == 120
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["reliability.png", "report.json", "report.md", "top_confusions.png"]
    assert "confusion_matrix" not in json.loads((tmp_path / "out" / "report.json").read_text())


# -- bad input: one line, exit code 2 -------------------------------------------------------------
def test_missing_split(tiny_run, tmp_path, make_dataset):
    data = make_dataset(tmp_path, 2, {"train": 1, "test": 1}, size=8)
    assert_one_line_error(cli("eval", tiny_run.path, "--data", data, "--split", "valid"), "no 'valid' split")
    assert_one_line_error(cli("eval", tiny_run.path, "--split", "tests"), "unknown split 'tests'")


def test_class_names_differ_from_the_models(tiny_run, tmp_path, make_dataset):
    data = make_dataset(tmp_path, ["BLACK SWAN", "DODO", "MANDRIN DUCK"], {"test": 1}, size=8)
    line = assert_one_line_error(cli("eval", tiny_run.path, "--data", data), "'DODO'", "not among the model's 25")
    assert "BLACK SWAN" not in line  # only the offending name


def test_files_that_are_not_models(tmp_path, birds_mini):
    for name in ("garbage.tflite", "garbage.onnx", "garbage.keras"):
        (tmp_path / name).write_bytes(os.urandom(2048))
        # Random bytes under .keras are no zip archive: called damaged (issue 29 item 9), not "File not found".
        expected = "not a valid .keras zip archive" if name.endswith(".keras") else "not a loadable"
        assert_one_line_error(cli("eval", tmp_path / name, "--data", birds_mini), name, expected)
    assert_one_line_error(cli("eval", tmp_path / "nothing.onnx", "--data", birds_mini), "does not exist")
    assert_one_line_error(cli("eval", tmp_path, "--data", birds_mini), "not a keras-birds run")


def test_bare_file_needs_data(tmp_path, onnx_file):
    path, _, _ = onnx_file(tmp_path / "bare.onnx")
    assert_one_line_error(cli("eval", path), "no run directory", "--data")


def test_tflite_input_size_differs_from_the_run(tmp_path, tiny_run, tflite_file):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    for name in ("recipe.json", "classes.txt"):
        shutil.copy(tiny_run.path / name, run.path / name)
    path, _, _ = tflite_file(run.path / "model.tflite", size=16, n_classes=25)
    # A real process: LiteRT and TensorFlow write to file descriptor 2 behind Python's back.
    proc = subprocess.run([sys.executable, "-m", "keras_birds.cli", "eval", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "takes 16x16 images" in lines[0] and "trained on 64x64" in lines[0]


def test_output_count_differs_from_data_without_labels(tmp_path, onnx_file, make_dataset):
    data = make_dataset(tmp_path, 3, {"test": 1}, size=8)
    path, _, _ = onnx_file(tmp_path / "m.onnx", n_classes=4)
    assert_one_line_error(cli("eval", path, "--data", data), "4 outputs", "3 species", "labels.txt")
