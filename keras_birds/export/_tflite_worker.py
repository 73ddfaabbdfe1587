"""Subprocess of export/tflite.py: rebuild the model on the TensorFlow backend and convert it.

    KERAS_BACKEND=tensorflow python -m keras_birds.export._tflite_worker JOB.json

JOB.json: {"model", "n_classes", "options" (build_classifier keywords), "weights" (a .keras or .weights.h5),
"quantize": [...], "calibration" (a .npy of uint8 images, for int8), "int8_float_convs" (int8 keeps the ops up to
this convolution float; 0: none), "out_dir", "die_with_parent", "progress" (a file where int8 calibration
counts the images fed so far, for the parent's progress bar)}.
Writes OUT_DIR/<quantize>.tflite (plain, no metadata) and OUT_DIR/worker.json with what it did.
With "die_with_parent", stdin must be a pipe held by the parent (export/tflite.py): EOF there
without a "done" first means the parent died, and the worker then ends itself and removes OUT_DIR.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path


def _die_with_parent(work_dir: str):
    """Fork a watcher that blocks on stdin until the parent writes "done" or dies (EOF).

    A process, not a thread: conversion holds the GIL in C++ for many seconds, and a killed parent
    runs no clean-up of its own. Forked before TensorFlow is imported, so it is small and safe.
    """
    worker = os.getpid()
    if os.fork() != 0:
        return
    try:
        said = b""
        while True:
            chunk = os.read(0, 64)
            if not chunk:
                break
            said += chunk
        if not said.startswith(b"done"):
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
            shutil.rmtree(work_dir, ignore_errors=True)
    finally:
        os._exit(0)


def _saved_model(model, image_size: int, folder: str):
    """Keras 3 model -> SavedModel with one fixed-shape `serve` endpoint (batch 1, raw pixels).

    TensorFlow's documented Keras 3 route (ExportArchive -> SavedModel -> from_saved_model).
    `from_concrete_functions` on a Keras 3 model wrote a 0.28 MB file that outputs NaN, and
    `from_keras_model` goes through the same traced function, so neither is used.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda pixels: model(pixels, training=False),
                         input_signature=[tf.TensorSpec((1, image_size, image_size, 3), tf.float32, name="pixels")])
    archive.write_out(folder, verbose=False)


CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _worst_convs(debugger, n: int) -> list:
    """The n convolutions whose int8 output has the largest error, as [{"op", "tensor", "rmse_over_scale"}]:
    root-mean-square error against the float op, in units of the int8 scale (LiteRT's selective
    quantisation measure), from the debugger's run on a few calibration images."""
    import csv
    import io

    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    convs = [{"op": row["op_name"], "tensor": row["tensor_name"],
              "rmse_over_scale": round(float(row["mean_squared_error"]) ** 0.5 / float(row["scale"]), 4)}
             for row in csv.DictReader(buf) if row["op_name"] in CONV_OPS and float(row["scale"]) > 0]
    return sorted(convs, key=lambda c: -c["rmse_over_scale"])[:n]


def _int8_float_convs(converter, float_convs: int, calibration) -> tuple:
    """(full-integer int8 except the `float_convs` convolutions of largest quantisation error, kept float32;
    those convolutions).

    Measured on birds-dev (issue 15): on Lite0 the stem and first depthwise convolution carry by far the
    largest error (rmse/scale 2.2-2.7, the rest <= 0.55); keeping the worst 6 float costs ~45 KB and no
    speed. The converter has no public option for this: calibrate through the QuantizationDebugger (its
    documented selective-quantisation route), rank its layer statistics, then quantise with the same call
    the converter makes, the chosen convolutions denylisted.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert as tf_convert

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([image[None].astype("float32")] for image in calibration[::10]))
    debugger.run()
    kept = _worst_convs(debugger, float_convs)
    # fully_quantize=False as TFLiteConverter calls it: only then does the quantiser write the uint8 I/O.
    return tf_convert.mlir_quantize(debugger.calibrated_model, input_data_type=tf.uint8, output_data_type=tf.uint8,
                                    denylisted_nodes=[c["tensor"] for c in kept]), kept


def _convert(saved_model_dir: str, quantize: str, calibration, float_convs: int = 0,
             counter: str | None = None) -> tuple:
    """(the .tflite bytes, the convolutions int8 keeps float)."""
    import numpy as np
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    # Builtin ops only: a file that needs the Flex (TF ops) delegate would not load in MediaPipe
    # or a plain LiteRT app, so an op without a builtin kernel must fail here, not on the phone.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        # Full-integer post-training quantisation; per-channel weights are the converter's default
        # for conv/dense kernels. uint8 in/out: the app hands over its RGB bytes as they are.
        def representative():
            for i, image in enumerate(calibration, 1):
                yield [image[None].astype(np.float32)]
                if counter:  # the parent polls it for its progress bar
                    Path(counter).write_text(str(i))

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        if float_convs > 0:
            return _int8_float_convs(converter, float_convs, calibration)
    return converter.convert(), []


def _say(msg: str):
    print(f"[tflite worker] {msg}", flush=True)


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    if job.get("die_with_parent"):
        _die_with_parent(job["out_dir"])
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"the TFLite worker needs KERAS_BACKEND=tensorflow, got {keras.backend.backend()}")
    import numpy as np

    from keras_birds.models.build import build_classifier

    out_dir = Path(job["out_dir"])
    started = time.time()
    _say(f"building {job['model']}")
    model = build_classifier(job["model"], job["n_classes"], "none", **job["options"])
    model.load_weights(job["weights"])
    calibration = np.load(job["calibration"]) if job.get("calibration") else None
    report = {"keras_backend": keras.backend.backend(), "files": {}}
    with tempfile.TemporaryDirectory(dir=out_dir) as saved:  # inside OUT_DIR: one folder to remove
        _saved_model(model, job["options"]["image_size"], saved)
        report["saved_model_seconds"] = round(time.time() - started, 1)
        for quantize in job["quantize"]:
            t0 = time.time()
            _say(f"converting ({quantize})")
            data, kept = _convert(saved, quantize, calibration, job.get("int8_float_convs", 0), job.get("progress"))
            path = out_dir / f"{quantize}.tflite"
            path.write_bytes(data)
            report["files"][quantize] = {"path": str(path), "bytes": len(data), "float_convs": kept,
                                         "convert_seconds": round(time.time() - t0, 1)}
    (out_dir / "worker.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
