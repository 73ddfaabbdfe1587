"""The parity gate: run each exported file on the run's validation split and compare with Keras.

The rule means the same on 125 images as on 2,625 (docs/commands/export.md). Per image, Keras
and the file are each right or wrong: `lost` (b) images Keras gets right and the file gets wrong,
`gained` (c) the reverse; the top-1 drop is (b - c) / n. A file fails when its true drop exceeds the
1-point tolerance with 95% confidence: the one-sided lower bound of Tango's score interval for paired
proportions (continuity-corrected) is above 1 point: 5 net losses of 125, 36 of 2,625. At a
true drop of exactly 1 point that happens in under 5% of simulated splits of either size. Alone it
would let a small split excuse a big loss, so an observed drop above 3 points (4 net losses of 125,
1 of 25) fails too, on any split. Float files (ONNX, TFLite fp32 / fp16) must also keep every
decisive answer: no top-1 change on an image whose Keras margin p1 - p2 is >= 0.05. Conversion moves
their probabilities far less (max |dp| on birds-dev valid: fp32 2e-6, fp16 5e-3), so such a change
is a bug; near-ties (margin < 0.05) may flip and are counted beside the raw agreement. Quantised
files (int8, dynamic-range) answer to the drop rule only. Every file must also carry the run's class
names, in order, and a uint8 input must take raw pixels (scale 1, zero 0), because that is what an
app feeds it. A file that fails is kept but renamed `*.unverified.*`, so it cannot be shipped by
mistake. All inference goes through inference.runners.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from keras_birds.inference.runners import Runner, open_runner

MAX_TOP1_DROP_POINTS = 1.0  # the tolerance: a true drop above it fails once the evidence says so
DROP_CAP_POINTS = 3.0  # an observed drop above it fails on any number of images
CONFIDENCE_Z = 1.6448536269514722  # one-sided 95%
NEAR_TIE = 0.05  # Keras p1 - p2 below this: a near-tie, which a float file may flip
QUANTISED = ("int8", "dynamic")
UNVERIFIED = ".unverified"
RULE = {"all": f"top-1 drop: 95% lower bound <= {MAX_TOP1_DROP_POINTS} point and observed <= {DROP_CAP_POINTS} points",
        "float": f"and no top-1 change where the Keras margin p1 - p2 >= {NEAR_TIE}"}


@dataclass
class GateResult:
    file: str
    criterion: str  # RULE["all"], plus RULE["float"] for float files
    images: int = 0
    keras_top1: float | None = None
    top1: float | None = None
    top1_drop_points: float | None = None
    drop_bound_points: float | None = None  # one-sided 95% lower bound of the true drop
    lost: int | None = None  # b: Keras right, the file wrong
    gained: int | None = None  # c: Keras wrong, the file right
    top1_agreement: float | None = None  # raw, over all images
    near_ties: int | None = None  # images whose Keras margin p1 - p2 < NEAR_TIE
    decisive_changes: int | None = None  # top-1 changes on the other images
    max_abs_prob_diff: float | None = None
    problems: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        figures = (f"top-1 {100 * self.top1:.2f}% vs Keras {100 * self.keras_top1:.2f}% (drop "
                   f"{self.top1_drop_points:+.2f} points, 95% bound {self.drop_bound_points:+.2f}; lost {self.lost}, "
                   f"gained {self.gained}), agreement {100 * self.top1_agreement:.2f}% ({self.decisive_changes} "
                   f"decisive changes, {self.near_ties} near-ties), max |dp| {self.max_abs_prob_diff:.2g} on "
                   f"{self.images} images") if self.top1 is not None else "not run"
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.problems)
        return f"{self.file}: {verdict} ({figures})"


def criterion_for(quantize: str) -> str:
    return RULE["all"] if quantize in QUANTISED else f"{RULE['all']}, {RULE['float']}"


def drop_lower_bound(lost: int, gained: int, n: int, z: float = CONFIDENCE_Z) -> float:
    """One-sided lower confidence bound of the true top-1 drop p_b - p_c (a fraction), from paired
    flips: the smallest d whose Tango score statistic is still <= z (Tango 1998, Stat Med 17:891)."""
    if n <= 0:
        return -1.0
    lo, hi = -1.0, 1.0
    for _ in range(50):  # bisection: the statistic falls as d grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _tango_z(lost, gained, n, mid) > z else (lo, mid)
    return lo


def _tango_z(b: int, c: int, n: int, d: float) -> float:
    """Tango's score statistic for H0: p_b - p_c = d, with p_c at its maximum likelihood under H0,
    continuity-corrected: uncorrected, a true drop of exactly 1 point failed 8-11% of simulated
    125-image splits; corrected, 3-4.5% on 125, 500 and 2,625 images."""
    a_, b_, c_ = 2 * n, -b - c + (2 * n - b + c) * d, -c * d * (1 - d)
    q = (math.sqrt(max(b_ * b_ - 4 * a_ * c_, 0.0)) - b_) / (2 * a_)
    var = n * (2 * q + d * (1 - d))
    diff = b - c - n * d
    diff = math.copysign(max(abs(diff) - 0.5, 0.0), diff)  # continuity correction: counts are whole images
    if var <= 1e-12:
        return math.copysign(math.inf, diff) if diff else 0.0
    return diff / math.sqrt(var)


def judge(ref: np.ndarray, out: np.ndarray, truth: np.ndarray, quantize: str) -> tuple:
    """(figures, problems) of one file's probabilities `out` against Keras' `ref` on labels `truth`."""
    n = len(ref)
    keras_right, file_right = ref.argmax(1) == truth, out.argmax(1) == truth
    lost, gained = int((keras_right & ~file_right).sum()), int((~keras_right & file_right).sum())
    top2 = np.sort(ref, 1)[:, -2:] if ref.shape[1] > 1 else np.concatenate([np.zeros_like(ref), ref], 1)
    decisive = top2[:, 1] - top2[:, 0] >= NEAR_TIE
    changed = out.argmax(1) != ref.argmax(1)
    drop = 100 * (lost - gained) / n
    bound = 100 * drop_lower_bound(lost, gained, n)
    figures = {"images": n, "keras_top1": float(keras_right.mean()), "top1": float(file_right.mean()),
               "top1_drop_points": round(drop, 3), "drop_bound_points": round(bound, 3), "lost": lost,
               "gained": gained, "top1_agreement": float(1 - changed.mean()), "near_ties": int((~decisive).sum()),
               "decisive_changes": int((changed & decisive).sum())}
    problems = []
    if bound > MAX_TOP1_DROP_POINTS:
        problems.append(f"top-1 drops {drop:.2f} points (lost {lost}, gained {gained}): more than "
                        f"{MAX_TOP1_DROP_POINTS} point with 95% confidence (bound {bound:.2f})")
    elif drop > DROP_CAP_POINTS + 1e-9:
        problems.append(f"top-1 drops {drop:.2f} points (lost {lost}, gained {gained}; > {DROP_CAP_POINTS})")
    if quantize not in QUANTISED and figures["decisive_changes"]:
        problems.append(f"top-1 differs from Keras on {figures['decisive_changes']} of {int(decisive.sum())} images "
                        f"where Keras is decisive (margin >= {NEAR_TIE})")
    return figures, problems


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
    finite = bool(np.isfinite(out).all())
    result.max_abs_prob_diff = float(np.nanmax(np.abs(out - ref))) if finite else float("inf")
    if not finite:
        result.problems.append("the file outputs NaN or inf")
        out = np.nan_to_num(out, nan=-1.0, posinf=-1.0, neginf=-1.0)
    figures, problems = judge(ref, out, truth, quantize)
    for key, value in figures.items():
        setattr(result, key, value)
    result.problems.extend(problems)


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
