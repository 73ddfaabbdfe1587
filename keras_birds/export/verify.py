"""The parity gate: run each exported file on the run's validation split and compare with Keras.

Float files (ONNX, TFLite fp32 / fp16) must give the Keras model's top-1 on >= 99.5% of images.
Quantised files (int8, dynamic-range) must lose <= 1 point of top-1 accuracy. Every file must also
carry the run's class names, in order, and a uint8 input must take raw pixels (scale 1, zero 0),
because that is what an app feeds it. A file that fails is kept but renamed `*.unverified.*`, so it
cannot be shipped by mistake. All inference goes through inference.runners.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from keras_birds.inference.runners import Runner, open_runner

MIN_TOP1_AGREEMENT = 0.995
MAX_TOP1_DROP_POINTS = 1.0
QUANTISED = ("int8", "dynamic")
UNVERIFIED = ".unverified"


@dataclass
class GateResult:
    file: str
    criterion: str  # "top1_agreement >= 99.5%" or "top1_drop <= 1.0 point"
    images: int = 0
    keras_top1: float | None = None
    top1: float | None = None
    top1_drop_points: float | None = None
    top1_agreement: float | None = None
    max_abs_prob_diff: float | None = None
    problems: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        figures = (f"agreement {100 * self.top1_agreement:.2f}%, top-1 {100 * self.top1:.2f}% vs Keras "
                   f"{100 * self.keras_top1:.2f}% (drop {self.top1_drop_points:+.2f} points), "
                   f"max |dp| {self.max_abs_prob_diff:.2g} on {self.images} images") if self.images else "not run"
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.problems)
        return f"{self.file}: {verdict} ({figures})"


def criterion_for(quantize: str) -> str:
    return (f"top1_drop <= {MAX_TOP1_DROP_POINTS} point" if quantize in QUANTISED
            else f"top1_agreement >= {100 * MIN_TOP1_AGREEMENT}%")


def run_gate(keras_runner: Runner, files: dict, batches, class_names: list) -> dict:
    """files: {label: (path, quantize)}; batches: iterable of (uint8 images, int labels).

    Returns {label: GateResult}. Each file is opened once and fed the same batches as Keras.
    """
    runners = {label: open_runner(path) for label, (path, _) in files.items()}
    ref, preds, truth = [], {label: [] for label in files}, []
    for images, labels in batches:
        ref.append(keras_runner.predict(images))
        truth.append(np.asarray(labels))
        for label, runner in runners.items():
            preds[label].append(runner.predict(images))
    results = {}
    for label, (path, quantize) in files.items():
        result = GateResult(Path(path).name, criterion_for(quantize))
        runner = runners[label]
        if runner.class_names != list(class_names):
            got = "none" if runner.class_names is None else f"{len(runner.class_names)} names ({runner.labels_from})"
            result.problems.append(f"class names in the file do not match the run's classes.txt (got {got})")
        if ref:
            _compare(result, np.concatenate(ref), np.concatenate(preds[label]), np.concatenate(truth), quantize)
        else:
            result.problems.append("no validation images to compare on")
        results[label] = result
    return results


def _compare(result: GateResult, ref: np.ndarray, out: np.ndarray, truth: np.ndarray, quantize: str):
    result.images = int(len(ref))
    if out.shape != ref.shape:
        result.problems.append(f"output shape {out.shape[1:]} differs from Keras {ref.shape[1:]}")
        return
    finite = np.isfinite(out).all()
    result.keras_top1 = float((ref.argmax(1) == truth).mean())
    result.top1 = float((out.argmax(1) == truth).mean())
    result.top1_drop_points = round(100 * (result.keras_top1 - result.top1), 3)
    result.top1_agreement = float((out.argmax(1) == ref.argmax(1)).mean())
    result.max_abs_prob_diff = float(np.nanmax(np.abs(out - ref))) if finite else float("inf")
    if not finite:
        result.problems.append("the file outputs NaN or inf")
    if quantize in QUANTISED:
        if result.top1_drop_points > MAX_TOP1_DROP_POINTS + 1e-9:
            result.problems.append(f"top-1 drops {result.top1_drop_points:.2f} points (> {MAX_TOP1_DROP_POINTS})")
    elif result.top1_agreement < MIN_TOP1_AGREEMENT:
        result.problems.append(f"top-1 agrees with Keras on {100 * result.top1_agreement:.2f}% of images "
                               f"(< {100 * MIN_TOP1_AGREEMENT}%)")


def check_raw_pixel_input(result: GateResult, io: dict):
    """A uint8 input must mean the pixel itself: scale 1, zero point 0 (what MediaPipe and apps feed)."""
    inp = io["input"]
    q = inp.get("quantization")
    if inp["dtype"] == "uint8" and q and (abs(q["scale"] - 1.0) > 0.01 or q["zero_point"] != 0):
        result.problems.append(f"uint8 input quantisation scale {q['scale']:.4f} zero point {q['zero_point']} "
                               f"is not raw pixels (calibration images lack dark or bright pixels?)")


def verified_name(path) -> Path:
    path = Path(path)
    return path.with_name(path.name.replace(UNVERIFIED + path.suffix, path.suffix))


def unverified_name(path) -> Path:
    path = verified_name(path)
    return path.with_name(f"{path.stem}{UNVERIFIED}{path.suffix}")


def settle_name(path, passed: bool | None, source=None) -> Path:
    """Give a file its final name: `x.tflite` when it passed (or was not checked), else
    `x.unverified.tflite`; a stale file under the other name from an earlier export is removed.
    `source`: where the file is now (a pending folder), if not at `path`."""
    path = Path(path)
    final = unverified_name(path) if passed is False else verified_name(path)
    other = verified_name(path) if passed is False else unverified_name(path)
    source = Path(source) if source is not None else path
    if final != source:
        os.replace(source, final)
    if other.exists() and other != final:
        other.unlink()
    return final
