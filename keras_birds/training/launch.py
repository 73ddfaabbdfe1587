"""`train --devices N` before anything is built: torchrun processes on torch, N devices on JAX.

Import-light on purpose (no Keras): JAX reads XLA_FLAGS once, when Keras first imports it.
"""
from __future__ import annotations

import os
import sys

from keras_birds import backends
from keras_birds.cores import usable_cores
from keras_birds.errors import UserError


def prepare_devices(devices: int) -> None:
    """torch: become the torchrun agent (does not return); jax: let it see N devices (train() then
    runs a DataParallel); a backend without data-parallel training: one error line."""
    if backends.current() == "torch":
        _launch_torchrun(devices)
    backends.require("--devices N > 1")
    backends.split_host_into(devices)


def _launch_torchrun(devices: int):
    """Re-run this same command line, minus --devices, as `python -m torch.distributed.run` workers."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        raise UserError("--devices launches torchrun itself: leave it out when running under torchrun")
    import torch

    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise UserError(f"--devices {devices}: this machine has {torch.cuda.device_count()} GPU(s)")
    args, rest = [], iter(sys.argv[1:])
    for a in rest:
        if a == "--devices":
            next(rest, None)
        elif not a.startswith("--devices="):
            args.append(a)
    env = dict(os.environ)
    # torchrun would set 1 thread per worker; CPU workers share the cores instead.
    env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // devices)))
    sys.stdout.flush()
    sys.stderr.flush()
    # exec: this process becomes the torchrun agent, so signals and the exit code are its own.
    os.execve(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={devices}", "-m", "keras_birds.cli", *args], env)
