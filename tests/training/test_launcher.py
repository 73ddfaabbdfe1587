"""Issue 29 item 1, with real processes and real signals: `train --devices 2`'s workers die with the
command that launched them, a run directory has one writer at a time, and SIGTERM ends in one line."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_birds.errors import UserError
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir
from keras_birds.training.train import train
from processes import kill_if_running, parents, running, started  # tests/ (pytest puts it on sys.path)

torch_dist = pytest.importorskip("torch.distributed")
REPO = Path(__file__).resolve().parents[2]
BIRDS = (REPO / ".." / "shared" / "data" / "birds-mini").resolve()
needs_torchrun = pytest.mark.skipif(
    not (BIRDS.is_dir() and torch_dist.is_available() and torch_dist.is_gloo_available()),
    reason="needs ../shared/data/birds-mini and torch.distributed with gloo")


def _env():
    # CPU processes (gloo) even on a GPU machine, one thread each: 2 ranks on 2 cores.
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "KERAS_BACKEND": "torch"}


def _cli(*args):
    return [sys.executable, "-m", "keras_birds.cli", "train", *args]


def _long_devices_2_run(run):
    """The issue's command, smaller: 41 epochs that will not finish while the test watches."""
    return _cli("recipes/effnet_lite0.py", "--data", str(BIRDS), "--weights", "none", "--epochs", "1,40",
                "--image-size", "32", "--batch-size", "16", "-q", "--devices", "2", "--out", str(run))


def _descendants(pid):
    """{pid: command line} of every process below `pid`, from /proc."""
    children = {}
    for child, parent in parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
            todo.append(child)
    return found


def _workers(pid):
    agents = ("keras_birds.training.launch", "torch.distributed.run")
    return {p: cmd for p, cmd in _descendants(pid).items()
            if "keras_birds.cli train" in cmd and not any(a in cmd for a in agents)}


def _start(cmd, log_dir):
    out, err = open(log_dir / "out.log", "w+"), open(log_dir / "err.log", "w+")  # files: a full pipe would stall
    return subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=out, stderr=err, start_new_session=True), out, err


def _wait_for_epoch(proc, run, log_dir, timeout=150):
    state = run / "state.json"
    deadline = time.time() + timeout
    while not (state.exists() and json.loads(state.read_text())["epochs_done"] >= 1):
        assert proc.poll() is None and time.time() < deadline, (log_dir / "err.log").read_text()[-3000:]
        time.sleep(0.2)


