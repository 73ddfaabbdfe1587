"""predict(images, model) -> species names with probabilities, for the app team's own photos.

The model is anything `inference.open_model` takes (a run directory, .keras, .tflite, .onnx), so a photo gets
the same answer from the Keras run and from the file shipped in the app. Below `threshold` the
answer is "unknown": the app must not name a species it is unsure of. Without one, the model's stored
rule applies (`calibrate-unknown`: an exported file's own metadata, a run's RUN/unknown.json; openset/rule.py),
with a warning when an exported file is older than its run's rule.
An unreadable file is reported in `errors` and the rest go on.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_birds.data.images import BadImage, load_rgb
from keras_birds.data.sources import IMAGE_SUFFIXES, image_files_under
from keras_birds.errors import UserError
from keras_birds.openset.rule import UnknownRule, stale_export, stored_rule

UNKNOWN = "unknown"


@dataclass
class Predictions:
    model: str
    kind: str
    threshold: float
    tta_flip: bool
    results: list = field(default_factory=list)  # {"path", "species", "probability", "top_k": [...]}
    errors: list = field(default_factory=list)  # {"path", "error"}
    unknown_rule: dict = field(default_factory=dict)  # {"score", "threshold", "from"}
    warnings: list = field(default_factory=list)  # one line each, about the model (e.g. an out-of-date export)
    unfinished: dict | None = None  # the model's run never finished training (RunContext.unfinished)

    def as_dict(self) -> dict:
        return {"model": self.model, "kind": self.kind, "threshold": self.threshold, "tta_flip": self.tta_flip,
                "unknown_rule": self.unknown_rule, "results": self.results, "errors": self.errors,
                "warnings": self.warnings, "unfinished": self.unfinished}


def collect_images(inputs) -> tuple[list, list]:
    """(image files in order, errors): a folder is walked recursively for image files (hidden ones
    skipped); a file named explicitly is taken whatever its suffix, so a bad one gets reported."""
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = image_files_under(path)
            if not found:
                errors.append({"path": str(path), "error": "folder holds no image files "
                                                           f"({', '.join(sorted(IMAGE_SUFFIXES))})"})
            files.extend(str(p) for p in found)
        elif path.is_file():
            files.append(str(path))
        else:
            errors.append({"path": str(path), "error": "no such file or folder"})
    return files, errors


def unknown_rule(threshold, runner) -> UnknownRule:
    """--threshold on the top probability if given, else the model's stored rule, else none (0)."""
    if threshold is not None:
        return UnknownRule("max_probability", float(threshold), "--threshold")
    return stored_rule(runner) or UnknownRule("max_probability", 0.0, "no stored rule")


def predict(inputs, model, *, top_k: int = 5, threshold: float | None = None, batch_size: int = 32, tta_flip=None,
            progress: bool = True) -> Predictions:
    from tqdm.auto import tqdm

    from keras_birds.inference.model import open_model

    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold is a probability in [0, 1], got {threshold}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    files, errors = collect_images(inputs)
    if not files:
        raise UserError("no image to predict: " + "; ".join(f"{e['path']}: {e['error']}" for e in errors))
    opened = open_model(model, tta_flip)  # as eval: the input size and TTA come from the run, if any
    runner = opened.runner
    names = runner.class_names
    if names is None:
        raise UserError(f"{runner.path} carries no class names: put a labels.txt (one species per line, in output "
                        f"order) beside it")
    size, run_model = runner.image_size, opened.predict
    k = min(top_k, len(names))
    rule = unknown_rule(threshold, runner)
    out = Predictions(str(runner.path), runner.kind, rule.threshold, opened.tta_flip, errors=errors,
                      unknown_rule={"score": rule.score, "threshold": rule.threshold, "from": rule.source})
    stale = stale_export(runner) if threshold is None else None  # --threshold: no stored rule is used anyway
    out.warnings.extend([stale] if stale else [])
    out.unfinished = opened.run.unfinished() if opened.run is not None else None
    if out.unfinished:
        out.warnings.append(f"{opened.run.path} is {out.unfinished['note']} (no model.keras): the answers of its "
                            f"best epoch so far")
    bar = tqdm(total=len(files), desc="predict", unit="img", file=sys.stderr, disable=not progress or len(files) < 2)
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        batch, paths = [], []
        for path in chunk:
            try:
                batch.append(load_rgb(path, size))
                paths.append(path)
            except BadImage as e:
                out.errors.append({"path": path, "error": f"unreadable: {e}"})
        bar.update(len(chunk))
        if not batch:
            continue
        probs = run_model(np.stack(batch))
        out.results.extend({"path": path, **a} for path, a in zip(paths, answers(probs, names, rule, k)))
    bar.close()
    return out


def answers(probs, names, rule: UnknownRule, k: int) -> list:
    """Per image, what predict (and the HTTP server) answers: {"species" ("unknown" below the rule),
    "probability" (of the top species), "top_k": [{"species", "probability"}, ...]}, rounded to 6 digits."""
    out = []
    for p, sure in zip(probs, rule.accepted(probs)):
        order = np.argsort(-p, kind="stable")[:k]
        top = [{"species": names[i], "probability": round(float(p[i]), 6)} for i in order]
        out.append({"species": top[0]["species"] if sure else UNKNOWN, "probability": top[0]["probability"],
                    "top_k": top})
    return out


def format_text(preds: Predictions) -> str:
    """One line per image (answer and its probability), then the top-k when more than one is asked."""
    lines = []
    for r in preds.results:
        head = f"{r['path']}: {r['species']} ({r['probability']:.3f})"
        if r["species"] == UNKNOWN:
            rule = preds.unknown_rule or {"score": "max_probability"}
            below = "" if rule["score"] == "max_probability" else f"{rule['score']} "
            head = (f"{r['path']}: {UNKNOWN} (best guess {r['top_k'][0]['species']} at {r['probability']:.3f}; "
                    f"{below}< threshold {preds.threshold:g})")
        lines.append(head)
        if len(r["top_k"]) > 1:
            lines.extend(f"    {i}. {t['species']:<32s} {t['probability']:.3f}" for i, t in enumerate(r["top_k"], 1))
    return "\n".join(lines)
