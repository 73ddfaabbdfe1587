"""compare(run dirs) -> comparison.md / .csv / .json and pareto.png: the study's table, generated.

Every figure comes from `evaluate` (the same runners, images and metric code as `keras-birds eval`),
so a row here equals what eval prints for that model; valid top-1 is the run's best epoch
(summary.json), exported int8 MB the size of RUN/export/model_int8.tflite when it exists.
Its eval reports go to OUT/eval/<run>/, never over what `eval` wrote in RUN/eval/ (robustness, open set).
A row records what it was scored on (data, split, species, images); rows scored on different images
are not ranked, and rows of an unfinished run (RunContext.unfinished) are left out of the pick unless asked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from keras_birds.comparison.plot import plot_pareto
from keras_birds.comparison.table import new_row, pick, row_label, to_csv, to_markdown
from keras_birds.console import log as _log
from keras_birds.errors import UserError
from keras_birds.evaluation.robustness import data_location, stored as stored_robustness
from keras_birds.inference.context import RunContext
from keras_birds.run_dir import RunDir, atomic_write_json, atomic_write_text

EXPORTED_SUFFIXES = (".tflite", ".onnx")


@dataclass
class Comparison:
    rows: list
    out_dir: Path
    split: str
    recommended: dict | None
    not_ranked: str | None = None  # why no row was ranked: they were scored on different images

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
    corrupted top-1 is the one an earlier `eval --corruptions` of this model, split and data left where eval
    writes by default (MODEL_DIR/eval/<model file>-<split>/)."""
    model = Path(report["model_file"])
    robust = stored_robustness(report, model.parent / "eval" / f"{model.name}-{report['split']}")
    values = dict(top1=report["top1"], top5=report["top5"], latency_ms=report["latency_ms_b1_median"],
                  corruption_top1=robust["mean_corruption_top1"] if robust else None,
                  throughput_img_s=report["throughput_img_s"], device=report["device"],
                  params=report["params"], size_mb=report["size_mb"], source=report["model_file"],
                  data=data_location(report["data"]), split=report["split"], images=report.get("images"),
                  n_images=report["n_images"], n_classes=report["classes_in_split"],
                  report=str((Path(report["report_dir"]) / "report.json").resolve()))
    return new_row(**{**values, **extra})


def _eval_folder(out_dir: Path, run: RunDir, taken: set) -> Path:
    """OUT/eval/<run folder name>/: compare's own eval reports of a run (a second run of that name: -2, -3)."""
    name, k = run.path.name, 1
    while name in taken:
        k += 1
        name = f"{run.path.name}-{k}"
    taken.add(name)
    return out_dir / "eval" / name


def compare(run_paths, *, split="test", exported=False, out=None, data=None, latency_runs=50,
            progress=True, include_unfinished=False, log=_log) -> Comparison:
    """Evaluate each run on `split` (and, with exported=True, each of its exported files) and write
    the table, the plot and the recommendation to `out` (default: ./comparison). The rows of a run whose
    training never ended are candidates only with include_unfinished."""
    if not run_paths:
        raise UserError("compare needs at least one run directory")
    # All checked before minutes of evaluation.
    runs = [RunContext.existing(p, "compare takes the --out folders of `keras-birds train` runs") for p in run_paths]
    out_dir = Path(out) if out else Path("comparison")
    how = dict(split=split, data=data, progress=progress, latency_runs=latency_runs)
    rows, labels, folders = [], set(), set()
    for n, run in enumerate(runs, 1):
        rows += _run_rows(run, _run_label(run, run.recipe(), labels), f"[{n}/{len(runs)}]",
                          _eval_folder(out_dir, run, folders), exported, how, log)
    result = write_comparison(rows, out_dir, split, notes=_notes(split, out_dir), include_unfinished=include_unfinished)
    if result.not_ranked:  # on the terminal too, not only in the files
        log(f"warning: no recommendation: {result.not_ranked}")
    return result


