"""One interface for "probabilities for these images" from a Keras model, a .tflite or an .onnx file.

    runner = open_runner(path)        # a run directory (or its RunContext), a .keras, .tflite or .onnx file
    probs = runner.predict(images)    # (N, S, S, 3) uint8 or float32 RGB 0-255 -> (N, C) float32

Eval, predict, compare and the export parity gate use only this; nothing else needs to know the
file type. Every model takes raw pixels (preprocessing is inside it), so the runners only adapt
the container: batch size, input dtype/quantisation, layout. Class names: see labels.py.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_birds.cores import usable_cores
from keras_birds.errors import UserError, brief
from keras_birds.inference.context import RunContext
from keras_birds.inference.labels import enclosing_run, labels_beside, labels_of_file, onnx_labels, tflite_labels
from keras_birds.inference.latency import cpu_description, torch_device

KINDS = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}


class Runner:
    """probabilities = runner.predict(images); attributes describe the model for reports."""

    kind: str
    image_size: int | None
    class_names: list | None
    labels_from: str | None  # where the class names came from
    path: Path
    size_bytes: int
    params: int | None
    device: str
    run_dir: RunContext | None = None  # the run the model belongs to, if any
    n_classes: int | None = None
    output_step: float = 0.0  # quantisation step of the outputs (int8 files): each score is off by <= step/2

    def predict(self, images) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _as_pixels(images) -> np.ndarray:
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected images (N, S, S, 3), got shape {x.shape}")
        return x

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "image_size": self.image_size,
                "n_classes": self.n_classes, "params": self.params, "size_bytes": self.size_bytes,
                "size_mb": round(self.size_bytes / 1e6, 3), "device": self.device,
                "labels_from": self.labels_from, "run_dir": str(self.run_dir.path) if self.run_dir else None}


class KerasRunner(Runner):
    kind = "keras"

    def __init__(self, model, path: Path, class_names=None, labels_from=None, run_dir=None, chunk: int = 64):
        self.model, self.path, self.run_dir, self.chunk = model, Path(path), run_dir, chunk
        self.class_names, self.labels_from = class_names, labels_from
        shape = model.input_shape
        self.image_size = shape[1] if shape[1] is not None else None
        self.n_classes = model.output_shape[-1]
        self.params = int(model.count_params())
        self.size_bytes = self.path.stat().st_size
        import keras

        self.device = torch_device() if keras.backend.backend() == "torch" else cpu_description()
        self._frozen = None

    def frozen(self, batch: int = 32) -> "KerasRunner":
        """Answer through ONNX Runtime once it has matched Keras (inference.frozen): for the many passes of a
        model that does not change (a distillation's teacher); eval and the export gate keep Keras itself."""
        from keras_birds.inference.frozen import frozen_predictor

        self._frozen, self.chunk = frozen_predictor(self.model, batch), batch
        return self

    def predict(self, images) -> np.ndarray:
        x = self._as_pixels(images).astype("float32", copy=False)
        out = [self._forward(x[i:i + self.chunk]) for i in range(0, len(x), self.chunk)]
        if not out:
            return np.zeros((0, self.n_classes), "float32")
        return np.concatenate(out).astype("float32", copy=False)

    def _forward(self, x) -> np.ndarray:
        import keras

        if self._frozen is not None:
            return self._frozen(x)
        if keras.backend.backend() == "torch":
            import torch

            with torch.no_grad():  # a plain call records autograd graphs otherwise
                return keras.ops.convert_to_numpy(self.model(x, training=False))
        # jax/tensorflow: compiled once per batch shape (XLA, tf.function); an eager call dispatches op by op.
        return np.asarray(self.model.predict_on_batch(x))


def _load_keras(path: Path):
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a file that is there
        raise UserError(_damaged(path))
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:
        if "`Lambda` layer" in str(e) and "safe_mode" in str(e):  # Keras' own text is a paragraph
            raise UserError(f"{path} was refused as unsafe to load: it holds a Lambda layer whose Python code would "
                            f"run on load and could do anything on this machine; keras-birds models have no Lambda "
                            f"layer, so this file was not written by keras-birds (or was altered)") from e
        if isinstance(e, zipfile.BadZipFile):
            raise UserError(_damaged(path)) from e
        raise UserError(f"{path} is not a loadable Keras model ({brief(e, 200, with_type=True)})") from e


def _damaged(path: Path) -> str:
    """One line for a .keras that is no whole zip archive (a copy cut short, a disk that filled up)."""
    head = f"{path} is damaged or truncated (not a valid .keras zip archive)"
    run = enclosing_run(path)
    if run is not None and path == run.model_keras and run.best_weights.is_file():
        return (f"{head}: remove it and the run's best.weights.h5 (the same best epoch) is used instead, "
                f"e.g. `keras-birds eval {run.path}`; or retrain")
    return f"{head}: copy it again from where it came from, or use its run directory (best.weights.h5) or retrain"


def build_with_weights(recipe, n_classes: int, weights: Path):
    """The recipe's model on this process' backend, rebuilt and loaded with a weights file."""
    from keras_birds.models.build import build_classifier, classifier_options

    model = build_classifier(recipe.model, n_classes, "none", **classifier_options(recipe))
    try:
        model.load_weights(weights)
    except Exception as e:
        raise UserError(f"cannot load {weights} into {recipe.model} ({brief(e, 200, with_type=True)})") from e
    return model


def _keras_from_run(run: RunContext) -> KerasRunner:
    names, path = run.class_names(), run.model_file()
    if path == run.model_keras:
        model = _load_keras(path)
    else:  # a run still training (or killed): rebuild and load its best epoch
        model = build_with_weights(run.recipe(), len(names), path)
    return KerasRunner(model, path, names, str(run.classes_txt), run)


def _layout(shape) -> str:
    """NHWC (ours) unless the file clearly wants channels first."""
    if len(shape) == 4 and shape[-1] != 3 and shape[1] == 3:
        return "NCHW"
    return "NHWC"


def _spatial(shape, layout) -> int | None:
    side = shape[2] if layout == "NCHW" else shape[1]
    return side if isinstance(side, (int, np.integer)) and side > 0 else None


def _fixed_batch(dim) -> int | None:
    return int(dim) if isinstance(dim, (int, np.integer)) and dim > 0 else None


def _run_in_chunks(x, fixed_batch, run_fn):
    """run_fn on the whole batch, or on slices of `fixed_batch` (last one zero-padded)."""
    if fixed_batch is None:
        return run_fn(x)
    outs = []
    for i in range(0, len(x), fixed_batch):
        part = x[i:i + fixed_batch]
        n = len(part)
        if n < fixed_batch:
            part = np.concatenate([part, np.zeros((fixed_batch - n,) + part.shape[1:], part.dtype)])
        outs.append(run_fn(part)[:n])
    return np.concatenate(outs)


class OnnxRunner(Runner):
    kind = "onnx"

    def __init__(self, path: Path, run_dir=None, threads: int | None = None):
        import onnxruntime as ort

        self.path, self.run_dir = Path(path), run_dir
        self.size_bytes = self.path.stat().st_size
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or usable_cores()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:
            raise UserError(f"{self.path} is not a loadable ONNX model ({brief(e, 200, with_type=True)})") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.uint8 if "uint8" in inp.type else np.float32
        self.layout = _layout(inp.shape)
        self.image_size = _spatial(inp.shape, self.layout)
        self.fixed_batch = _fixed_batch(inp.shape[0])
        out_dim = self.session.get_outputs()[0].shape[-1]
        self.n_classes = int(out_dim) if isinstance(out_dim, int) else None
        used = self.session.get_providers()[0]
        self.device = f"{cpu_description()}, onnxruntime" if used == "CPUExecutionProvider" else f"onnxruntime {used}"
        self.params = self._count_params()
        names = onnx_labels(self.session.get_modelmeta().custom_metadata_map)
        self.class_names, self.labels_from = labels_of_file(self.path, names, run_dir)

    def _count_params(self) -> int | None:
        try:
            import onnx

            model = onnx.load(str(self.path), load_external_data=False)
            return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
        except Exception:
            return None

    def predict(self, images) -> np.ndarray:
        x = self._as_pixels(images)
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8) if self.input_dtype == np.uint8 else x.astype(np.float32, copy=False)
        if self.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        run = lambda part: self.session.run(None, {self.input_name: part})[0]  # noqa: E731
        if len(x) == 0:
            return np.zeros((0, self.n_classes or 0), "float32")
        return np.asarray(_run_in_chunks(x, self.fixed_batch, run), dtype=np.float32)


