"""Run directory -> .tflite files (fp32, fp16, dynamic-range, full-integer int8) with metadata.

Route (chosen on measurements, issue 5): rebuild the same model on the TensorFlow backend in a
subprocess (Keras picks its backend once per process; ours is torch), load the run's weights, and
convert SavedModel -> TFLiteConverter. Random-init EfficientNet-B0: fp32 17.8 MB, max abs diff
3.1e-4; fp16 9.0 MB; int8 5.28 MB with uint8 I/O, 4.2 ms per invoke. TensorFlow is already
installed (KerasHub needs it). The torch-side `litert-torch` route also works but adds ~870 MB,
silently ignores `optimizations=` and failed on a second export in one process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import SplitIndex
from keras_birds.errors import UserError
from keras_birds.export import metadata as md
from keras_birds.run_dir import atomic_write_bytes

QUANTIZE = ("none", "fp16", "dynamic", "int8")
# Every op int8 by default: keeping the stem float (2) cut the probability error to Keras by 5-9% on
# birds-dev train+valid views but flipped more top-1 answers there (13 vs 7 of 3,000; issue 15).
DEFAULT_INT8_FLOAT_CONVS = 0
FILE_NAMES = {"none": "model_fp32.tflite", "fp16": "model_fp16.tflite",
              "dynamic": "model_dynamic.tflite", "int8": "model_int8.tflite"}


def stratified_sample(index: SplitIndex, n: int, seed: int = 0) -> SplitIndex:
    """Up to n images taking one species after another (round robin), so every species is in it."""
    rng = np.random.default_rng(seed)
    per_class = [list(rng.permutation(np.flatnonzero(index.labels == c))) for c in range(len(index.class_names))]
    chosen = []
    while len(chosen) < n and any(per_class):
        for positions in per_class:
            if positions and len(chosen) < n:
                chosen.append(positions.pop())
    chosen = sorted(chosen)
    return SplitIndex(index.split, index.class_names, [index.paths[i] for i in chosen], index.labels[chosen])


def calibration_images(index: SplitIndex, image_size: int, n: int, seed: int = 0):
    """Real training images for int8 calibration: (uint8 (N,S,S,3), {"images", "species"})."""
    sample = stratified_sample(index, n, seed)
    loader = BatchLoader(sample, image_size, 64, workers=1)
    images, labels = zip(*(loader.load_batch(i) for i in range(len(loader))))
    images, labels = np.concatenate(images), np.concatenate(labels)
    return images, {"images": int(len(images)), "species": int(len(np.unique(labels))),
                    "of_species": len(index.class_names), "split": index.split}


def _wait(proc, counter: Path, total: int, progress: bool) -> int:
    """The worker's exit code; meanwhile a bar over the calibration images it has fed the converter, as it
    counts them in `counter` (calibration runs the model once per image, up to 300 of them)."""
    from tqdm.auto import tqdm

    shown = progress and total > 0
    with tqdm(total=total, desc="int8 calibration", unit="img", file=sys.stderr, disable=not shown) as bar:
        while True:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                code = None
            try:
                done = min(int(counter.read_text() or 0), total)
            except (OSError, ValueError):  # not written yet, or caught mid-write
                done = bar.n
            bar.update(max(0, done - bar.n))
            if code is not None:
                return code


def _run_worker(job: dict, work: Path, keep_log: Path, progress: bool = False) -> dict:
    """Run the TensorFlow worker on `job`; its life is tied to ours (see _tflite_worker.main).

    The worker's stdin is a pipe whose only write end we hold: it reads EOF when this process ends
    in any way, SIGKILL included, and then kills itself and removes `work`. Any exit path that runs
    Python here kills the worker and writes "done" first, so the worker's watcher stands down and
    the TemporaryDirectory around `work` cleans up.
    """
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               # Conversion runs on the CPU; keep TensorFlow off a GPU the parent's torch may be using.
               CUDA_VISIBLE_DEVICES="")
    log = work / "worker.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "keras_birds.export._tflite_worker", str(job_path)],
                                env=env, stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT)
        try:
            returncode = _wait(proc, Path(job["progress"]), job["calibration_images"], progress)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            try:
                proc.stdin.write(b"done")
                proc.stdin.close()
            except OSError:  # the watcher is gone already
                pass
    if returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        keep_log.write_text(log.read_text(errors="replace"))
        raise UserError(f"TFLite conversion failed (exit {returncode}): {last.strip()[:300]}; full log: {keep_log}")
    return json.loads((work / "worker.json").read_text())


def export_tflite(*, model_name: str, weights: Path, n_classes: int, options: dict, class_names: list,
                  quantize: list, out_dir: Path, calibration: np.ndarray | None, description: dict,
                  keep_log: Path | None = None, int8_float_convs: int = DEFAULT_INT8_FLOAT_CONVS,
                  details: dict | None = None, progress: bool = False) -> dict:
    """Convert once per quantisation, add metadata + labels; returns {quantize: Path}.

    `int8_float_convs`: int8 keeps this many convolutions, those of largest quantisation error, in float32
    (0: every op int8); see _tflite_worker._int8_float_convs. `details`, if given, gets the worker's record of
    each file ({quantize: {"bytes", "float_convs", "convert_seconds"}}).

    `options`: the build_classifier keywords of the model (models.build.classifier_options), which the
    TensorFlow worker rebuilds it with. `keep_log`: where the worker's log goes if it fails
    (default OUT_DIR/tflite_convert.log). `progress`: a bar on stderr over the int8 calibration images.
    """
    unknown = [q for q in quantize if q not in QUANTIZE]
    if unknown:
        raise UserError(f"unknown --quantize {', '.join(unknown)} (choose from {', '.join(QUANTIZE)})")
    if "int8" in quantize and (calibration is None or len(calibration) == 0):
        raise UserError("int8 needs calibration images from the run's training split")
    out_dir = Path(out_dir)
    labels = "".join(f"{n}\n" for n in class_names).encode("utf-8")
    meta = md.build_metadata(image_size=options["image_size"], n_classes=n_classes, **description)
    written = {}
    with tempfile.TemporaryDirectory(prefix="keras_birds_tflite_") as tmp:
        work = Path(tmp)
        job = {"model": model_name, "n_classes": n_classes, "options": dict(options),
               "weights": str(Path(weights).resolve()), "quantize": list(quantize), "out_dir": str(work),
               "calibration": None, "die_with_parent": True, "int8_float_convs": int(int8_float_convs),
               "progress": str(work / "calibrated"), "calibration_images": 0}
        if "int8" in quantize:
            np.save(work / "calibration.npy", calibration)
            job["calibration"], job["calibration_images"] = str(work / "calibration.npy"), len(calibration)
        report = _run_worker(job, work, Path(keep_log) if keep_log else out_dir / "tflite_convert.log", progress)
        if details is not None:
            details.update({q: {k: v for k, v in f.items() if k != "path"} for q, f in report["files"].items()})
        for q in quantize:
            plain = Path(report["files"][q]["path"]).read_bytes()
            path = out_dir / FILE_NAMES[q]
            atomic_write_bytes(path, md.populate(plain, meta, {md.LABELS_FILE: labels}))
            written[q] = path
    return written


def io_details(path) -> dict:
    """Input/output shape, dtype and quantisation of a .tflite (no inference), for export.json and tests."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))

    def one(d):
        scale, zero = d.get("quantization", (0.0, 0))
        out = {"name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
        if scale:
            out["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return out

    return {"input": one(interpreter.get_input_details()[0]), "output": one(interpreter.get_output_details()[0])}


def per_channel_weights(path) -> bool:
    """True if some convolution kernel of the file carries one quantisation scale per output channel."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        q = tensor.Quantization()
        if tensor.Type() == schema.TensorType.INT8 and q is not None and q.ScaleLength() > 1:
            return True
    return False


def operators(model: bytes) -> list:
    """(op type, [(output tensor name, float32?)...]) of each op of a .tflite's main graph, in graph order."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    m = schema.Model.GetRootAs(model, 0)
    graph = m.Subgraphs(0)
    codes = [max(m.OperatorCodes(i).BuiltinCode(), m.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(m.OperatorCodesLength())]
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        outputs = [graph.Tensors(op.Outputs(j)) for j in range(op.OutputsLength())]
        ops.append((names.get(codes[op.OpcodeIndex()], "?"),
                    [(t.Name().decode(), t.Type() == schema.TensorType.FLOAT32) for t in outputs]))
    return ops


def float_ops(path) -> list:
    """Op types of a .tflite that compute in float32 (not counting (de)quantise), in graph order."""
    return [kind for kind, outputs in operators(Path(path).read_bytes())
            if kind not in ("QUANTIZE", "DEQUANTIZE") and outputs and outputs[0][1]]
