"""End-to-end training on generated images: learning, best-epoch selection, kill-then-resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir
from keras_birds.training.schedule import one_cycle
from keras_birds.training.train import train

COLORS = [(220, 40, 40), (40, 200, 60), (50, 70, 230), (230, 210, 40)]


def separable_dataset(root: Path, per_split=(10, 4, 4), size=48, seed=0):
    """Four 'species' told apart by colour, with noise and a random bright square as clutter."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "valid", "test"), per_split):
        for c, color in enumerate(COLORS):
            d = root / split / f"SPECIES {c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(np.array(color) + rng.normal(0, 30, (size, size, 3)), 0, 255)
                y, x = rng.integers(0, size - 12, 2)
                img[y:y + 12, x:x + 12] = rng.integers(0, 255, 3)
                Image.fromarray(img.astype(np.uint8)).save(d / f"{i}.jpg")
    return root


def small_recipe(data, **kw):
    base = dict(model="resnet18", weights="none", data=str(data), image_size=48, batch_size=8,
                # Phase 2 at 1e-3: at 3e-3 this random-init ResNet on 40 images swung between 0.25 and 0.75.
                epochs=(1, 3), lr=(1e-2, 1e-3), workers=1, dropout=0.0,
                augment=Augment(flip=True, perspective=0, rotation=0, translate=0, zoom=0, shear=0))
    base.update(kw)
    return Recipe(**base)


def weights_digest(path):
    with h5py.File(path, "r") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(np.asarray(obj).ravel()) if isinstance(obj, h5py.Dataset) else None)
    return np.concatenate(arrays)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = separable_dataset(tmp_path_factory.mktemp("data"))
    run = train(small_recipe(root), tmp_path_factory.mktemp("runs") / "run", verbose=0, log=lambda *_: None)
    return run


def test_two_phase_run_learns_separable_data(trained_run):
    rows = trained_run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["phase"] for r in rows] == [1, 2, 2, 2]
    best = max(r["val_top1"] for r in rows)
    assert best >= 0.75, rows  # chance is 0.25


def test_run_directory_holds_everything(trained_run):
    run = trained_run
    for path in (run.recipe_json, run.classes_txt, run.best_weights, run.metrics_csv, run.metrics_json,
                 run.model_keras, run.summary_json, run.state_json):
        assert path.is_file(), path
    assert [run.epoch_weights(e).is_file() for e in range(1, 5)] == [True] * 4
    assert run.read_classes() == [f"SPECIES {c}" for c in range(4)]
    assert Recipe.from_dict(run.read_recipe()).epochs == (1, 3)
    assert not list(run.path.rglob("*.partial*"))
    header = run.metrics_csv.read_text().splitlines()[0].split(",")
    assert {"loss", "top1", "top5", "lr", "val_top1", "val_top5"} <= set(header)


def test_best_epoch_is_the_best_validation_epoch(trained_run):
    run = trained_run
    rows = run.read_metrics()
    best = max(rows, key=lambda r: (r["val_top1"], -r["epoch"]))  # first epoch reaching the best
    summary = json.loads(run.summary_json.read_text())
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val_top1"] == pytest.approx(best["val_top1"])
    np.testing.assert_array_equal(weights_digest(run.best_weights), weights_digest(run.epoch_weights(best["epoch"])))


def test_saved_model_reproduces_best_validation_accuracy(trained_run):
    import keras

    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import folder_source
    from keras_birds.evaluation.metrics import topk_accuracy
    from keras_birds.training.callbacks import predict_probs

    run = trained_run
    recipe = Recipe.from_dict(run.read_recipe())
    model = keras.saving.load_model(run.model_keras)
    loader = BatchLoader(folder_source(recipe.data)["valid"], 48, 8)
    probs, labels = predict_probs(model, loader)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    assert topk_accuracy(probs, labels, 1) == pytest.approx(json.loads(run.summary_json.read_text())["best_val_top1"])


def test_learning_rate_follows_one_cycle_per_phase(trained_run):
    rows = trained_run.read_metrics()
    steps = 5  # 40 train images / batch 8
    phase2 = one_cycle(1e-3, 3 * steps)
    for r, step in zip(rows[1:], (steps, 2 * steps, 3 * steps)):
        assert r["lr"] == pytest.approx(float(phase2(step - 1)), rel=1e-5)