def _tflite_params(buf: bytes) -> int | None:
    """Parameters of a .tflite file: the elements of its constant tensors (weights, biases)."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        model = schema.Model.GetRootAs(buf, 0)
        graph, total = model.Subgraphs(0), 0
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            b = model.Buffers(tensor.Buffer())
            if b is not None and (b.DataLength() > 0 or b.Offset() > 1):  # a constant: weights, bias
                total += int(np.prod(tensor.ShapeAsNumpy())) if tensor.ShapeLength() else 1
        return total
    except Exception:
        return None


@contextlib.contextmanager
def _captured_stderr_fd():
    """LiteRT's C++ runtime writes INFO lines ("Created TensorFlow Lite XNNPACK delegate") straight to
    file descriptor 2; keep them out of the command's output. Yields a list that receives the text."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured = []
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode("utf-8", errors="replace"))


class TFLiteRunner(Runner):
    kind = "tflite"

    def __init__(self, path: Path, run_dir=None, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.run_dir = Path(path), run_dir
        buf = self.path.read_bytes()
        self.size_bytes = len(buf)
        self.threads = threads or usable_cores()
        captured = []
        try:
            with _captured_stderr_fd() as captured:
                self.interpreter = Interpreter(model_content=buf, num_threads=self.threads)
                self.interpreter.allocate_tensors()
        except Exception as e:
            said = [ln for ln in "".join(captured).splitlines() if ln.strip() and not ln.startswith("INFO")]
            detail = f"; LiteRT: {said[0][:160]}" if said else ""
            raise UserError(f"{self.path} is not a loadable TFLite model ({brief(e, 200, with_type=True)}{detail})") from e
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_dtype, self.output_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        self.input_quant, self.output_quant = inp.get("quantization", (0.0, 0)), out.get("quantization", (0.0, 0))
        if self.output_dtype.kind in "iu":
            self.output_step = float(self.output_quant[0] or 0.0)
        shape = [int(d) for d in inp["shape"]]
        signature = [int(d) for d in inp.get("shape_signature", inp["shape"])]
        self.layout = _layout(shape)
        self.image_size = _spatial(shape, self.layout)
        self.dynamic_batch = signature[0] == -1
        self.fixed_batch = None if self.dynamic_batch else shape[0]
        self._allocated_batch = shape[0]
        self.n_classes = int(out["shape"][-1])
        self.device = f"{cpu_description()}, LiteRT {self.threads} threads"
        self.params = _tflite_params(buf)
        self.class_names, self.labels_from = labels_of_file(self.path, tflite_labels(buf), run_dir)

    def _quantize(self, x):
        scale, zero = self.input_quant
        if self.input_dtype == np.float32:
            return x.astype(np.float32, copy=False)
        if self.input_dtype.kind in "iu":
            info = np.iinfo(self.input_dtype)
            q = x.astype(np.float32) / scale + zero if scale else x.astype(np.float32)
            return np.clip(np.rint(q), info.min, info.max).astype(self.input_dtype)
        return x.astype(self.input_dtype)

    def _dequantize(self, y):
        scale, zero = self.output_quant
        if self.output_dtype.kind in "iu":
            return ((y.astype(np.float32) - zero) * (scale or 1.0)).astype(np.float32)
        return y.astype(np.float32, copy=False)

    def _invoke(self, part):
        if self.dynamic_batch and len(part) != self._allocated_batch:
            shape = list(part.shape)
            with _captured_stderr_fd():
                self.interpreter.resize_tensor_input(self.input_index, shape)
                self.interpreter.allocate_tensors()
            self._allocated_batch = len(part)
        self.interpreter.set_tensor(self.input_index, part)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()

    def predict(self, images) -> np.ndarray:
        x = self._as_pixels(images)
        if len(x) == 0:
            return np.zeros((0, self.n_classes), "float32")
        x = self._quantize(x)
        if self.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self._dequantize(_run_in_chunks(x, self.fixed_batch, self._invoke))


def open_runner(path, threads: int | None = None) -> Runner:
    """A run directory (model.keras, else best.weights.h5) or its RunContext, a .keras, .tflite or .onnx file;
    `threads`: the runtime threads of a .tflite or .onnx (default: every usable core)."""
    if isinstance(path, RunContext):  # a run already opened: its recipe and classes are not read again
        return _keras_from_run(path)
    path = Path(path)
    if not path.exists():
        raise UserError(f"model {path} does not exist (expected a run directory, .keras, .tflite or .onnx file)")
    if path.is_dir():
        run = RunContext(path)
        if not run.is_run():
            raise UserError(f"{path} is a folder but not a keras-birds run directory (no recipe.json); "
                            f"pass a run directory, .keras, .tflite or .onnx file")
        return _keras_from_run(run)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{path}: unknown model file type '{path.suffix}' (expected .keras, .tflite or .onnx, "
                        f"or a run directory)")
    run = enclosing_run(path)
    if kind == "keras":
        if run is not None and path.parent == run.path:
            names, source = run.class_names(), str(run.classes_txt)
        else:
            names, source = labels_beside(path, run)
        return KerasRunner(_load_keras(path), path, names, source, run)
    if kind == "onnx":
        return OnnxRunner(path, run, threads)
    return TFLiteRunner(path, run, threads)
