"""The "unknown" rule of a model: a score of its output probabilities and a threshold below which the
answer is "unknown" rather than a species.

Where it is kept (stored_rule):
  - an exported file: its own metadata, next to the labels (a .tflite: `unknown.json` packed beside
    `labels.txt`; an .onnx: metadata_props["unknown"]), as written by `keras-birds export`; a file
    without one has no rule, wherever it sits, as in an app (stale_export: the warning when its run's
    unknown.json is another rule, i.e. calibrate-unknown ran after the export);
  - a run directory, or a .keras inside one: RUN/unknown.json, written by `keras-birds calibrate-unknown`.
The JSON is the same everywhere: {"score", "threshold", "rule" (what an app computes), ...}.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_birds.errors import UserError
from keras_birds.openset.scores import DEPLOYABLE, RULE_NOTES, SCORES, score
from keras_birds.run_dir import atomic_write_json

UNKNOWN_JSON = "unknown.json"  # in a run directory, and packed in a .tflite
ONNX_KEY = "unknown"
EXPORTED = ("tflite", "onnx")  # runner kinds that carry their own rule (an app reads nothing else)


@dataclass(frozen=True)
class UnknownRule:
    score: str  # one of scores.DEPLOYABLE
    threshold: float
    source: str  # where the rule came from, for messages

    def accepted(self, probs) -> np.ndarray:
        """Per image: True when its score reaches the threshold (a species is named), else "unknown"."""
        return score(self.score, {"probs": np.atleast_2d(np.asarray(probs, np.float64))}) >= self.threshold

    def describe(self) -> str:
        return f"{self.score} >= {self.threshold:.4g} ({self.source})"


def parse_rule(text, source: str) -> UnknownRule:
    try:
        d = json.loads(text)
        rule = UnknownRule(str(d["score"]), float(d["threshold"]), source)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{source} is not an unknown-species rule ({type(e).__name__}: {e}); run "
                        f"`keras-birds calibrate-unknown` again") from None
    if rule.score not in DEPLOYABLE:
        raise UserError(f"{source}: score '{rule.score}' is not one computed from probabilities "
                        f"({', '.join(DEPLOYABLE)}); run `keras-birds calibrate-unknown` again")
    return rule


def rule_payload(score_name: str, threshold: float, **extra) -> dict:
    """The JSON an app reads: the score, the threshold, and the rule in words with its formula over the
    output vector p (the threshold shown to 4 digits; "threshold" holds it whole)."""
    note = f" ({RULE_NOTES[score_name]})" if score_name in RULE_NOTES else ""
    return {"score": score_name, "threshold": float(threshold),
            "rule": f"answer 'unknown' when {SCORES[score_name][1]} is below {threshold:.4g}{note}", **extra}


def write_run_rule(run_path, payload: dict) -> Path:
    path = Path(run_path) / UNKNOWN_JSON
    atomic_write_json(path, payload)
    return path


def run_rule(run_path) -> UnknownRule | None:
    path = Path(run_path) / UNKNOWN_JSON
    return parse_rule(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else None


def run_rule_text(run_path) -> str | None:
    """RUN/unknown.json as written (what export packs into the files), or None."""
    path = Path(run_path) / UNKNOWN_JSON
    return path.read_text(encoding="utf-8") if path.is_file() else None


def file_rule(path) -> UnknownRule | None:
    """The rule an exported .tflite / .onnx carries in its metadata, or None."""
    path = Path(path)
    if path.suffix.lower() == ".tflite":
        from keras_birds.export.metadata import associated_files

        packed = associated_files(path.read_bytes()).get(UNKNOWN_JSON)
        text = packed.decode("utf-8") if packed is not None else None
    elif path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        text = props.get(ONNX_KEY)
    else:
        return None
    return parse_rule(text, f"{path.name} metadata") if text else None


def stored_rule(runner) -> UnknownRule | None:
    """The rule for a runner's model: an exported file's own metadata (or none) wherever it sits, as an app
    reads it; the run's unknown.json for a run's Keras model."""
    if runner.kind in EXPORTED:
        return file_rule(runner.path)
    return run_rule(runner.run_dir.path) if runner.run_dir is not None else None


def stale_export(runner) -> str | None:
    """One line when an exported file sits in a run whose unknown.json holds another rule than the file's
    (calibrate-unknown ran after the export), else None."""
    if runner.kind not in EXPORTED or runner.run_dir is None:
        return None
    return stale_file(runner.path, runner.run_dir.path)


def stale_file(path, run_path) -> str | None:
    """stale_export's line for the exported file `path` of the run `run_path`, else None."""
    newer, inside = run_rule(run_path), file_rule(path)
    if newer is None or (inside is not None and (inside.score, inside.threshold) == (newer.score, newer.threshold)):
        return None
    from keras_birds.export.reexport import reexport_command

    has = (f"holds another unknown-species rule ({inside.score} >= {inside.threshold:.4g}) than" if inside
           else "holds no unknown-species rule, unlike")
    return (f"{path} is out of date: it {has} {newer.source} ({newer.score} >= {newer.threshold:.4g}, "
            f"from calibrate-unknown), and answers by its own, as an app would; re-export to carry the run's rule: "
            f"{reexport_command(run_path, path)}")