def _cli(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return [sys.executable, "-m", "keras_birds.cli", "train", *args], env


def test_kill_then_resume_loses_no_epoch(tmp_path):
    root = separable_dataset(tmp_path / "data", per_split=(8, 2, 2))  # 8 steps an epoch: enough to kill inside one
    recipe_file = tmp_path / "tiny.py"
    recipe_file.write_text(
        "from keras_birds.recipe import Recipe, Augment\n"
        f"RECIPE = Recipe(model='resnet18', weights='none', data={str(root)!r}, image_size=48, batch_size=4,\n"
        "    epochs=(1, 3), lr=(1e-2, 3e-3), workers=1, augment=Augment(perspective=0, rotation=0, shear=0))\n")
    out = tmp_path / "run"
    cmd, env = _cli(str(recipe_file), "--out", str(out), "-q")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run = RunDir(out)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill inside epoch 3 (phase 2)
        if run.state_json.exists() and run.read_state()["epochs_done"] >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_after = run.read_state()["epochs_done"]
    assert 2 <= killed_after < 4
    assert not run.model_keras.exists()
    kept = {e: weights_digest(run.epoch_weights(e)) for e in range(1, killed_after + 1)}

    cmd, env = _cli("--resume", str(out), "-q")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"resuming {out} after epoch {killed_after}" in done.stdout

    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["phase"] for r in rows] == [1, 2, 2, 2]
    for e, digest in kept.items():  # finished epochs are neither lost nor redone
        np.testing.assert_array_equal(weights_digest(run.epoch_weights(e)), digest)
    steps = 8  # 32 images / batch 4: the LR schedule continued where it stopped
    phase2 = one_cycle(3e-3, 3 * steps)
    for r, step in zip(rows[1:], (steps, 2 * steps, 3 * steps)):
        assert r["lr"] == pytest.approx(float(phase2(step - 1)), rel=1e-5)
    assert run.model_keras.is_file() and run.read_state()["epochs_done"] == 4
    assert not list(out.rglob("*.partial*"))


def test_resume_of_a_finished_run_does_nothing(trained_run):
    before = trained_run.model_keras.stat().st_mtime
    train(None, trained_run.path, resume=True, verbose=0, log=lambda *_: None)
    assert trained_run.model_keras.stat().st_mtime == before


# -- issue 21 ----------------------------------------------------------------------------------------
def test_new_run_stores_absolute_paths_and_works_from_another_folder(tmp_path, monkeypatch):
    """Relative --data/--exclude are relative to where `train` runs; the run stores them absolute, so
    eval of the run works from any other folder. What the user typed is kept beside them."""
    from keras_birds.evaluation.evaluate import evaluate

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    separable_dataset(here / "birds", per_split=(3, 2, 2), size=32)
    elsewhere.mkdir()
    (here / "lists").mkdir()
    (here / "lists" / "ex.txt").write_text(str(here / "birds" / "train" / "SPECIES 0" / "0.jpg") + "\n")
    monkeypatch.chdir(here)
    recipe = small_recipe("birds", exclude="lists/ex.txt", model="efficientnet_lite0", image_size=32, batch_size=4,
                          epochs=(1, 0))
    run = train(recipe, tmp_path / "run", verbose=0, log=lambda *_: None)

    monkeypatch.chdir(elsewhere)
    stored = json.loads(run.recipe_json.read_text())
    assert stored["data"] == str(here / "birds") and stored["exclude"] == str(here / "lists" / "ex.txt")
    assert stored["as_given"] == {"data": "birds", "exclude": "lists/ex.txt"}
    assert stored["weights"] == "none"
    assert json.loads(run.summary_json.read_text())["excluded_files"] == 1
    report = evaluate(run.path, split="valid", latency_runs=0, progress=False)
    assert report["data"] == str(here / "birds") and report["n_images"] == 8
    # --resume reads it back (a finished run: nothing to do)
    assert train(None, run.path, resume=True, verbose=0, log=lambda *_: None).path == run.path


def _tiny_cli_run(make_dataset, tmp_path, *args):
    """The installed `keras-birds train` on 3 tiny species (5 train images each, batch 4: a short last
    batch), EfficientNet-Lite0 from random init at 32 px; returns (returncode, stdout, stderr)."""
    exe = Path(sys.executable).with_name("keras-birds")
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    data = make_dataset(tmp_path, 3, {"train": 5, "valid": 2, "test": 2}, size=32)
    cmd = [str(exe), "train", *args, "--data", str(data), "--weights", "none", "--image-size", "32",
           "--batch-size", "4", "--out", str(tmp_path / "run")]
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    proc = subprocess.run(cmd, capture_output=True, cwd=tmp_path, env=env, timeout=600)
    # Decoded by hand: text=True would turn the progress bar's "\r" into "\n".
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def test_epoch_line_is_not_glued_to_the_progress_bar(make_dataset, tmp_path, repo_root):
    rc, out, err = _tiny_cli_run(make_dataset, tmp_path, str(repo_root / "recipes" / "effnet_lite0.py"),
                                 "--epochs", "1,1", "--set", "head_init=random")
    assert rc == 0, err[-3000:]
    assert "\r" in out  # the progress bar was drawn
    for n, phase in ((1, 1), (2, 2)):
        line = next(line for line in out.split("\n") if f"epoch {n} (phase {phase})" in line)
        assert line.split("\r")[-1].startswith(f"epoch {n} (phase {phase}):"), repr(line[-300:])


def test_quiet_run_prints_no_retracing_warning(make_dataset, tmp_path, repo_root):
    # Linear probe over 2 augmented views, then a head-only epoch: three augmenters, short last batches.
    rc, out, err = _tiny_cli_run(make_dataset, tmp_path, str(repo_root / "recipes" / "effnet_lite0_fewshot.py"),
                                 "-q")
    assert rc == 0, err[-3000:]
    assert "retracing" not in out + err, (out + err)[-3000:]
    assert "epoch 1 (phase 1)" in out
