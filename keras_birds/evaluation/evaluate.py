"""evaluate(model, split) -> the study's figures for a run directory or an exported file, alike.

A Keras run and the .tflite/.onnx exported from it go through the same runner interface, the
same decoded images and the same metric code, so their numbers compare directly.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from keras_birds.console import log as _log
from keras_birds.data.corruptions import parse_names, parse_severities
from keras_birds.data.loader import BatchLoader
from keras_birds.errors import UserError
from keras_birds.evaluation import metrics
from keras_birds.evaluation.report import write_report
from keras_birds.evaluation.robustness import evaluate_corruptions
from keras_birds.inference.context import DataSplit, load_split
from keras_birds.inference.latency import measure_latency
from keras_birds.inference.model import OpenedModel, in_run, open_model
from keras_birds.inference.runners import Runner
from keras_birds.openset.calibrate import open_set_figures
from keras_birds.openset.unknown_images import unknown_index

SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}


def _match_classes(runner: Runner, index) -> tuple[list, np.ndarray, list]:
    """Model class names, data class index -> model class index, and the model classes with no
    folder in the data (allowed: e.g. birds-mini is a subset of the 525 species). Data classes the
    model does not know are an error naming them."""
    data_names = list(index.class_names)
    names = runner.class_names
    if names is None:
        if runner.n_classes is not None and runner.n_classes != len(data_names):
            raise UserError(
                f"{runner.path} has {runner.n_classes} outputs but the data has {len(data_names)} species and the model "
                f"carries no class names; put a labels.txt (one class per line) beside it")
        _log(f"warning: {runner.path} carries no class names: assuming the data's {len(data_names)} species, in "
             f"sorted folder order, are its classes (put a labels.txt beside it to check)")
        return data_names, np.arange(len(data_names)), []
    if runner.n_classes is not None and runner.n_classes != len(names):
        raise UserError(f"{runner.path} has {runner.n_classes} outputs but {len(names)} class names "
                        f"(from {runner.labels_from})")
    position = {n: i for i, n in enumerate(names)}
    unknown = [n for n in data_names if n not in position]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else "")
        raise UserError(
            f"the data's class names differ from the model's labels ({runner.labels_from}): {len(unknown)} species "
            f"of the data are not among the model's {len(names)} classes: {shown}")
    absent = [n for n in names if n not in set(data_names)]
    return list(names), np.asarray([position[n] for n in data_names], dtype=np.int64), absent


def _image_sizes(paths) -> dict:
    from PIL import Image

    sizes = {}
    for p in paths:
        try:
            with Image.open(p) as img:
                sizes[p] = img.size
        except Exception:  # unreadable: the loader records it
            pass
    return sizes


def _called_out(index, per_class: list) -> list:
    """Species of the split some of whose images are not the size most of its images have (when most share
    one): what this data shows, whatever data set it is."""
    by_name = {c["class"]: c for c in per_class}
    sizes = _image_sizes(index.paths)
    common, share = (Counter(sizes.values()).most_common(1)[0][0], 0.0) if sizes else (None, 0.0)
    if sizes:
        share = Counter(sizes.values())[common] / len(sizes)
    odd = {}
    if common is not None and share >= 0.5:  # only meaningful when most images share one size
        for path, label in zip(index.paths, index.labels):
            if path in sizes and sizes[path] != common:
                odd.setdefault(index.class_names[label], []).append(sizes[path])
    out = []
    for name in sorted(n for n in odd if n in by_name):
        row = by_name[name]
        shown = ", ".join(f"{w}x{h}" for w, h in odd[name][:6])
        size = f"{common[0]}x{common[1]}"
        note = (f"none of its {row['n']} images here is {size}" if len(odd[name]) == row["n"] else
                f"{len(odd[name])} of its {row['n']} images here are not {size}")
        out.append({"class": name, "n": row["n"], "correct": row["correct"], "top1": row["top1"],
                    "most_confused_with": row["most_confused_with"], "note": f"{note}: {shown}"})
    return out


def images_digest(index) -> str:
    """What identifies the images scored, wherever the data set sits: species/file name and size of each, hashed.
    compare ranks only rows with the same digest."""
    digest = hashlib.sha256()
    for line in sorted(f"{index.class_names[label]}/{os.path.basename(p)}\t{_size(p)}"
                       for p, label in zip(index.paths, index.labels)):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # gone since it was listed: the loader reports it
        return -1


def _load_data(model: OpenedModel, split: str, data, exclude) -> DataSplit:
    """--data, else the run's own data (and its exclude list when --exclude is not given)."""
    runner = model.runner
    if data is None and model.run is None:
        raise UserError(f"{runner.path} is a bare {runner.kind} file with no run directory around it: pass "
                        f"--data ROOT (a Kaggle-layout folder or hf:<id>) to say which images to evaluate on")
    chosen = load_split(split, data, exclude, run=model.run)
    if len(chosen.index) == 0:
        raise UserError(f"split '{split}' of {chosen.data} has no images"
                        + (" left after --exclude" if chosen.excluded else ""))
    return chosen


