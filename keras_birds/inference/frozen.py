"""Frozen forward passes at the speed of the fastest runner: a Keras model's outputs through ONNX Runtime.

The probe's features, add-species, calibrate-unknown and a distillation's teacher views all push
thousands of images through a network that does not change. Keras on torch calls each layer from Python;
ONNX Runtime runs the same graph fused, several times faster on a CPU (tools/bench_frozen.py). So
`frozen_predictor(model)` answers through Keras for the first SWITCH_AFTER images (the export costs ~14 s,
more than a short job's whole pass), then exports the model once (Keras' own ONNX route, torch backend)
with a fixed batch, checks on that batch that it gives Keras' outputs (max abs difference <= TOLERANCE)
and from then on answers through ONNX Runtime; where it cannot (another backend, a GPU, a failed export
or check) it stays plain predict_on_batch. KERAS_BIRDS_FROZEN=keras turns it off, =onnx switches at the
first batch.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_birds.cores import usable_cores

TOLERANCE = 1e-4
ENV = "KERAS_BIRDS_FROZEN"
SWITCH_AFTER = 512  # images: ~20 s of Lite0 at 224 px through Keras on 2 cores, the export's cost


def onnx_features(model, image_size: int, batch: int, folder: Path):
    """ONNX Runtime session of `model` (a Keras model on torch) for batches of `batch`; a callable that
    pads a shorter batch and returns float32 numpy."""
    import onnxruntime as ort

    from keras_birds.export.onnx import export_raw

    path = Path(folder) / "frozen.onnx"
    export_raw(model, path, image_size, batch=batch)
    options = ort.SessionOptions()
    options.intra_op_num_threads = usable_cores()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        n = len(x)
        if n == batch:
            return session.run(None, {name: x})[0]
        # A fixed-shape graph: a shorter (last) batch is padded with its own rows, a longer one split.
        rows = np.resize(np.arange(n), ((n + batch - 1) // batch) * batch)
        return np.concatenate([session.run(None, {name: x[rows[i:i + batch]]})[0]
                               for i in range(0, len(rows), batch)])[:n]

    return run


def _on_cpu_torch() -> bool:
    import keras

    if keras.backend.backend() != "torch" or os.environ.get(ENV, "").lower() == "keras":
        return False
    import torch

    return not torch.cuda.is_available()  # on a GPU, torch itself is the fast runner


class FrozenPredictor:
    """predict_on_batch of a frozen Keras model, through ONNX Runtime once it has matched Keras.

    `.runner` says which one answers ("keras" until the first batch, then "onnxruntime" or "keras"),
    `.difference` the largest difference seen on that first batch."""

    def __init__(self, model, batch: int = 32, fallback=None):
        self.model, self.batch = model, batch
        self.runner, self.difference, self._fast = "keras", None, None
        self._keras = fallback or model.predict_on_batch  # e.g. distributed.batch_predictor under a JAX mesh
        self._checked = not _on_cpu_torch()
        self._seen = SWITCH_AFTER if os.environ.get(ENV, "").lower() == "onnx" else 0

    def __call__(self, x) -> np.ndarray:
        if self._fast is not None:
            return self._fast(x)
        if not self._checked and self._seen >= SWITCH_AFTER:
            self._checked = True
            return self._first(x)
        self._seen += len(x)
        return np.asarray(self._keras(x))

    def _first(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        expected = np.asarray(self._keras(x))
        folder = tempfile.mkdtemp(prefix="keras-birds-frozen-")
        try:
            fast = onnx_features(self.model, int(self.model.input_shape[1]), self.batch, Path(folder))
            self.difference = float(np.abs(fast(x) - expected).max())
        except Exception:  # noqa: BLE001 - any exporter or runtime failure: Keras stays the runner
            return expected
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the session holds the graph in memory
        if self.difference <= TOLERANCE:
            self._fast, self.runner = fast, "onnxruntime"
        return expected


def frozen_predictor(model, batch: int = 32, fallback=None):
    """A callable x -> outputs of `model`, frozen: see FrozenPredictor."""
    return FrozenPredictor(model, batch, fallback)
