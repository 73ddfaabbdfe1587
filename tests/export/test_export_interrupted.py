"""`keras-birds export` failing or killed midway, as real processes: nothing unverified may look verified.

Issue 21: an export that failed on a moved data set left model.onnx/model_fp32.tflite under their
final names; a kill -9 while verifying a re-export left a new model_int8.tflite beside the old
export.json; a killed export left its TFLite worker running and a temporary folder behind.
"""
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from keras_birds.run_dir import RunDir
from processes import command, parents, running, started  # tests/ (pytest puts it on sys.path)


KERAS_BIRDS = str(Path(sys.executable).parent / "keras-birds")
WORKER_MODULE = "keras_birds.export._tflite_worker"


def _md5s(folder: Path) -> dict:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


class _Lines:
    """A child process' merged output, read line by line in a thread, waited on with a deadline."""

    def __init__(self, proc):
        self.proc, self.seen, self._q = proc, [], queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self._q.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False


def _start(args, cwd=None):
    proc = subprocess.Popen([KERAS_BIRDS, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=dict(os.environ, KERAS_BACKEND="torch"))
    return proc, _Lines(proc)


def _workers() -> dict:
    """{pid: (parent pid, job path)} of every running TFLite worker of ours (and its watcher)."""
    found = {}
    for pid, ppid in parents().items():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if WORKER_MODULE.encode() in argv and running(pid):
            found[pid] = (ppid, argv[argv.index(WORKER_MODULE.encode()) + 1].decode())
    return found


def test_moved_data_fails_before_any_file_is_written(birds_mini, tiny_run, tmp_path, monkeypatch):
    """The README's first command stores a relative data path; exporting that run from another folder
    must fail on the data before converting, and leave the out folder without a model file."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    relative = os.path.relpath(birds_mini, tmp_path / "work")
    run = tmp_path / "work" / "run"  # the shared tiny run, its recipe pointing at the data relatively
    shutil.copytree(tiny_run.path, run)
    recipe = json.loads((run / "recipe.json").read_text())
    (run / "recipe.json").write_text(json.dumps({**recipe, "data": relative}))
    assert RunDir(run).read_recipe()["data"] == relative
    elsewhere = tmp_path / "somewhere" / "else"  # one level deeper: the relative path misses from here
    elsewhere.mkdir(parents=True)
    out = elsewhere / "X"
    proc, lines = _start(["export", str(run.resolve()), "--out", "X", "--latency-runs", "0"], cwd=elsewhere)
    assert proc.wait(timeout=300) == 2
    lines.wait_for("\0", 5)  # drain
    text = "".join(lines.seen)
    assert "does not exist" in text and "--data" in text, text
    assert "converting" not in text and "exporting ONNX" not in text
    assert not out.exists() or not [p for p in out.rglob("*") if p.suffix in (".onnx", ".tflite")]


def test_kill_while_verifying_a_reexport_keeps_the_old_files_and_report(exported, tiny_run, tmp_path):
    out = tmp_path / "export"
    shutil.copytree(exported.out_dir, out, ignore=shutil.ignore_patterns("web"))  # the files and report, not the page
    before = _md5s(out)
    report = json.loads((out / "export.json").read_text())
    for entry in report["files"]:  # export.json names each file by content
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest()

    proc, lines = _start(["export", str(tiny_run.path), "--tflite", "--quantize", "int8", "--calibration-images", "1",
                          "--latency-runs", "0", "--out", str(out)])
    try:
        assert lines.wait_for("verifying on", 300), "".join(lines.seen)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _md5s(out) == before  # the new int8 file never took the verified name; export.json untouched
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(before)

    # The next export sweeps the dead process' pending folder away.
    assert list(out.glob(".pending-*"))
    from keras_birds.export.export import export

    export(tiny_run.path, onnx=True, tflite=False, verify=False, out=out, latency_runs=0, log=lambda *_: None)
    assert not list(out.glob(".pending-*"))
    assert json.loads((out / "export.json").read_text())["files"][0]["file"] == "model.onnx"


def test_kill_during_conversion_ends_the_worker_and_removes_its_folder(tiny_run, tmp_path):
    out = tmp_path / "export"
    already = set(_workers())  # a test run in parallel may have its own
    proc, lines = _start(["export", str(tiny_run.path), "--tflite", "--quantize", "none,fp16,dynamic,int8",
                          "--no-verify", "--latency-runs", "0", "--out", str(out)])
    worker, job = None, None
    try:
        deadline = time.time() + 300
        while worker is None and time.time() < deadline and proc.poll() is None:
            mine = {pid: job for pid, (ppid, job) in _workers().items() if ppid == proc.pid}
            if mine:
                (worker, job), = mine.items()
            time.sleep(0.2)
        assert worker is not None, "no TFLite worker started: " + "".join(lines.seen)
        since = started(worker)
        work = Path(job).parent
        log = work / "worker.log"
        while time.time() < deadline and "converting (none)" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.2)
        # Mid-conversion: three more quantisations to go when the parent dies.
        assert running(worker, since), "the worker finished before it could be interrupted"
        assert work.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 20
    left = lambda: [pid for pid, (_, j) in _workers().items() if j == job and pid not in already]  # noqa: E731
    # the worker too: a killed process with many threads stays in /proc a while as it exits, its cmdline empty
    while time.time() < deadline and (left() or work.exists() or running(worker, since)):
        time.sleep(0.2)
    assert not running(worker, since), f"the TFLite worker outlived the killed export: {command(worker)}"
    assert not left(), "a process of the TFLite worker outlived the killed export"
    assert not work.exists(), f"the worker's temporary folder {work} was left behind"
    assert not [p for p in out.glob("*") if p.suffix == ".tflite"]

