"""export(run_dir) -> OUT/{model.onnx, model_<q>.tflite, labels.txt, export.json}, verified.

One file an app engineer drops into a phone app: fixed 1xSxSx3 input of raw RGB pixels (uint8 for
int8), preprocessing inside, softmax probabilities out, class names inside the file and beside it.
Each file then passes the parity gate (verify.py) on the run's validation split, or is named
`*.unverified.*` and the export fails. export.json records sizes, sha256, gate figures and batch-1
latency of each file next to the Keras model's, measured in this process on this machine.

Files are converted, verified and timed in OUT/.pending-<pid>/ and get their final names only after
their own verdict; export.json is written last. A failed or killed export never leaves a new file
under a verified name, nor an export.json that describes other files than those beside it.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_birds import __version__
from keras_birds.console import log as _log
from keras_birds.errors import UserError
from keras_birds.inference.context import RunContext
from keras_birds.inference.runners import build_with_weights, open_runner
from keras_birds.export.metadata import add_packed_file
from keras_birds.openset.rule import ONNX_KEY, UNKNOWN_JSON, run_rule_text
from keras_birds.run_dir import atomic_write_bytes, atomic_write_json, atomic_write_text, file_sha256, remove_abandoned

DEFAULT_CALIBRATION_IMAGES = 300
DEFAULT_LATENCY_RUNS = 50
PENDING_PREFIX = ".pending-"  # + the exporting process' id


@dataclass
class ExportResult:
    out_dir: Path
    report: dict

    @property
    def passed(self) -> bool:
        return self.report["passed"] is not False


@dataclass
class _Inputs:
    """The images an export reads, all loaded before any conversion."""

    data: str
    valid: object | None  # SplitIndex the gate runs on; None: --no-verify
    calibration_images: np.ndarray | None  # int8 only
    calibration: dict | None


def export(run_path, *, onnx: bool = True, tflite: bool = True, quantize=("none",), out=None,
           calibration_images: int = DEFAULT_CALIBRATION_IMAGES, verify: bool = True, data: str | None = None,
           exclude: str | None = None, latency_runs: int = DEFAULT_LATENCY_RUNS, log=_log,
           int8_float_convs: int | None = None, progress: bool = True) -> ExportResult:
    """Convert, verify and time every file in a pending folder, then commit: each file gets its
    final (or `*.unverified.*`) name only after its own verdict, and export.json is written last.

    Everything that can fail on the user's input (the run, its data, the calibration images) is
    checked before any conversion, and a failure or a kill at any point leaves the files and
    export.json of an earlier export as they were. data/exclude: as RunContext.split_index. progress: a bar
    on stderr over the images int8 calibration feeds the converter.
    """
    quantize = _checked_quantize(onnx, tflite, quantize, calibration_images)
    if int8_float_convs is not None and int8_float_convs < 0:
        raise UserError(f"--int8-float-convs must be >= 0 (0: every op int8), got {int8_float_convs}")
    run = _open_run(run_path)
    int8_float_convs = run.recipe().int8_float_convs if int8_float_convs is None else int(int8_float_convs)
    inputs = _load_inputs(run, data or None, exclude, verify, quantize, calibration_images, log)
    out_dir = Path(out) if out else run.path / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = _pending_dir(out_dir)
    try:
        started = time.time()
        converted = {}
        files = _convert(run, pending, onnx, quantize, inputs.calibration_images, out_dir / "tflite_convert.log", log,
                         int8_float_convs, converted, progress)
        inputs.calibration_images = None  # up to 300 decoded images: not needed from here on
        report = _verify_measure_report(run, files, inputs.valid, latency_runs, log)
        report.update(data=inputs.data, calibration=inputs.calibration, seconds=round(time.time() - started, 1))
        if "int8" in converted:  # the convolutions int8 kept float, with their error (rmse/scale)
            report["int8_float_convs"] = converted["int8"]["float_convs"]
        _commit(report, files, out_dir, run.class_names())
    finally:
        shutil.rmtree(pending, ignore_errors=True)
    return ExportResult(out_dir, report)


def _checked_quantize(onnx: bool, tflite: bool, quantize, calibration_images: int) -> list:
    from keras_birds.export import tflite as tflite_export

    if not (onnx or tflite):
        raise UserError("nothing to export: pass --tflite and/or --onnx")
    quantize = list(dict.fromkeys(quantize)) if tflite else []
    unknown = [q for q in quantize if q not in tflite_export.QUANTIZE]
    if unknown:
        raise UserError(f"unknown --quantize {', '.join(unknown)} (choose from {', '.join(tflite_export.QUANTIZE)})")
    if tflite and not quantize:
        raise UserError("--tflite needs at least one --quantize (none, fp16, dynamic, int8)")
    if "int8" in quantize and calibration_images < 1:
        raise UserError("--calibration-images must be >= 1 for int8")
    return quantize


def _open_run(path) -> RunContext:
    """The run, opened once for the whole export; a broken one fails here, before any data is read."""
    run = RunContext.existing(path, "pass the --out folder of a `keras-birds train` run")
    run.recipe()
    run.model_file()
    run.class_names()
    return run


def _load_inputs(run: RunContext, data, exclude, verify: bool, quantize: list, n_calibration: int, log) -> _Inputs:
    """The validation split (the gate) and int8 calibration images: a moved data set fails here,
    before minutes of conversion, not after."""
    from keras_birds.export import tflite as tflite_export

    inputs = _Inputs(data or run.recipe().data, None, None, None)
    if verify:
        valid = _split(run, "valid", data, exclude)
        if len(valid.index) == 0:
            raise UserError(f"the valid split of {valid.data} has no images to verify the export on "
                            f"(or pass --no-verify)")
        inputs.valid = valid.index
    if "int8" in quantize:
        train = _split(run, "train", data, exclude)
        inputs.calibration_images, inputs.calibration = tflite_export.calibration_images(
            train.index, run.recipe().image_size, n_calibration)
        log(f"int8 calibration on {inputs.calibration['images']} training images of "
            f"{inputs.calibration['species']} species")
    return inputs


def _split(run: RunContext, split: str, data, exclude):
    """One split of the run's data; its labels must be the run's classes, as the gate compares them."""
    chosen = run.split_index(split, data, exclude)
    if chosen.index.class_names != run.class_names():
        raise UserError(f"the {split} split of {chosen.data} has other species than {run.classes_txt} "
                        f"({len(chosen.index.class_names)} vs {len(run.class_names())}): pass --data with the "
                        f"data set this run was trained on")
    return chosen


def _load_torch_model(recipe, n_classes: int, weights: Path):
    """The run's model on this process' backend (torch), rebuilt and loaded with its best weights."""
    return build_with_weights(recipe, n_classes, weights)


def _batches(index, image_size: int, batch_size: int = 32):
    from keras_birds.data.loader import BatchLoader

    loader = BatchLoader(index, image_size, batch_size, workers=1)
    for i in range(len(loader)):
        yield loader.load_batch(i)


def _pending_dir(out_dir: Path) -> Path:
    """A hidden folder of this process inside `out_dir` where files wait for their verdict.

    Pending folders of dead processes (a killed export) are removed first: their files were never
    verified, and nothing outside this workflow looks inside a hidden folder.
    """
    remove_abandoned(out_dir, PENDING_PREFIX)
    pending = out_dir / f"{PENDING_PREFIX}{os.getpid()}"
    shutil.rmtree(pending, ignore_errors=True)
    pending.mkdir(parents=True)
    return pending


# -- convert -------------------------------------------------------------------------------------
def _convert(run: RunContext, pending: Path, onnx: bool, quantize: list, cal_images, failure_log: Path,
             log, int8_float_convs: int, converted: dict, progress: bool = True) -> dict:
    """{label: (path in `pending`, quantize)} of the converted files."""
    from keras_birds.export import onnx as onnx_export
    from keras_birds.export import tflite as tflite_export
    from keras_birds.models.build import classifier_options

    recipe, classes, weights = run.recipe(), run.class_names(), run.model_file()
    unknown = run_rule_text(run.path)  # calibrate-unknown's rule travels next to the labels
    files = {}
    if onnx:
        log(f"exporting ONNX from {weights} ...")
        model = _load_torch_model(recipe, len(classes), weights)
        path = onnx_export.export_onnx(model, pending / "model.onnx", image_size=recipe.image_size,
                                       class_names=classes,
                                       metadata={"model": recipe.model, "run": run.path.name,
                                                 "keras_birds_version": __version__,
                                                 **({ONNX_KEY: unknown} if unknown else {})})
        files["onnx"] = (path, "none")
        del model
    if quantize:
        log(f"converting to TFLite ({', '.join(quantize)}) on the TensorFlow backend ...")
        description = {"name": f"keras-birds {recipe.model}",
                       "description": f"Bird species classifier, {len(classes)} species, from run {run.path.name}. "
                                      f"Input: raw RGB pixels 0-255; output: softmax probabilities.",
                       "version": f"keras-birds {__version__}", "author": "keras-birds"}
        written = tflite_export.export_tflite(
            model_name=recipe.model, weights=weights, n_classes=len(classes), options=classifier_options(recipe),
            class_names=classes, quantize=quantize, out_dir=pending, calibration=cal_images,
            description=description, keep_log=failure_log, int8_float_convs=int8_float_convs, details=converted,
            progress=progress)
        files.update({f"tflite_{q}": (p, q) for q, p in written.items()})
        for path in written.values() if unknown else ():
            atomic_write_bytes(path, add_packed_file(path.read_bytes(), UNKNOWN_JSON, unknown.encode("utf-8")))
    return files


# -- verify, measure, report ---------------------------------------------------------------------
def _verify_measure_report(run: RunContext, files: dict, valid, latency_runs: int, log) -> dict:
    """The gate on `valid` (None: not verified), batch-1 latency of each file beside Keras', the report."""
    from keras_birds.export import onnx as onnx_export
    from keras_birds.export import tflite as tflite_export

    io_info = {label: (onnx_export if label == "onnx" else tflite_export).io_details(path)
               for label, (path, _) in files.items()}
    keras_runner = open_runner(run)  # the run as opened above: recipe and classes are not read again
    size = run.recipe().image_size
    results = _verify(keras_runner, files, valid, size, run.class_names(), io_info, log)
    if valid is not None:
        latency_images = next(_batches(valid, size, 8))[0]
    else:  # latency does not depend on the content; --no-verify loads no data
        latency_images = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    keras_timing, timings = _measure(keras_runner, files, latency_images, latency_runs)
    return _report(run, files, io_info, results, keras_runner, keras_timing, timings, valid)


