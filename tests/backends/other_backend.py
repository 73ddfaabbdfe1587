"""Helpers for running keras-birds under another Keras backend, in a subprocess (this process is torch)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def backend_env(backend: str, **extra) -> dict:
    """os.environ with KERAS_BACKEND=backend; skips the test when that backend is not installed."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[{backend}]' for jax)")
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def run_under(backend: str, *args, cwd=None, timeout=600, **env) -> subprocess.CompletedProcess:
    """`args` as a command (a leading "keras-birds" is the installed command) under `backend`."""
    if args[0] == "keras-birds":
        exe = Path(sys.executable).with_name("keras-birds")
        if not exe.exists():
            pytest.skip(f"{exe} not installed")
        args = (str(exe), *args[1:])
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=backend_env(backend, **env), timeout=timeout)


_CLI_SESSION = """
import json, sys
import keras_birds
from click.testing import CliRunner
from keras_birds.cli import main
results = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    results.append({"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr})
print(json.dumps(results))
"""


def cli_under(backend: str, *commands, cwd=None, timeout=600) -> list:
    """Several `keras-birds` commands (argument lists) in one process under `backend`, through the same
    click entry point as the installed command (one start-up instead of one each); their results as
    [{"exit_code", "stdout", "stderr"}]."""
    proc = run_under(backend, sys.executable, "-c", _CLI_SESSION, json.dumps([[str(a) for a in c] for c in commands]),
                     cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])
