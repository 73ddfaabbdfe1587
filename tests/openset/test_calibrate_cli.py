"""calibrate-unknown through the command, after the run was exported (issue 29, items 4, 7, 9, 10).

One copy of a trained birds-mini run, whose export/model.onnx was written before any rule existed, is
calibrated twice from its parent folder with a relative --unknown: with progress, then with -q.
"""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.prediction.predict import UNKNOWN, predict

BAR = "%|"  # what every tqdm bar line holds


@pytest.fixture(scope="module")
def calibrated(trained_tiny_run, birds_mini, tmp_path_factory):
    """(the run copy, {"loud": result, "quiet": result} of the two calibrate-unknown commands, the --unknown
    folder as typed, six known-species photos)."""
    base = tmp_path_factory.mktemp("calibrate_cli")
    run = base / "run"
    shutil.copytree(trained_tiny_run.path, run)  # export/model.onnx came first: it carries no rule
    _unknown_species(base / "data")
    photos = [sorted((birds_mini / "test" / s).iterdir())[0] for s in sorted(os.listdir(birds_mini / "test"))[:6]]
    cwd = os.getcwd()
    os.chdir(base)
    try:
        results = {
            "loud": CliRunner().invoke(main, ["calibrate-unknown", "run", "--unknown", "data", "--score", "margin"]),
            "quiet": CliRunner().invoke(main, ["calibrate-unknown", "run", "--unknown", "data", "--score",
                                                "neg_entropy", "-q"]),
        }
    finally:
        os.chdir(cwd)
    return run, results, "data", photos


def _unknown_species(root):
    """ROOT/{train,valid,test}/<SPECIES>/*.png: plain noise under two names no run here knows."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("valid", 2), ("test", 1)):
        for name in ("NOT A BIRD", "A KITE"):
            (root / split / name).mkdir(parents=True)
            for k in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{k}.png")


def test_calibrate_unknown_shows_its_scoring_and_q_silences_it(calibrated):
    _, results, _, _ = calibrated
    loud, quiet = results["loud"], results["quiet"]
    assert loud.exit_code == 0 and quiet.exit_code == 0, (loud.output, quiet.output)
    lines = loud.stderr.replace("\r", "\n").splitlines()
    assert any("scoring" in line and BAR in line for line in lines), loud.stderr
    assert BAR not in quiet.stderr and "\r" not in quiet.stderr, quiet.stderr


def test_calibrate_unknown_says_the_entropy_rule_in_words(calibrated):
    run, results, _, _ = calibrated
    out = results["quiet"].stdout
    stored = json.loads((run / "unknown.json").read_text())
    assert stored["score"] == "neg_entropy" and stored["threshold"] < 0
    said = re.search(r"stored in .*unknown\.json: (.*?) \(score chosen by --score", out)
    assert said, out
    assert said.group(1) == stored["rule"] == (f"answer 'unknown' when the negative entropy -H(p) = sum(p * log p) "
                                               f"is below {stored['threshold']:.4g} (a p of 0 adds 0)")


def test_unknown_json_stores_the_unknown_folder_absolute_and_as_typed(calibrated):
    run, _, typed, _ = calibrated
    stored = json.loads((run / "unknown.json").read_text())
    folder = str(run.parent / typed)
    assert os.path.isabs(stored["unknown"]) and stored["unknown"] == folder
    assert stored["as_given"] == {"unknown": typed}
    assert stored["chosen_on"]["unknown"].startswith(f"{folder} (all but its test split)")


def test_an_export_made_before_calibrating_answers_by_its_own_contents_and_says_it_is_out_of_date(calibrated, tmp_path):
    run, _, _, photos = calibrated
    inside = run / "export" / "model.onnx"
    res = CliRunner().invoke(main, ["predict", *map(str, photos), "--model", str(inside), "--json", "-q"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["unknown_rule"]["from"] == "no stored rule" and got["unknown_rule"]["threshold"] == 0.0
    assert not any(r["species"] == UNKNOWN for r in got["results"])
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "out of date" in warnings[0], res.stderr
    assert str(run / "unknown.json") in warnings[0] and f"keras-birds export {run} --onnx" in warnings[0]
    # The run itself keeps its rule; the same file copied into an app folder answers as inside the run, silently.
    assert predict(photos, run, progress=False).unknown_rule["from"] == str(run / "unknown.json")
    (tmp_path / "app").mkdir()
    alone = Path(shutil.copy(inside, tmp_path / "app" / "model.onnx"))
    res_alone = CliRunner().invoke(main, ["predict", *map(str, photos), "--model", str(alone), "--json", "-q"])
    assert res_alone.exit_code == 0 and "warning" not in res_alone.stderr, res_alone.output
    assert [r["top_k"] for r in json.loads(res_alone.stdout)["results"]] == [r["top_k"] for r in got["results"]]
    assert [r["species"] for r in json.loads(res_alone.stdout)["results"]] == [r["species"] for r in got["results"]]


def test_class_means_come_from_a_capped_sample_of_each_species(trained_tiny_run, tmp_path, monkeypatch):
    """Issue 33: the cosine score's class means (and the nearest-neighbour bank) read every train image (BIRDS-525: ~30 min of forward passes
    on a 2-core CPU); now at most MEAN_IMAGES_PER_SPECIES of each species, so the cost stays flat."""
    import keras_birds.openset.calibrate as calibrate

    seen = []
    real = calibrate.train_bank

    def counting(model, index, size, progress=""):
        seen.append(np.bincount(index.labels, minlength=len(index.class_names)))
        return real(model, index, size, progress)

    monkeypatch.setattr(calibrate, "train_bank", counting)
    monkeypatch.setattr(calibrate, "MEAN_IMAGES_PER_SPECIES", 2)
    _unknown_species(tmp_path / "data")
    run = tmp_path / "run"
    shutil.copytree(trained_tiny_run.path, run)
    calibrate.calibrate_unknown(run, tmp_path / "data", score_name="max_probability", log=lambda *_: None,
                                progress=False)
    (per_species,) = seen  # birds-mini has 3 train images a species: the cap leaves one out of each
    assert per_species.min() == per_species.max() == 2, per_species
