"""Keras model -> .onnx with a fixed 1xSxSx3 raw-pixel input and labels inside.

Route: Keras' own `model.export(format="onnx")` on the torch backend, which runs torch.onnx's
dynamo exporter. Measured on random-init EfficientNet-B0: max abs difference 1.5e-4 to Keras,
top-1 100%. It needs `onnxscript` for a fixed input shape (otherwise the exporter silently falls
back), which is why the shape is checked after writing. On the jax and tensorflow backends Keras'
route needs jax2onnx / tf2onnx instead: the model is saved as .keras (which loads on any backend)
and converted by this module in a torch subprocess, so every backend writes the same graph.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.run_dir import atomic_write_bytes

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"


def _rename_output(graph, new: str):
    old = graph.output[0].name
    if old == new:
        return
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    for vi in graph.value_info:
        if vi.name == old:
            vi.name = new
    graph.output[0].name = new


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def export_onnx(model, path, *, image_size: int, class_names: list, metadata: dict) -> Path:
    """Write `model` (Keras, any backend) to `path`; labels and input description in metadata_props."""
    import keras
    import onnx

    path = Path(path)
    try:
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise UserError("ONNX export needs the `onnxscript` package (pip install onnxscript==0.7.2); "
                        "without it the exporter silently drops the fixed input shape") from e
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        if keras.backend.backend() == "torch":
            export_raw(model, raw, image_size)
        else:
            _export_raw_on_torch(model, raw, image_size)
        proto = onnx.load(str(raw))
    graph = proto.graph
    shape = _dims(graph.input[0])
    if shape != [1, image_size, image_size, 3]:
        raise UserError(f"ONNX export produced input shape {shape}, expected [1, {image_size}, {image_size}, 3]")
    _rename_output(graph, OUTPUT_NAME)
    props = {
        "labels": "".join(f"{n}\n" for n in class_names),
        "input": f"{INPUT_NAME}: float32 [1, {image_size}, {image_size}, 3], NHWC RGB, raw pixel values 0-255; "
                 f"no normalisation needed (preprocessing is inside the model)",
        "output": f"{OUTPUT_NAME}: float32 [1, {len(class_names)}], softmax probabilities in the order of `labels`",
        "input_mean": "0", "input_std": "1",
        **{k: str(v) for k, v in metadata.items()},
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (f"Bird species classifier ({len(class_names)} species). Input: {props['input']}. "
                        f"Output: {props['output']}.")
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def export_raw(model, raw: Path, image_size: int, batch: int = 1):
    """Keras' ONNX export (torch backend) of `model` to `raw`, its progress chatter silenced."""
    import keras

    spec = keras.InputSpec(shape=(batch, image_size, image_size, 3), dtype="float32", name=INPUT_NAME)
    # torch.onnx prints progress on stdout and warns about optional torchvision ops on its
    # logger; the command's own output should stay readable.
    torch_onnx_log = logging.getLogger("torch.onnx")
    level = torch_onnx_log.level
    torch_onnx_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(raw), format="onnx", input_signature=[spec], verbose=False)
    finally:
        torch_onnx_log.setLevel(level)


def _export_raw_on_torch(model, raw: Path, image_size: int):
    """export_raw in a KERAS_BACKEND=torch subprocess, from `model` saved as .keras beside `raw`."""
    keras_file = raw.with_suffix(".keras")
    model.save(keras_file)
    env = dict(os.environ, KERAS_BACKEND="torch", CUDA_VISIBLE_DEVICES="")  # a CPU conversion, as on torch
    proc = subprocess.run([sys.executable, "-m", "keras_birds.export.onnx", str(keras_file), str(raw), str(image_size)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not raw.is_file():
        said = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        raise UserError(f"ONNX export on the torch backend failed (exit {proc.returncode}): "
                        f"{said[-1][:300] if said else 'no output'}")


def io_details(path) -> dict:
    """Input/output names, shapes and dtypes of an .onnx, for export.json and tests."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)

    def one(vi):
        elem = vi.type.tensor_type.elem_type
        return {"name": vi.name, "shape": _dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(elem).name}

    return {"input": one(proto.graph.input[0]), "output": one(proto.graph.output[0]),
            "metadata_keys": sorted(p.key for p in proto.metadata_props)}


if __name__ == "__main__":  # the torch-side worker of _export_raw_on_torch: KERAS_FILE RAW_ONNX IMAGE_SIZE
    import keras

    export_raw(keras.saving.load_model(sys.argv[1], compile=False), Path(sys.argv[2]), int(sys.argv[3]))