def _verify(keras_runner, files: dict, valid, size: int, classes: list, io_info: dict, log) -> dict:
    """{label: GateResult} of the parity gate on `valid`; {} when not verifying."""
    from keras_birds.export import verify as gate

    if valid is None:
        return {}
    log(f"verifying on {len(valid)} validation images ...")
    results = gate.run_gate(keras_runner, files, _batches(valid, size), classes)
    for label, (_, q) in files.items():
        if q == "int8":
            gate.check_raw_pixel_input(results[label], io_info[label])
    return results


def _latency(runner, images, runs: int) -> dict:
    from keras_birds.inference.latency import measure_latency

    timing = measure_latency(runner.predict, images, runs=runs, warmup=min(5, runs), batch_size=1,
                             throughput_seconds=0)
    return {k: timing[k] for k in ("latency_ms_b1_median", "latency_ms_b1_p90", "latency_ms_b1_runs")}


def _measure(keras_runner, files: dict, images, runs: int) -> tuple:
    """(Keras' batch-1 latency, {label: the file's latency and device}), measured in this process; ({}, {})
    when runs is 0."""
    if runs <= 0:
        return {}, {}
    from keras_birds.inference.latency import interleaved_latency
    from keras_birds.inference.runners import TFLiteRunner

    keras_timing, timings = _latency(keras_runner, images, runs), {}
    for label, (path, _) in files.items():
        runner = open_runner(path)
        timings[label] = {**_latency(runner, images, runs), "device": runner.device}
        del runner  # one runtime at a time
    # One thread, as many phone apps run; the .tflite files in turns, so their ratios are fair.
    single = {label: TFLiteRunner(path, threads=1).predict for label, (path, _) in files.items() if label != "onnx"}
    for label, ms in interleaved_latency(single, images, runs=runs).items():
        timings[label]["latency_ms_b1_1thread_median"] = ms
    return keras_timing, timings