def predict_split(predict, index, image_size: int, batch_size: int, progress=True):
    """(probs, data labels, first batch of uint8 images, skipped files) over one split."""
    from tqdm.auto import tqdm

    loader = BatchLoader(index, image_size, batch_size, workers=1)
    probs, labels, first = [], [], None
    bar = tqdm(total=len(index), desc=f"eval {index.split}", unit="img", file=sys.stderr, disable=not progress)
    with ThreadPoolExecutor(max_workers=1) as pool:  # decode the next batch while the model runs
        pending = pool.submit(loader.load_batch, 0)
        for i in range(len(loader)):
            images, y = pending.result()
            if i + 1 < len(loader):
                pending = pool.submit(loader.load_batch, i + 1)
            positions = loader.order[i * batch_size:(i + 1) * batch_size]
            bar.update(len(positions))
            if all(index.paths[j] in loader.skipped.files for j in positions):
                continue  # a wholly unreadable batch comes back with a later image borrowed: not twice
            if first is None:
                first = images
            probs.append(predict(images))
            labels.append(y)
    bar.close()
    return np.concatenate(probs), np.concatenate(labels), first, loader.skipped.as_list()


def default_out_dir(runner: Runner, split: str) -> Path:
    base = runner.run_dir.eval_dir if in_run(runner) else runner.path.parent / "eval"
    return base / f"{runner.path.name}-{split}"


def evaluate(model_path, split="test", data=None, batch_size=32, out=None, exclude=None, progress=True,
             latency_runs=50, tta_flip=None, corruptions=None, severity=None, unknown=None) -> dict:
    """Evaluate a run directory (or its RunContext), .keras, .tflite or .onnx file on one split of a data set.

    data: defaults to the run's recipe.json `data` (and its exclude list); required for a bare
    file with no run directory around it. Writes report.json, report.md and PNGs to `out`
    (default: MODEL_DIR/eval/<model file>-<split>/) and returns the report as a dict.
    latency_runs: timed batch-1 runs (0 skips latency and throughput).
    tta_flip: average each image with its mirror image; default: the run recipe's tta_flip for the run's
    own Keras model (so its figures are reproduced), off for exported files. Latency then times both passes.
    corruptions: "all" or names (keras_birds.data.corruptions) to also score corrupted copies of the split
    at `severity` ("all" by default; see evaluation/robustness.py); the report gains "robustness".
    unknown: a folder of images of species the model does not know (openset/unknown_images.py); the
    report gains "open_set": AUROC and rejection rate of known vs unknown, per score.
    """
    if split not in SPLIT_ALIASES:
        raise UserError(f"unknown split '{split}' (expected train, valid or test)")
    split = SPLIT_ALIASES[split]
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if severity is not None and not corruptions:
        raise UserError("--severity applies to --corruptions: pass --corruptions all (or names) too")
    names = parse_names(corruptions) if corruptions else ()
    severities = parse_severities(severity or "all") if names else ()
    model = open_model(model_path, tta_flip)
    runner = model.runner
    _unfinished(model, say=True)
    chosen = _load_data(model, split, data, exclude)
    class_names, data_to_model, absent = _match_classes(runner, chosen.index)
    unknown_images = unknown_index(unknown, split, class_names) if unknown else None  # a bad folder fails now
    if absent:
        _log(f"note: {len(absent)} of the model's {len(class_names)} classes have no folder in {chosen.data} [{split}]")
    started = time.time()
    probs, data_labels, first_batch, skipped = predict_split(model.predict, chosen.index, runner.image_size,
                                                             batch_size, progress)
    eval_seconds = time.time() - started
    _check_probabilities(runner, probs, len(class_names))
    labels = data_to_model[data_labels]
    m = metrics.summarize(probs, labels, class_names, top_confusions=25)
    if progress:
        _log(f"timing {runner.kind} on {runner.device} ...")
    latency = measure_latency(model.predict, first_batch, runs=latency_runs, batch_size=batch_size)
    out_dir = Path(out) if out else default_out_dir(runner, split)
    report = _report(model, chosen, m, latency, labels, skipped, absent, eval_seconds, out_dir)
    if names:
        robust = evaluate_corruptions(model.predict, chosen.index, runner.image_size, data_to_model, m["top1"], names,
                                      severities, out_dir, runner.path, chosen.data, progress)
        report.update(robustness=robust, mean_corruption_top1=robust["mean_corruption_top1"],
                      corruption_relative_drop=robust["relative_drop"])
    if unknown_images is not None:
        report["open_set"] = open_set_figures(model, chosen.index, unknown_images, unknown, batch_size)
    write_report(report, out_dir)
    return report


