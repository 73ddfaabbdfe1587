"""The Keras backend this process runs, and the one feature that differs between backends.

Keras picks its backend once per process from KERAS_BACKEND (keras_birds/__init__ defaults it to
torch). train, eval, export and predict run the same on torch, jax and tensorflow; a run directory
written on one is read on any other (weights files and model.keras are backend-neutral). Only
data-parallel training needs backend support: torchrun processes on torch, keras.distribution's
DataParallel on jax; a feature a backend lacks fails at start with one line naming the backends that
have it.
"""
from __future__ import annotations

import os
import sys

from keras_birds.errors import UserError

# feature -> (the backends that have it, what to do elsewhere)
SUPPORTED = {"--devices N > 1": (("torch", "jax"), "drop --devices, or train with KERAS_BACKEND=torch or jax")}


def current() -> str:
    """The backend Keras runs, or will run: read from the environment until Keras is imported, so a
    caller can still set what JAX reads once at start (XLA_FLAGS)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "torch")


def require(feature: str) -> None:
    """One UserError line when `feature` (a key of SUPPORTED) is not available on this backend."""
    have, fix = SUPPORTED[feature]
    if current() not in have:
        raise UserError(f"{feature} is not supported on the {current()} backend (KERAS_BACKEND; supported on: "
                        f"{', '.join(have)}); {fix}")


def split_host_into(devices: int) -> None:
    """Let JAX see `devices` CPU devices, as XLA can split the host: a CPU-only machine then trains
    data-parallel as torchrun's gloo processes do. Only before JAX starts, and only when the user has
    not chosen a count already; the flag leaves GPU devices alone."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