def _report(run: RunContext, files: dict, io_info: dict, results: dict, keras_runner, keras_timing: dict,
            timings: dict, valid) -> dict:
    from keras_birds.export import verify as gate

    recipe, classes = run.recipe(), run.class_names()
    keras_info = {"path": str(keras_runner.path), "size_bytes": keras_runner.size_bytes,
                  "size_mb": round(keras_runner.size_bytes / 1e6, 3), "params": keras_runner.params,
                  "device": keras_runner.device, **keras_timing}
    entries = [_file_entry(label, path, q, io_info[label], results.get(label), timings.get(label), keras_info)
               for label, (path, q) in files.items()]
    return {
        "run": str(run.path.resolve()), "model": recipe.model, "image_size": recipe.image_size,
        "n_classes": len(classes), "labels": "labels.txt", "keras_birds_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "validation_images": None if valid is None else len(valid),
        "gate": {"float": gate.criterion_for("none"), "quantised": gate.criterion_for("int8"),
                 "split": "valid" if valid is not None else None},
        "passed": None if valid is None else all(r.passed for r in results.values()),
        "keras": keras_info, "files": entries,
    }


def _file_entry(label: str, path, q: str, io: dict, result, timing: dict | None, keras_info: dict) -> dict:
    """export.json's record of one file: I/O, labels inside, latency, size, sha256 and its verdict."""
    from keras_birds.export import tflite as tflite_export
    from keras_birds.export.metadata import read_metadata

    entry = {"file": Path(path).name, "format": "onnx" if label == "onnx" else "tflite",
             "quantize": "none" if label == "onnx" else q, **io}
    if entry["format"] == "tflite":
        meta = read_metadata(Path(path).read_bytes())
        entry["labels_inside"] = "labels.txt (TFLite metadata associated file)" if meta and \
            "labels.txt" in meta["packed_files"] else None
        entry["normalization"] = (meta["inputs"][0].get("normalization") if meta else None)
        if q == "int8":
            entry["per_channel_weights"] = tflite_export.per_channel_weights(path)
            entry["float_ops"] = tflite_export.float_ops(path)
    else:
        entry["labels_inside"] = "metadata_props['labels']"
    if timing:
        entry.update(timing)
        if keras_info.get("latency_ms_b1_median") and entry["latency_ms_b1_median"]:
            entry["speedup_vs_keras"] = round(keras_info["latency_ms_b1_median"] / entry["latency_ms_b1_median"], 2)
    size_bytes = Path(path).stat().st_size
    entry.update(size_bytes=size_bytes, size_mb=round(size_bytes / 1e6, 3),
                 size_vs_keras=round(size_bytes / keras_info["size_bytes"], 3), sha256=file_sha256(path),
                 verified=result.passed if result else None, gate=result.as_dict() if result else None)
    return entry


