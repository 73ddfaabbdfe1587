"""The recipe's `precision` -> a Keras dtype policy for training; weights and saved models stay float32.

Keras' mixed policies keep every variable in float32 and compute in bfloat16/float16; `compile` wraps
the optimizer in a LossScaleOptimizer under mixed_float16, so float16 gets loss scaling by itself.
"""
from __future__ import annotations

import contextlib

import keras

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def resolve_precision(precision: str) -> str:
    """"auto": bfloat16 on a GPU that supports it, float32 elsewhere (CPU bfloat16 is slower than float32)."""
    if precision != "auto":
        return precision
    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16"
    return "float32"


@contextlib.contextmanager
def training_precision(precision: str):
    """Models built inside compute in `precision` (resolved); the global policy is restored after,
    so a model built later (model.keras, exports) is float32 throughout."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[resolve_precision(precision)])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
