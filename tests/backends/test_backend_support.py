"""What differs between backends fails at start with one line naming the backends that have it."""
import os

import pytest
from click.testing import CliRunner

from keras_birds import backends
from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.training import distributed


def test_devices_on_tensorflow_is_one_error_line(monkeypatch, tmp_path):
    monkeypatch.setattr(backends, "current", lambda: "tensorflow")
    result = CliRunner().invoke(main, ["train", "recipes/effnet_lite0.py", "--devices", "2", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --devices N > 1 is not supported on the tensorflow backend (KERAS_BACKEND; supported on: torch, jax); "
        "drop --devices, or train with KERAS_BACKEND=torch or jax"]
    assert not (tmp_path / "r").exists()


def test_torchrun_under_another_backend_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(backends, "current", lambda: "jax")
    with pytest.raises(UserError, match="torchrun trains on the torch backend, not jax"):
        distributed.init()


def test_jax_host_split_only_before_jax_starts_and_never_over_the_users_flags(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    backends.split_host_into(3)
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_foo=1 --xla_force_host_platform_device_count=3"
    backends.split_host_into(5)  # the user's (or an earlier) count stands
    assert os.environ["XLA_FLAGS"].endswith("count=3")
