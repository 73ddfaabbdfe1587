"""compare(run dirs) -> comparison.md / .csv / .json and pareto.png: the study's table, generated.

Every figure comes from `evaluate` (the same runners, images and metric code as `keras-birds eval`),
so a row here equals what eval prints for that model; valid top-1 is the run's best epoch
(summary.json), exported int8 MB the size of RUN/export/model_int8.tflite when it exists.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from keras_birds.comparison.plot import plot_pareto
from keras_birds.comparison.table import new_row, recommend, to_csv, to_markdown
from keras_birds.console import log as _log
from keras_birds.errors import UserError
from keras_birds.evaluation.robustness import stored as stored_robustness
from keras_birds.inference.context import RunContext
from keras_birds.run_dir import RunDir, atomic_write_json, atomic_write_text

EXPORTED_SUFFIXES = (".tflite", ".onnx")


@dataclass
class Comparison:
    rows: list
    out_dir: Path
    split: str
    recommended: dict | None

    @property
    def files(self) -> dict:
        return {name: self.out_dir / name for name in ("comparison.md", "comparison.csv", "comparison.json", "pareto.png")}


def _run_label(run: RunDir, recipe, taken: set) -> str:
    label = recipe.name or recipe.model
    if label in taken:  # two runs of one recipe: tell them apart by folder
        label = f"{label} [{run.path.name}]"
    taken.add(label)
    return label


def exported_files(run: RunDir, folder=None) -> list:
    """A run's exported models (RUN/export by default), verified ones first, .onnx before .tflite."""
    folder = Path(folder) if folder else run.path / "export"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.suffix in EXPORTED_SUFFIXES and p.is_file()]
    return sorted(found, key=lambda p: (".unverified." in p.name, p.suffix != ".onnx", p.name))


def _format_of(path: Path, tta_flip: bool = False) -> str:
    if path.suffix == ".onnx":
        kind = "onnx fp32"
    else:
        stem = path.name.split(".")[0]  # model_int8.unverified.tflite -> model_int8
        kind = "tflite " + stem.replace("model_", "")
    return kind + (" (unverified)" if ".unverified." in path.name else "") + (" (flip TTA)" if tta_flip else "")


def _row_from_report(report: dict, **extra) -> dict:
    """A row of eval's figures; `extra` adds columns or overrides them (size_mb of a Keras row). The mean
    corrupted top-1 is the one an earlier `eval --corruptions` of this model, split and data left."""
    robust = stored_robustness(report)
    values = dict(top1=report["top1"], top5=report["top5"], latency_ms=report["latency_ms_b1_median"],
                  corruption_top1=robust["mean_corruption_top1"] if robust else None,
                  throughput_img_s=report["throughput_img_s"], device=report["device"],
                  params=report["params"], size_mb=report["size_mb"], source=report["model_file"])
    return new_row(**{**values, **extra})


def compare(run_paths, *, split="test", exported=False, out=None, data=None, latency_runs=50,
            progress=True, log=_log) -> Comparison:
    """Evaluate each run on `split` (and, with exported=True, each of its exported files) and write
    the table, the plot and the recommendation to `out` (default: ./comparison)."""
    from keras_birds.evaluation.evaluate import evaluate

    if not run_paths:
        raise UserError("compare needs at least one run directory")
    # All checked before minutes of evaluation.
    runs = [RunContext.existing(p, "compare takes the --out folders of `keras-birds train` runs") for p in run_paths]
    out_dir = Path(out) if out else Path("comparison")
    rows, taken = [], set()
    for n, run in enumerate(runs, 1):
        recipe = run.recipe()
        summary = json.loads(run.summary_json.read_text()) if run.summary_json.is_file() else {}
        name = _run_label(run, recipe, taken)
        files = exported_files(run)
        # A verified int8 file first; an unverified one still has the size the app would ship.
        int8 = next((p for p in files if p.name.split(".")[0] == "model_int8"), None)
        log(f"[{n}/{len(runs)}] {name}: evaluating {run.path} on {split} ...")
        report = evaluate(run, split=split, data=data, progress=progress, latency_runs=latency_runs)
        fp32_mb = round(report["params"] * 4 / 1e6, 3) if report["params"] else None
        rows.append(_row_from_report(
            report, name=name, format="keras" + (" (flip TTA)" if report.get("tta_flip") else ""),
            fp32_mb=fp32_mb, int8_mb=round(int8.stat().st_size / 1e6, 3) if int8 else None,
            valid_top1=summary.get("best_val_top1"),
            # What the keras row ran is the float32 weights; the .keras file's size counts the format too.
            size_mb=fp32_mb or report["size_mb"]))
        if exported:
            if not files:
                log(f"note: {run.path} has no exported files in {run.path / 'export'} (run `keras-birds export "
                    f"{run.path}` first)")
            for path in files:
                log(f"[{n}/{len(runs)}] {name}: evaluating {path.name} on {split} ...")
                rep = evaluate(path, split=split, data=data, progress=progress, latency_runs=latency_runs)
                rows.append(_row_from_report(rep, name=name, format=_format_of(path, rep.get("tta_flip")),
                                             int8_mb=rep["size_mb"] if "int8" in path.name else None))
    return write_comparison(rows, out_dir, split,
                            notes=[f"{split} figures from `keras-birds eval`; latency and throughput measured on "
                                   f"the device named in each row, in this process, one model after another",
                                   "float32 weights MB = parameters x 4 bytes; exported int8 MB = the "
                                   "run's export/model_int8.tflite file (model_int8.unverified.tflite if it "
                                   "failed the export gate)",
                                   "valid top-1 = the run's best epoch (summary.json), the epoch it keeps",
                                   "mean corrupted top-1 (when shown) = from an earlier `keras-birds eval MODEL "
                                   "--corruptions ...` of the same file, split and data (its robustness.json): "
                                   "the mean over the corruptions and severities it scored"])


def write_comparison(rows: list, out_dir, split: str | None, notes=(), title="Comparison") -> Comparison:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rec = recommend(rows)
    atomic_write_text(out_dir / "comparison.md", to_markdown(rows, split, title=title, notes=notes))
    atomic_write_text(out_dir / "comparison.csv", to_csv(rows))
    atomic_write_json(out_dir / "comparison.json", {
        "split": split, "rows": rows, "notes": list(notes),
        "recommended": None if rec is None else {"name": rec["row"]["name"], "format": rec["row"]["format"],
                                                 "why": rec["why"]}})
    plot_pareto(rows, out_dir / "pareto.png", split or "")
    return Comparison(rows, out_dir, split, rec)