def _run_rows(run: RunContext, name: str, step: str, folder: Path, exported: bool, how: dict, log) -> list:
    """The rows of one run: its own model, then (exported) each file in RUN/export; eval reports into `folder`."""
    from keras_birds.evaluation.evaluate import evaluate

    left = run.unfinished()
    if left:
        log(f"warning: {run.path} is {left['note']} (no model.keras): its rows say so and are left out of the "
            f"recommendation unless --include-unfinished")
    summary = json.loads(run.summary_json.read_text()) if run.summary_json.is_file() else {}
    files = exported_files(run)
    # A verified int8 file first; an unverified one still has the size the app would ship.
    int8 = next((p for p in files if p.name.split(".")[0] == "model_int8"), None)
    log(f"{step} {name}: evaluating {run.path} on {how['split']} ...")
    report = evaluate(run, out=folder / f"{run.model_file().name}-{how['split']}", **how)
    fp32_mb = round(report["params"] * 4 / 1e6, 3) if report["params"] else None
    rows = [_row_from_report(
        report, name=name, format="keras" + (" (flip TTA)" if report.get("tta_flip") else ""),
        fp32_mb=fp32_mb, int8_mb=round(int8.stat().st_size / 1e6, 3) if int8 else None,
        valid_top1=summary.get("best_val_top1", run.read_state().get("best_val_top1")),  # unfinished: best so far
        unfinished=left["note"] if left else None,
        # What the keras row ran is the float32 weights; the .keras file's size counts the format too.
        size_mb=fp32_mb or report["size_mb"])]
    if exported and not files:
        log(f"note: {run.path} has no exported files in {run.path / 'export'} (run `keras-birds export "
            f"{run.path}` first)")
    for path in files if exported else []:
        log(f"{step} {name}: evaluating {path.name} on {how['split']} ...")
        rep = evaluate(path, out=folder / "export" / f"{path.name}-{how['split']}", **how)
        rows.append(_row_from_report(rep, name=name, format=_format_of(path, rep.get("tta_flip")),
                                     int8_mb=rep["size_mb"] if "int8" in path.name else None,
                                     unfinished=left["note"] if left else None))
    return rows


def _notes(split: str, out_dir: Path) -> list:
    return [f"{split} figures from `keras-birds eval` (its reports of each model: {out_dir / 'eval'}); latency and "
            f"throughput measured on the device named in each row, in this process, one model after another",
            "float32 weights MB = parameters x 4 bytes; exported int8 MB = the run's export/model_int8.tflite file "
            "(model_int8.unverified.tflite if it failed the export gate)",
            "valid top-1 = the run's best epoch (summary.json), the epoch it keeps",
            "mean corrupted top-1 (when shown) = from an earlier `keras-birds eval MODEL --corruptions ...` of the "
            "same file, split and data (its robustness.json): the mean over the corruptions and severities it scored",
            "recommended only among rows scored on the same images, and not among the rows of a run whose training "
            "never ended (no model.keras) unless --include-unfinished"]


def write_comparison(rows: list, out_dir, split: str | None, notes=(), title="Comparison",
                     include_unfinished: bool = False) -> Comparison:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    choice = pick(rows, include_unfinished)
    rec = choice["recommended"]
    atomic_write_text(out_dir / "comparison.md", to_markdown(rows, split, title, notes, include_unfinished))
    atomic_write_text(out_dir / "comparison.csv", to_csv(rows))
    atomic_write_json(out_dir / "comparison.json", {
        "split": split, "rows": rows, "notes": list(notes),
        "recommended": None if rec is None else {"name": rec["row"]["name"], "format": rec["row"]["format"],
                                                 "why": rec["why"]},
        "not_ranked": choice["not_ranked"], "include_unfinished": include_unfinished,
        "left_out": [{"row": row_label(r), "why": r["unfinished"]} for r in choice["left_out"]]})
    plot_pareto(rows, out_dir / "pareto.png", split or "", include_unfinished)
    return Comparison(rows, out_dir, split, rec, choice["not_ranked"])
