"""The model a server answers with: MODEL resolved to one file, opened once, and what GET /v1/model says.

MODEL is a run directory, its export folder, or a .tflite/.onnx/.keras file. From a run, the file is the one
export.json ranks first among those that passed the export gate: int8 .tflite, then the other .tflite, then
.onnx (inference/exported.py); a run never exported is served from its Keras model, with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keras_birds.errors import UserError
from keras_birds.inference.exported import choose_exported, read_report
from keras_birds.inference.model import OpenedModel, open_model
from keras_birds.openset.rule import UnknownRule, stale_export
from keras_birds.prediction.predict import unknown_rule
from keras_birds.run_dir import file_sha256


@dataclass
class ServedModel:
    opened: OpenedModel
    names: list
    rule: UnknownRule
    id: str  # "sha256:<hex>" of the file answering
    info: dict  # GET /v1/model
    warnings: list = field(default_factory=list)

    @property
    def image_size(self) -> int:
        return self.opened.runner.image_size

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, C) probabilities; not thread-safe (one inference thread calls it)."""
        return self.opened.predict(images)


def resolve(path, log=lambda msg: None) -> tuple[Path, dict | None]:
    """(the file or run directory to open, its export.json entry if it has one)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model {path} does not exist (expected a run directory, its export folder, or a .tflite, "
                        f".onnx or .keras file)")
    if path.is_file():
        return path, _entry_of(path)
    export_dir = path if (path / "export.json").is_file() else path / "export"
    if (export_dir / "export.json").is_file():
        entry = choose_exported(export_dir, read_report(export_dir), log)
        return export_dir / entry["file"], entry
    if (path / "recipe.json").is_file():
        log(f"warning: {path} has no export: serving its Keras model, several times slower per image than an "
            f"int8 .tflite; `keras-birds export {path} --quantize int8` makes one")
        return path, None
    raise UserError(f"{path} is neither a keras-birds run directory (no recipe.json) nor an export folder "
                    f"(no export.json)")


def _entry_of(file: Path) -> dict | None:
    """The export.json entry of an exported file sitting in its export folder (for the gate's figures)."""
    try:
        report = read_report(file.parent)
    except UserError:
        return None
    return next((f for f in report.get("files", []) if f.get("file") == file.name), None)


def open_served(path, threads: int | None = None, log=lambda msg: None, before_keras=lambda: None) -> ServedModel:
    """`before_keras()` runs first when the model is a Keras one (the CLI's quiet TensorFlow import)."""
    target, entry = resolve(path, log)
    if target.is_dir() or target.suffix.lower() == ".keras":
        before_keras()
    opened = open_model(target, threads=threads)
    runner = opened.runner
    if runner.class_names is None:
        raise UserError(f"{runner.path} carries no class names: put a labels.txt (one species per line, in output "
                        f"order) beside it")
    rule = unknown_rule(None, runner)
    warnings = [w for w in [stale_export(runner)] if w]
    if opened.run is not None and opened.run.unfinished():
        warnings.append(f"{opened.run.path} is {opened.run.unfinished()['note']}: serving its best epoch so far")
    digest = file_sha256(runner.path)
    gate = (entry or {}).get("gate") or {}
    info = {
        "name": opened.run.path.name if opened.run is not None else runner.path.stem,
        "id": f"sha256:{digest}", "file": runner.path.name, "kind": runner.kind,
        "quantize": (entry or {}).get("quantize"), "size_bytes": runner.size_bytes,
        "input": {"image_size": runner.image_size, "pixels": "RGB 0-255, resized as predict does (bilinear)"},
        "tta_flip": opened.tta_flip, "n_species": len(runner.class_names), "species": list(runner.class_names),
        "unknown_rule": {"score": rule.score, "threshold": rule.threshold, "from": rule.source},
        "export_gate": None if entry is None else {"verified": entry.get("verified"), **{k: gate.get(k) for k in (
            "criterion", "images", "keras_top1", "top1", "top1_drop_points", "drop_bound_points", "top1_agreement",
            "max_abs_prob_diff", "problems")}},
        "warnings": warnings,
    }
    for w in warnings:
        log(f"warning: {w}")
    return ServedModel(opened, list(runner.class_names), rule, f"sha256:{digest}", info, warnings)
