"""Data-parallel training over 2 CPU processes (torchrun, gloo) on real birds: parity and kill-then-resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from processes import parents  # tests/ (pytest puts it on sys.path)

torch_dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.skipif(not (torch_dist.is_available() and torch_dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

REPO = Path(__file__).resolve().parents[2]
BIRDS = (REPO / ".." / "shared" / "data" / "birds-mini").resolve()
# Augmentation and dropout off: the runs differ then only by how the global batch is split.
QUIET_TRAINING = ["--set", "augment.flip=false", "--set", "augment.perspective=0", "--set", "augment.rotation=0",
                  "--set", "augment.translate=0", "--set", "augment.zoom=0", "--set", "augment.shear=0",
                  "--set", "dropout=0"]


def _env():
    # CPU processes (gloo) even on a GPU machine; one thread each: 2 ranks on 2 cores, and the
    # single-process run on the same footing.
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "KERAS_BACKEND": "torch"}


def _train_cmd(*args):
    return [sys.executable, "-m", "keras_birds.cli", "train", *args]


def _recipe_args(out, epochs, batch_size, exclude=None):
    args = ["recipes/effnet_lite0.py", "--data", str(BIRDS), "--image-size", "64", "--epochs", epochs,
            "--batch-size", str(batch_size), "--out", str(out), "-q", *QUIET_TRAINING]
    return args + (["--exclude", str(exclude)] if exclude else [])


def _run(cmd, timeout=300):
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, time.time() - t0


def _files(run: Path):
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


STEP_SCRIPT = """
import sys, numpy as np, keras
from keras_birds.training import distributed
distributed.init()
w, r = distributed.world_size(), distributed.rank()
rng = np.random.default_rng(0)
x = rng.normal(size=(32, 5)).astype("float32"); y = np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]
keras.utils.set_random_seed(r + 1)  # a different start on each rank: the broadcast must undo it
m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), keras.layers.Dense(3, activation="softmax")])
m.compile(optimizer=keras.optimizers.AdamW(1e-2), loss="categorical_crossentropy")
distributed.average_gradients(m.optimizer)
distributed.broadcast_variables(m)
m.fit(x[r::w], y[r::w], batch_size=16 // w, epochs=2, shuffle=False, verbose=0)
np.savez(sys.argv[1] + f"_{r}.npz", *[keras.ops.convert_to_numpy(v) for v in m.trainable_variables])
"""


def test_gradient_averaging_equals_one_process_on_the_global_batch(tmp_path):
    """2 ranks x batch 8 (each half of every global batch of 16) take the very steps of 1 process x 16."""
    script = tmp_path / "step.py"
    script.write_text(STEP_SCRIPT)
    _run([sys.executable, str(script), str(tmp_path / "single")])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
          str(tmp_path / "dist")])
    single, r0, r1 = (np.load(tmp_path / f"{n}.npz") for n in ("single_0", "dist_0", "dist_1"))
    for k in single:
        assert np.array_equal(r0[k], r1[k]), k  # every rank holds the same weights
        np.testing.assert_allclose(r0[k], single[k], atol=1e-6)


@pytest.mark.skipif(not BIRDS.is_dir(), reason="needs ../shared/data/birds-mini")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # birds-mini has 75 train images; leaving one out lets 2 ranks split every global batch exactly
    # (an odd count pads one rank's last batch with a repeated image, as DistributedSampler does).
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(f"{sorted((BIRDS / 'train').glob('*/*'))[0]}\n")
    single, dist = tmp_path / "single", tmp_path / "dist"
    _, single_s = _run(_train_cmd(*_recipe_args(single, "1,1", 32, exclude)))
    out, dist_s = _run(_train_cmd(*_recipe_args(dist, "1,1", 16, exclude), "--devices", "2"))
    assert out.count("epoch 2 (phase 2)") == 1, out  # one rank logs
    assert _files(dist) == _files(single)  # one run directory, the same files
    rows_1, rows_2 = (json.loads((r / "metrics.json").read_text()) for r in (single, dist))
    assert [r["epoch"] for r in rows_2] == [1, 2]
    n_valid = json.loads((single / "summary.json").read_text())["valid_images"]
    top1_1, top1_2 = rows_1[-1]["val_top1"], rows_2[-1]["val_top1"]
    print(f"valid top-1: 1 process {top1_1} ({single_s:.0f}s), 2 processes {top1_2} ({dist_s:.0f}s)")
    assert abs(top1_1 - top1_2) * n_valid <= 1 + 1e-6, (rows_1, rows_2)
    assert abs(rows_1[0]["loss"] - rows_2[0]["loss"]) < 1e-3  # train loss averaged over the ranks
    assert json.loads((dist / "recipe.json").read_text())["batch_size"] == 16  # per device


def _rank_pids(launcher_pid):
    """{RANK: pid} of the worker processes below the command (its torchrun agent's children), from /proc."""
    up_of = parents()
    ranks = {}
    for pid in up_of:
        up = up_of.get(pid)
        while up not in (None, 0, 1, launcher_pid):
            up = up_of.get(up)
        if up != launcher_pid:
            continue
        try:
            env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
        except OSError:
            continue
        if "RANK" in env:
            ranks[int(env["RANK"])] = pid
    return ranks


@pytest.mark.skipif(not BIRDS.is_dir(), reason="needs ../shared/data/birds-mini")
def test_sigkill_of_one_rank_then_resume_finishes_every_epoch_once(tmp_path):
    run = tmp_path / "run"
    state = run / "state.json"
    cmd = _train_cmd(*_recipe_args(run, "1,3", 16), "--devices", "2")
    log = open(tmp_path / "killed.log", "w+")  # a file, not a pipe: a full pipe would stall the run
    agent = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (state.exists() and json.loads(state.read_text())["epochs_done"] >= 1):
            assert agent.poll() is None and time.time() < deadline, (tmp_path / "killed.log").read_text()[-3000:]
            time.sleep(0.1)
        ranks = _rank_pids(agent.pid)  # the command's torchrun job: its agent's workers
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGKILL)
        agent.wait(timeout=120)  # torchrun ends the other rank and fails
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
        log.close()
    assert agent.returncode != 0
    killed_after = json.loads(state.read_text())["epochs_done"]
    assert 1 <= killed_after < 4, "the run finished before the kill: nothing was tested"
    assert not (run / "model.keras").exists()
    assert json.loads(state.read_text())["world_size"] == 2

    # Another process count would change the steps per epoch under the saved LR schedule: refused, run intact.
    alone = subprocess.run(_train_cmd("--resume", str(run), "-q"), cwd=REPO, env=_env(), capture_output=True,
                           text=True, timeout=120)
    assert alone.returncode != 0 and "resume it with --devices 2" in alone.stderr, alone.stdout + alone.stderr
    assert json.loads(state.read_text())["epochs_done"] == killed_after

    out, _ = _run(_train_cmd("--resume", str(run), "--devices", "2", "-q"))
    assert f"after epoch {killed_after} of 4" in out, out
    assert [r["epoch"] for r in json.loads((run / "metrics.json").read_text())] == [1, 2, 3, 4]
    assert json.loads(state.read_text())["epochs_done"] == 4
    assert (run / "model.keras").is_file() and (run / "summary.json").is_file()
    assert not list(run.rglob("*.partial*"))
