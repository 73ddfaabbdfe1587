"""A run killed mid-training (kill -9 of a real `train`) is said to be unfinished wherever it is used:
eval, predict, compare and report name the epoch it stopped after, their JSON records it, and compare
keeps it out of the recommendation unless --include-unfinished."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE = 32
EPOCHS = "1,40"  # far more than the test waits for: the run is killed in its second epoch or soon after


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def killed(tmp_path_factory, repo_root):
    """(killed run, epochs done when killed, finished run of the same data, a photo): `keras-birds train` in a
    real process, killed with SIGKILL once state.json counts a finished epoch."""
    root = tmp_path_factory.mktemp("unfinished")
    data = _dataset(root / "data")
    run = RunDir(root / "killed")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_birds.cli", "train", "recipes/effnet_lite0.py", "--data", str(data), "--weights",
         "none", "--image-size", str(SIZE), "--epochs", EPOCHS, "--batch-size", "4", "-q", "--out", str(run.path)],
        cwd=repo_root, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env={**os.environ, "KERAS_BACKEND": "torch"})
    try:
        deadline = time.time() + 240
        while run.read_state().get("epochs_done", 0) < 1:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no epoch finished in 240 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert not run.model_keras.exists() and not run.summary_json.exists()
    return run, run.read_state()["epochs_done"], _finished_run(root / "finished", data), data / "test" / "CLASS 00"


def _dataset(root, classes=4):
    """ROOT/{train,valid,test}/CLASS NN/*.png: 3/1/1 images of one colour per class, plus noise."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 1), ("test", 1)):
        for c in range(classes):
            folder = root / split / f"CLASS {c:02d}"
            folder.mkdir(parents=True)
            for k in range(n):
                pixels = np.clip(rng.normal(60 * c, 20, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{k}.png")
    return root


def _finished_run(path, data):
    """A finished run of the same data, written by hand (model.keras present): the one to recommend."""
    import keras

    from keras_birds.models.build import build_classifier

    names = sorted(p.name for p in (data / "train").iterdir())
    recipe = Recipe(model="efficientnet_lite0", weights="none", data=str(data), image_size=SIZE, epochs=(1, 0),
                    workers=1, augment=Augment(False, 0, 0, 0, 0, 0), name="finished")
    run = RunDir(path)
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(names)
    keras.utils.set_random_seed(0)
    atomic_save(run.model_keras, build_classifier("efficientnet_lite0", len(names), "none", image_size=SIZE).save)
    return run


def _note(done):
    return f"unfinished: stopped after epoch {done} of 41"


def test_eval_says_the_run_is_unfinished(killed, tmp_path):
    run, done, _, _ = killed
    result = cli("eval", run.path, "--latency-runs", "0", "-q", "--out", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.count(_note(done)) == 2  # a warning line, and a row of the table (on stderr with --json)
    printed = json.loads(result.stdout)
    assert printed["unfinished"] == {"epochs_done": done, "epochs": 41, "note": _note(done)}
    assert json.loads((tmp_path / "r" / "report.json").read_text())["unfinished"] == printed["unfinished"]
    assert _note(done) in (tmp_path / "r" / "report.md").read_text()


def test_predict_says_the_run_is_unfinished(killed):
    run, done, _, photos = killed
    result = cli("predict", photos, "--model", run.path, "-q", "--json")
    assert result.exit_code == 0, result.output
    assert f"warning: {run.path} is {_note(done)}" in result.stderr
    assert json.loads(result.stdout)["unfinished"]["note"] == _note(done)


def test_compare_shows_it_and_leaves_it_out_of_the_recommendation(killed, tmp_path, monkeypatch):
    from keras_birds.comparison import compare as comparison
    from keras_birds.comparison.table import pick

    run, done, finished, _ = killed
    result = cli("compare", run.path, finished.path, "--latency-runs", "2", "-q", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert _note(done) in result.stdout and "--include-unfinished" in result.stdout
    assert f"warning: {run.path} is {_note(done)}" in result.stderr
    saved = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert [r["unfinished"] for r in saved["rows"]] == [_note(done), None]
    assert saved["recommended"]["name"] == "finished"
    assert saved["left_out"] == [{"row": "effnet_lite0", "why": _note(done)}]
    assert pick(saved["rows"][:1])["recommended"] is None  # alone, it is still not recommended
    # Asked for, it is a candidate like any other (the same rows: no second evaluation).
    asked = comparison.write_comparison(saved["rows"][:1], tmp_path / "asked", "test", include_unfinished=True)
    assert asked.recommended["row"]["name"] == "effnet_lite0"
    seen = {}
    monkeypatch.setattr(comparison, "compare", lambda *a, **kw: seen.update(kw) or asked)
    assert cli("compare", run.path, "--include-unfinished").exit_code == 0 and seen["include_unfinished"] is True


def test_report_says_the_run_is_unfinished(killed, tmp_path):
    from keras_birds.reporting.study import write_report

    run, done, _, _ = killed
    page = write_report([run.path], out=tmp_path / "page")
    assert _note(done) in page.html.read_text() and _note(done) in page.markdown.read_text()