def _unfinished(model: OpenedModel, say: bool = False) -> dict | None:
    """How far the model's run got, when its training never ended (RunContext.unfinished); say: warn now."""
    left = model.run.unfinished() if model.run is not None else None
    if left and say:
        _log(f"warning: {model.run.path} is {left['note']} (no model.keras): these are the figures of its best "
             f"epoch so far")
    return left


def _check_probabilities(runner: Runner, probs, n_classes: int):
    if probs.shape[1] != n_classes:
        raise UserError(f"{runner.path} returned {probs.shape[1]} scores per image, expected {n_classes}")
    row_sums = probs.sum(1)
    # Quantised outputs round each of the C scores by up to step/2: their sum may miss 1 by C * step / 2.
    if np.abs(row_sums - 1).mean() > 0.01 + probs.shape[1] * getattr(runner, "output_step", 0.0) / 2:
        _log(f"warning: {runner.path} outputs do not sum to 1 (mean {row_sums.mean():.3f}): not probabilities? "
             f"calibration figures will be meaningless")


def _report(model: OpenedModel, chosen: DataSplit, m: dict, latency: dict, labels, skipped, absent,
            eval_seconds: float, out_dir: Path) -> dict:
    runner, split = model.runner, chosen.index.split
    return {
        "model": str(runner.run_dir.path if runner.kind == "keras" and in_run(runner) else runner.path),
        "model_file": str(runner.path), "kind": runner.kind, "split": split, "data": chosen.data,
        "n_images": int(len(labels)), "n_classes": len(m["per_class"]), "classes_in_split": m["classes_in_split"],
        "top1": m["top1"], "top5": m["top5"], "macro_top1": m["macro_top1"], "ece": m["calibration"]["ece"],
        "params": runner.params, "size_bytes": runner.size_bytes, "size_mb": round(runner.size_bytes / 1e6, 3),
        **{k: latency[k] for k in ("latency_ms_b1_median", "latency_ms_b1_p90", "throughput_img_s")},
        "device": runner.device, "image_size": runner.image_size, "labels_from": runner.labels_from,
        "tta_flip": model.tta_flip, "n_skipped": len(skipped), "excluded_files": len(chosen.excluded),
        "eval_seconds": round(eval_seconds, 2),
        "report_dir": str(out_dir), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(runner.run_dir.path) if runner.run_dir else None, "unfinished": _unfinished(model),
        "images": images_digest(chosen.index),
        "model_classes_absent_from_data": absent,
        "latency": latency, "called_out": _called_out(chosen.index, m["per_class"]),
        "most_confused": m["most_confused"], "calibration": m["calibration"], "per_class": m["per_class"],
        "skipped_files": skipped, "confusion_matrix": m["confusion_matrix"].tolist(),
    }


__all__ = ["evaluate", "predict_split", "default_out_dir"]