def _stop(proc, known: dict):
    """Kill the command if it still runs, then whatever of its family (pid: started) is still that process."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    kill_if_running(known)


def _gone_within(known: dict, seconds):
    """[pid] of {pid: started} still running after `seconds`."""
    deadline = time.time() + seconds
    while any(running(p, since) for p, since in known.items()) and time.time() < deadline:
        time.sleep(0.1)
    return [p for p, since in known.items() if running(p, since)]


@needs_torchrun
def test_kill_9_of_the_launcher_takes_its_workers_with_it(tmp_path):
    run = tmp_path / "run"
    proc, out, err = _start(_long_devices_2_run(run), tmp_path)
    family, known = {}, {}
    try:
        _wait_for_epoch(proc, run, tmp_path)
        family = _descendants(proc.pid)
        known = {p: started(p) for p in family}
        assert len(_workers(proc.pid)) == 2, family
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = _gone_within(known, 5)
        assert not left, f"still running 5 s after kill -9 of the command: {[family[p] for p in left]}"
        before = (run / "state.json").read_bytes(), (run / "metrics.json").read_bytes()
        time.sleep(3)
        assert ((run / "state.json").read_bytes(), (run / "metrics.json").read_bytes()) == before
        # The dead launcher's lock is not held: the next writer gets the run.
        from keras_birds.run_dir import writer_lock

        with writer_lock(run):
            pass
    finally:
        _stop(proc, known)
        out.close(), err.close()


@needs_torchrun
def test_sigterm_stops_a_devices_2_run_with_one_line(tmp_path):
    run = tmp_path / "run"
    proc, out, err = _start(_long_devices_2_run(run), tmp_path)
    family, known = {}, {}
    try:
        _wait_for_epoch(proc, run, tmp_path)
        family = _descendants(proc.pid)
        known = {p: started(p) for p in family}
        err.flush()
        said_before = (tmp_path / "err.log").read_text()
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=60)
        said = (tmp_path / "err.log").read_text()[len(said_before):]
        done = json.loads((run / "state.json").read_text())["epochs_done"]
        assert rc != 0
        assert [line for line in said.splitlines() if line.strip()] == [
            f"training stopped by SIGTERM after epoch {done} of 41; resume with keras-birds train --resume {run} "
            f"--devices 2"], said[-3000:]
        assert not _gone_within(known, 0), "the command returned before its workers ended"
    finally:
        _stop(proc, known)
        out.close(), err.close()


def _tiny_run(make_dataset, tmp_path):
    data = make_dataset(tmp_path, 2, {"train": 4, "valid": 1, "test": 1}, size=32)
    recipe_file = tmp_path / "tiny.py"
    recipe_file.write_text(
        "from keras_birds.recipe import Recipe, Augment\n"
        f"RECIPE = Recipe(model='resnet18', weights='none', data={str(data)!r}, image_size=32, batch_size=4,\n"
        "    epochs=(1, 200), workers=1, augment=Augment(perspective=0, rotation=0, shear=0))\n")
    return recipe_file


def test_a_run_has_one_writer_and_a_dead_writer_does_not_hold_it(make_dataset, tmp_path):
    recipe_file, run = _tiny_run(make_dataset, tmp_path), tmp_path / "run"
    first, out, err = _start(_cli(str(recipe_file), "--out", str(run), "-q"), tmp_path)
    try:
        _wait_for_epoch(first, run, tmp_path)
        # A second writer is refused, naming the first, while it trains: --resume, on 2 devices, --overwrite.
        for args in (["--resume", str(run), "-q"], ["--resume", str(run), "--devices", "2", "-q"]):
            second = subprocess.run(_cli(*args), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=90)
            assert second.returncode == 2 and second.stderr.splitlines() == [
                f"error: {run} is being written by process {first.pid} (another keras-birds train); wait for it to "
                f"end or stop it first"], (args, second.stdout[-2000:], second.stderr[-2000:])
        recipe = Recipe.from_dict(json.loads((run / "recipe.json").read_text()))
        with pytest.raises(UserError, match=f"being written by process {first.pid}"):
            train(recipe, run, overwrite=True, verbose=0, log=lambda *_: None)
        assert first.poll() is None  # untouched
    finally:
        first.kill()
        first.wait()
        out.close(), err.close()
    # Its writer is dead: the lock it left is swept, and a resume gets the run.
    rundir = RunDir(run)
    state = rundir.read_state()
    (run / "state.json").write_text(json.dumps({**state, "epochs_done": 201}))  # finished: nothing left to train
    rundir.model_keras.write_bytes(b"")
    said = []
    train(None, run, resume=True, verbose=0, log=said.append)
    assert said == [f"{run}: all 201 epochs already done"]


def test_resume_of_a_folder_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(UserError, match=f"--resume {tmp_path / 'nowhere'}: no such folder") as e:
        train(None, tmp_path / "nowhere", resume=True, verbose=0)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "nowhere").exists()


def test_sigterm_of_a_one_process_run_is_one_line(make_dataset, tmp_path):
    recipe_file, run = _tiny_run(make_dataset, tmp_path), tmp_path / "run"
    proc, out, err = _start(_cli(str(recipe_file), "--out", str(run), "-q"), tmp_path)
    try:
        _wait_for_epoch(proc, run, tmp_path)
        err.flush()
        said_before = (tmp_path / "err.log").read_text()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
        out.close(), err.close()
    said = (tmp_path / "err.log").read_text()[len(said_before):]
    done = json.loads((run / "state.json").read_text())["epochs_done"]
    assert rc != 0
    assert said.strip().splitlines() == [
        f"training stopped by SIGTERM after epoch {done} of 201; resume with keras-birds train --resume {run}"], said