def _commit(report: dict, files: dict, out_dir: Path, classes: list):
    """Move each file from the pending folder to its final name, then write export.json, last.

    The old export.json goes first: a kill between the moves and the new export.json leaves files
    without a report (each plain name still a verified file), never a report describing other files.
    """
    from keras_birds.export import verify as gate

    (out_dir / "export.json").unlink(missing_ok=True)
    atomic_write_text(out_dir / "labels.txt", "".join(f"{n}\n" for n in classes))
    for entry, (path, _) in zip(report["files"], files.values()):
        final = gate.settle_name(out_dir / Path(path).name, entry["verified"], source=path)
        entry["file"] = final.name
    atomic_write_json(out_dir / "export.json", report)


def format_summary(result: ExportResult) -> str:
    """The table the command prints: one line per file, then the verdict."""
    r = result.report
    k = r["keras"]
    lines = [f"{'file':34s} {'MB':>7s} {'agree%':>7s} {'top1%':>6s} {'drop':>6s} {'bound':>6s} {'lost/won':>8s} "
             f"{'ms/img':>7s}  gate",
             f"{'keras (' + Path(k['path']).name + ')':34s} {k['size_mb']:7.2f} {'':>7s} "
             f"{_pct(_keras_top1(r)):>6s} {'':>6s} {'':>6s} {'':>8s} {_ms(k.get('latency_ms_b1_median')):>7s}"]
    for f in r["files"]:
        g = f["gate"] or {}
        verdict = {True: "PASS", False: "FAIL", None: "not verified"}[f["verified"]]
        flips = f"{g['lost']}/{g['gained']}" if g.get("lost") is not None else ""
        lines.append(f"{f['file']:34s} {f['size_mb']:7.2f} {_pct(g.get('top1_agreement')):>7s} "
                     f"{_pct(g.get('top1')):>6s} {_num(g.get('top1_drop_points')):>6s} "
                     f"{_num(g.get('drop_bound_points')):>6s} {flips:>8s} "
                     f"{_ms(f.get('latency_ms_b1_median')):>7s}  {verdict}")
    lines.append("drop, bound: top-1 points lost vs Keras and its one-sided 95% lower bound; lost/won: images "
                 "the file gets wrong/right where Keras does not (gate rule: docs/commands/export.md, export/verify.py)")
    lines += _int8_speedup(r["files"])
    for f in r["files"]:
        if f["verified"] is False:
            lines.append(f"  {f['file']}: " + "; ".join(f["gate"]["problems"]))
    lines.append(f"wrote {result.out_dir / 'export.json'}")
    return "\n".join(lines)


def _int8_speedup(files: list) -> list:
    """One line: how much faster the int8 file runs than the fp32 one, with all threads and with one."""
    by_q = {f["quantize"]: f for f in files if f["format"] == "tflite"}
    fp32, int8 = by_q.get("none"), by_q.get("int8")
    if not (fp32 and int8 and fp32.get("latency_ms_b1_median") and int8.get("latency_ms_b1_median")):
        return []
    ratio = [fp32[k] / int8[k] for k in ("latency_ms_b1_median", "latency_ms_b1_1thread_median")]
    threads = int8.get("device", "").rsplit("LiteRT ", 1)[-1]
    return [f"int8 vs fp32 .tflite at batch 1: {ratio[0]:.2f}x faster ({threads}), {ratio[1]:.2f}x (1 thread)"]


def _keras_top1(report):
    return next((f["gate"]["keras_top1"] for f in report["files"] if f["gate"] and f["gate"]["keras_top1"] is not None),
                None)


def _pct(v):
    return "" if v is None else f"{100 * v:.1f}"


def _num(v):
    return "" if v is None else f"{v:+.1f}"


def _ms(v):
    return "" if v is None else f"{v:.1f}"
