"""`eval --corruptions` on real birds-mini images: the same corrupted copies for any runner, the figures
and plots in the report, compare's column, one-line errors with exit code 2."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.comparison.compare import compare
from keras_birds.evaluation.evaluate import evaluate


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def reports(colour_models, birds_mini, tmp_path_factory):
    run, onnx = colour_models
    out = tmp_path_factory.mktemp("eval")
    # The train split: the images the classifier knows (few-shot birds-mini leaves too little to learn
    # a test image from mean colours), so losing them is the corruptions' doing.
    kw = dict(split="train", latency_runs=0, progress=False, corruptions="all", severity="5")
    return (evaluate(run.path, out=out / "keras", **kw),
            evaluate(onnx, data=birds_mini, out=out / "onnx", **kw))


def test_run_dir_and_onnx_score_the_same_corrupted_copies(reports):
    keras_rob, onnx_rob = (r["robustness"] for r in reports)
    assert keras_rob["top1"] == onnx_rob["top1"] and keras_rob["clean_top1"] == onnx_rob["clean_top1"]


def test_figures(reports):
    report = reports[0]
    rob = report["robustness"]
    assert rob["severities"] == [5] and rob["n_images"] == 75 and rob["clean_top1"] == report["top1"] > 0.5
    values = [rob["top1"][n]["5"] for n in rob["corruptions"]]
    assert len(values) == 9 and all(0 <= v <= 1 for v in values)
    assert rob["mean_corruption_top1"] == pytest.approx(np.mean(values)) == report["mean_corruption_top1"]
    assert rob["relative_drop"] == pytest.approx((report["top1"] - np.mean(values)) / report["top1"])
    # A colour-layout classifier: blur keeps mean colours of 16 px cells, a strong colour cast or fog does not.
    assert abs(rob["top1"]["defocus_blur"]["5"] - report["top1"]) <= 4 / 75
    assert rob["top1"]["colour_cast"]["5"] < report["top1"] and rob["top1"]["fog"]["5"] < report["top1"]


def test_report_files(reports):
    report = reports[0]
    folder = report["files"]["report_json"].rsplit("/", 1)[0]
    stored = json.loads(open(f"{folder}/report.json").read())
    assert stored["robustness"]["top1"] == report["robustness"]["top1"]
    md = open(f"{folder}/report.md").read()
    assert "## Robustness to corrupted photos" in md and "| motion_blur |" in md and "corruptions.png" in md
    for name in ("corruptions.png", "corruption_samples.png", "robustness.json"):
        assert (report["robustness"]["plots"]["corruption heat map"].rsplit("/", 1)[0] == folder)
        if name.endswith(".png"):
            with Image.open(f"{folder}/{name}") as img:
                assert img.size[0] > 300 and img.size[1] > 300


def test_cli_json_carries_the_mean(colour_models, birds_mini, tmp_path):
    result = cli("eval", colour_models[1], "--data", birds_mini, "--corruptions", "blur", "--severity", "3",
                 "--latency-runs", "0", "--json", "-q", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 0 <= summary["mean_corruption_top1"] <= 1 and summary["corruption_relative_drop"] is not None


@pytest.mark.parametrize("args, fragment", [
    (["--corruptions", "smog"], "unknown corruption 'smog'"),
    (["--corruptions", "fog", "--severity", "6"], "1 to 5"),
    (["--corruptions", "fog", "--severity", "0"], "1 to 5"),
    (["--severity", "3"], "--severity applies to --corruptions"),
])
def test_bad_names_and_severities_exit_2_with_one_line(colour_models, args, fragment):
    result = cli("eval", colour_models[1], "--data", "nowhere", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_compare_shows_the_figure_of_the_same_model_file(colour_models, tmp_path):
    import os

    run = colour_models[0]
    report = evaluate(run.path, split="valid", latency_runs=0, progress=False, corruptions="noise", severity="2")
    result = compare([run.path], split="valid", out=tmp_path / "a", latency_runs=0, progress=False)
    assert result.rows[0]["corruption_top1"] == report["mean_corruption_top1"]
    assert "valid mean corrupted top-1" in result.files["comparison.md"].read_text()
    stat = os.stat(run.model_keras)  # a retrained model: the stored figure is not its own
    os.utime(run.model_keras, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = compare([run.path], split="valid", out=tmp_path / "b", latency_runs=0, progress=False)
    assert again.rows[0]["corruption_top1"] is None
    assert "corrupted top-1" not in again.files["comparison.md"].read_text().split("\n\n")[1]
