"""`train --devices N` before anything is built: torchrun processes on torch, N devices on JAX; and how
a training ends when a signal stops it: one line saying where it stopped and how to resume.

Import-light on purpose (no Keras): JAX reads XLA_FLAGS once, when Keras first imports it.

On torch the command stays the parent of the torchrun job it starts: it holds the run directory's writer
lock for the whole job, and a stopping signal (SIGTERM, Ctrl-C, SIGHUP) ends the job. The torchrun agent
(this module run as __main__, then torch.distributed.run) and its workers get SIGKILL from the kernel when
their parent dies (Linux's PR_SET_PDEATHSIG; elsewhere a thread watching the parent pid), so a kill -9 of
the command leaves nothing training or writing the run.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import subprocess
import sys
import threading
import time

from keras_birds import backends
from keras_birds.cores import usable_cores
from keras_birds.errors import UserError
from keras_birds.run_dir import LOCK_HELD_ENV, RunDir, writer_lock

# The agent's pid, for its workers: one whose parent is not that pid lost it while starting.
AGENT_PID_ENV = "KERAS_BIRDS_TORCHRUN_AGENT"
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def prepare_devices(devices: int) -> bool:
    """torch: check torchrun can start, True (the caller then calls run_torchrun_job); jax: let it see N
    devices (train() then runs a DataParallel); a backend without data-parallel training: one error line."""
    if backends.current() == "torch":
        _check_torchrun(devices)
        return True
    backends.require("--devices N > 1")
    backends.split_host_into(devices)
    return False


def _check_torchrun(devices: int):
    if "TORCHELASTIC_RUN_ID" in os.environ:
        raise UserError("--devices launches torchrun itself: leave it out when running under torchrun")
    import torch

    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise UserError(f"--devices {devices}: this machine has {torch.cuda.device_count()} GPU(s)")


def run_torchrun_job(devices: int, run_path, resume: bool, overwrite: bool):
    """Run this same command line, minus --devices, as torchrun workers below this process, holding the
    run's writer lock until the last of them is gone; exit with the job's status (does not return)."""
    run = RunDir(run_path)
    run.check_can_start(resume, overwrite)
    args, rest = [], iter(sys.argv[1:])
    for a in rest:
        if a == "--devices":
            next(rest, None)
        elif not a.startswith("--devices="):
            args.append(a)
    env = dict(os.environ)
    # torchrun would set 1 thread per worker; CPU workers share the cores instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // devices)))
    env[LOCK_HELD_ENV] = os.path.abspath(run.path)  # rank 0 writes under this process's lock
    cmd = [sys.executable, "-m", "keras_birds.training.launch", str(os.getpid()), "--standalone",
           f"--nproc_per_node={devices}", "-m", "keras_birds.cli", *args]
    with writer_lock(run.path) as lock_fd:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # workers the agent leaves behind become ours to wait for
        sys.stdout.flush()
        sys.stderr.flush()
        stopped, status = _run_agent(cmd, env, lock_fd)
        _reap_orphans()
    if stopped:
        print(stopped_line(stopped, run.path, devices), file=sys.stderr, flush=True)
        sys.exit(128 + stopped)
    sys.exit(status if status >= 0 else 128 - status)


def _run_agent(cmd, env, lock_fd) -> tuple:
    """(the signal that stopped this process or 0, the agent's exit status). A stopping signal kills the
    agent, and its workers with it; the agent holds the lock too (passed on), so it outlives no writer."""
    stopped, agent = [], []

    def stop(signum, frame):
        stopped.append(signum)
        for proc in agent:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        # Its own session: Ctrl-C reaches this process alone, not torchrun's traceback-printing handler.
        agent.append(subprocess.Popen(cmd, env=env, pass_fds=(lock_fd,), start_new_session=True))
        if stopped:
            stop(stopped[0], None)
        status = agent[0].wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return (stopped[0] if stopped else 0), status


def _reap_orphans(seconds=30.0):
    """Wait for the workers reparented here when the agent died (SIGKILL on the way): the lock is
    released, and the command returns, once nothing writes the run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def stopped_line(signum: int, run_path, devices: int) -> str:
    """What a training stopped by a signal says instead of a traceback: where it stopped, how to go on."""
    run, name = RunDir(run_path), signal.Signals(signum).name
    done, total = run.epochs_progress()
    if total is None:
        return f"training stopped by {name} before {run.path} held a run; run the same command again"
    when = f"after epoch {done} of {total}" if done else f"before epoch 1 of {total} ended"
    return (f"training stopped by {name} {when}; resume with keras-birds train --resume {run.path}"
            f"{f' --devices {devices}' if devices > 1 else ''}")


@contextlib.contextmanager
def one_line_on_stop(run_path, devices: int):
    """While a training runs in this process, a stopping signal prints stopped_line and exits 128 + signal
    at once (each file of the run is written whole: only the epoch under way is lost). Not in a torchrun
    worker: there the command that launched the job speaks."""
    if "TORCHELASTIC_RUN_ID" in os.environ or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        with contextlib.suppress(Exception):  # e.g. a reentrant flush: the line matters more
            sys.stdout.flush()
        os.write(2, (stopped_line(signum, run_path, devices) + "\n").encode())
        os._exit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def die_with_agent():
    """In a worker of `train --devices N`: SIGKILL when the torchrun agent that started it dies."""
    agent = os.environ.get(AGENT_PID_ENV)
    if agent and "TORCHELASTIC_RUN_ID" in os.environ:
        _die_with_parent(int(agent))


def _die_with_parent(parent: int):
    """SIGKILL this process when `parent` dies; already orphaned (it died while this one started): now."""
    if not _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent: int):
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def _prctl(option: int, value: int) -> bool:
    """Linux's prctl(2); False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, int(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _agent_main(argv):
    """`python -m keras_birds.training.launch LAUNCHER_PID TORCHRUN_ARGS...`: torch.distributed.run that
    dies with the command that started it."""
    _die_with_parent(int(argv[0]))
    os.environ[AGENT_PID_ENV] = str(os.getpid())
    sys.argv = ["torch.distributed.run", *argv[1:]]
    runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _agent_main(sys.argv[1:])
