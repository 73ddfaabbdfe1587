"""Run directories and the files next to them -> plain data for the report. JSON and CSV only.

A piece a run lacks (no export, no eval of a split, an unreadable file) is
{"status": "not measured", "why": ...}, never an error: a report of half-finished runs is still a
report. Every piece keeps the paths it was read from ("source"/"sources"), so the page can say which.

Where things are (run_dir.py, the verbs' own docstrings):
    RUN/recipe.json, summary.json, metrics.json|csv      train
    RUN/eval/<file>-<split>/report.json, robustness.json  eval of the run's model (--corruptions, --unknown)
    RUN/export/export.json, RUN/export/eval/...           export, and eval of an exported file
    RUN/unknown.json                                      calibrate-unknown
    DIR/comparison.json, pareto.png                       compare (--out DIR; found next to the runs)
"""
from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.inference.context import unfinished
from keras_birds.run_dir import RunDir

NOT_MEASURED = "not measured"
SPLIT_ORDER = ("test", "valid", "train")  # the split a run's per-class figures come from, first found


def missing(why: str) -> dict:
    return {"status": NOT_MEASURED, "why": why}


def measured(piece) -> bool:
    return isinstance(piece, dict) and piece.get("status") != NOT_MEASURED


def load_json(path: Path):
    """(object, None), or (None, why) when the file is absent or not JSON: a reason for the page."""
    path = Path(path)
    if not path.is_file():
        return None, f"no {path.name} in {path.parent}"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"{path} is not readable JSON ({type(e).__name__})"


# -- one run ----------------------------------------------------------------------------------
def training(run: RunDir) -> dict:
    """Per-epoch rows (metrics.json, else metrics.csv) and the best epoch (summary.json, else state.json)."""
    rows, why = load_json(run.metrics_json)
    source = run.metrics_json
    if rows is None and run.metrics_csv.is_file():
        with open(run.metrics_csv, newline="", encoding="utf-8") as f:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
        source, why = run.metrics_csv, None
    if not isinstance(rows, list) or not rows:
        return missing(why or f"{source} holds no finished epoch")
    summary, _ = load_json(run.summary_json)
    state, _ = load_json(run.state_json)
    best_from = summary if isinstance(summary, dict) and summary.get("best_epoch") else state
    best_from = best_from if isinstance(best_from, dict) else {}
    sources = [str(source)] + [str(p) for p, d in ((run.summary_json, summary), (run.state_json, state))
                               if d is best_from and best_from]
    return {"rows": rows, "best_epoch": best_from.get("best_epoch"), "best_val_top1": best_from.get("best_val_top1"),
            "summary": summary if isinstance(summary, dict) else {}, "sources": sources}


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


EVAL_KEYS = ("model_file", "kind", "split", "data", "n_images", "n_classes", "top1", "top5", "macro_top1", "ece",
             "size_mb", "latency_ms_b1_median", "device", "tta_flip", "created", "most_confused", "calibration",
             "per_class", "open_set")


def eval_reports(run: RunDir) -> list:
    """Every eval report of the run's model (RUN/eval) and of its exported files (RUN/export/eval)."""
    found = []
    for folder in (run.eval_dir, run.path / "export" / "eval"):
        for path in sorted(folder.glob("*/report.json")) if folder.is_dir() else []:
            item = eval_item(path)
            if item is not None:  # a foreign or broken file: the other reports still count
                found.append(item)
    return found


def eval_item(path: Path) -> dict | None:
    """One eval report.json (and the robustness.json beside it) as the report uses it, or None."""
    report, _ = load_json(path)
    if not isinstance(report, dict) or "top1" not in report:
        return None
    item = {k: report.get(k) for k in EVAL_KEYS}
    item["source"] = str(path)
    for name in ("reliability.png", "top_confusions.png", "confusion_matrix.png"):
        if (path.parent / name).is_file():
            item[name] = str(path.parent / name)
    robust, _ = load_json(path.parent / "robustness.json")
    if isinstance(robust, dict) and "mean_corruption_top1" in robust:
        item["robustness"] = dict(robust, source=str(path.parent / "robustness.json"),
                                  heatmap=_file(path.parent / "corruptions.png"),
                                  samples=_file(path.parent / "corruption_samples.png"))
    return item


def _file(path: Path):
    return str(path) if path.is_file() else None


def main_eval(reports: list, split: str | None):
    """The report of the run's own Keras model on `split` (else test, valid, train), or None."""
    own = [r for r in reports if r.get("kind") == "keras" and "/export/eval/" not in r["source"].replace("\\", "/")]
    for s in ([split] if split else []) + list(SPLIT_ORDER):
        hits = [r for r in own if r.get("split") == s]
        if hits:
            return max(hits, key=lambda r: r.get("created") or "")
    return None


def export_piece(run: RunDir) -> dict:
    path = run.path / "export" / "export.json"
    data, why = load_json(path)
    if not isinstance(data, dict) or "files" not in data:
        return missing((why or f"{path} is not a keras-birds export.json")
                       + f": run `keras-birds export {run.path}`")
    return dict(data, source=str(path))


def collect_run(path, split: str | None = None) -> dict:
    run = RunDir(RunDir.existing(path, "report takes the --out folders of `keras-birds train` runs").path.resolve())
    recipe, why = load_json(run.recipe_json)
    if not isinstance(recipe, dict):
        raise UserError(f"{run.recipe_json}: {why or 'not a JSON object'}: not a keras-birds run")
    reports = eval_reports(run)
    rule, _ = load_json(run.path / "unknown.json")
    return {
        "path": str(run.path), "name": recipe.get("name") or recipe.get("model") or run.path.name,
        "model": recipe.get("model"), "image_size": recipe.get("image_size"), "data": recipe.get("data"),
        "epochs": recipe.get("epochs"), "recipe_source": str(run.recipe_json), "unfinished": unfinished(run),
        "training": training(run), "evals": reports, "main_eval": main_eval(reports, split) or missing(
            f"no eval report in {run.eval_dir}: run `keras-birds eval {run.path} --split test`"),
        "export": export_piece(run),
        "unknown_rule": dict(rule, source=str(run.path / "unknown.json")) if isinstance(rule, dict) else None,
    }


# -- the comparison ---------------------------------------------------------------------------
def _row_run(source, runs: list, base: Path):
    """The index of the run a comparison row's model file belongs to, or None. compare stores the path as
    it was given: a relative one is taken from `base` (the comparison folder's parent, which is compare's
    working folder by default); only when no run is there (moved) does the run's folder name decide."""
    if not source:
        return None
    src = Path(source)
    where = src if src.is_absolute() else base / src
    roots = [Path(run["path"]) for run in runs]
    owner = next((d for d in where.parents if (d / "recipe.json").is_file()), None)  # the run it names
    if owner is not None:
        return next((i for i, root in enumerate(roots) if root == owner.resolve()), None)
    if src.is_absolute():
        return None
    return next((i for i, root in enumerate(roots) if root.name in src.parts[:-1]), None)


def comparison_candidates(runs: list) -> list:
    """Where `keras-birds compare` leaves its files by default and next to the runs."""
    places = [Path("comparison")]
    for run in runs:
        p = Path(run["path"]).resolve()
        places += [p.parent / "comparison", p.parent.parent / "comparison"]
    return list(dict.fromkeys(places))


def collect_comparison(runs: list, given=None) -> dict:
    """comparison.json of these runs: the one given (a folder or the file), else the first found next to
    them whose rows all name one of them (one that also compares other runs is not theirs)."""
    if given:
        path = Path(given)
        path = path / "comparison.json" if path.is_dir() else path
        data, why = load_json(path)
        if not isinstance(data, dict) or "rows" not in data:
            raise UserError(f"--comparison {given}: {why or 'not a comparison.json'} (write one with "
                            f"`keras-birds compare RUN_DIR... --out DIR`)")
        return _comparison(path, data, runs)
    others = None
    for folder in comparison_candidates(runs):
        data, _ = load_json(folder / "comparison.json")
        rows = [r for r in data.get("rows") or [] if isinstance(r, dict)] if isinstance(data, dict) else []
        owners = [_row_run(r.get("source"), runs, folder.resolve().parent) for r in rows]
        if owners and None not in owners:
            return _comparison(folder / "comparison.json", data, runs)
        if others is None and any(o is not None for o in owners):
            names = dict.fromkeys(r.get("name") for r, o in zip(rows, owners) if o is None)
            others = (f"{folder / 'comparison.json'} also compares runs not in this report ({', '.join(map(str, names))}); "
                      f"pass --comparison {folder} to show it anyway, or compare these runs alone")
    return missing(others or "no comparison.json of these runs next to them: run `keras-birds compare RUN_DIR... "
                   "--exported --out DIR`, then pass --comparison DIR")


def _comparison(path: Path, data: dict, runs: list) -> dict:
    base = path.resolve().parent.parent
    rows = [dict(r, run=_row_run(r.get("source"), runs, base)) for r in data["rows"]]
    covered = {r["run"] for r in rows}
    path = path.resolve()
    return {"source": str(path), "split": data.get("split"), "rows": rows, "notes": data.get("notes", []),
            "recommended": data.get("recommended"), "pareto": _file(path.parent / "pareto.png"),
            "not_ranked": data.get("not_ranked"), "left_out": data.get("left_out") or [],
            "runs_absent": [run["label"] for i, run in enumerate(runs) if i not in covered],
            "other_runs": list(dict.fromkeys(r.get("name") for r in rows if r["run"] is None))}


def collect(run_paths, comparison=None) -> dict:
    """Everything the report shows about these runs, as plain data (the data set: dataset.py)."""
    if not run_paths:
        raise UserError("report needs at least one run directory")
    # The comparison's split decides which eval report a run's per-class figures come from.
    runs = [collect_run(p) for p in run_paths]
    _unique_labels(runs)
    comp = collect_comparison(runs, comparison)
    if measured(comp) and comp.get("split"):
        runs = [dict(r, main_eval=main_eval(r["evals"], comp["split"]) or _compared(comp, i) or r["main_eval"])
                for i, r in enumerate(runs)]
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": runs, "comparison": comp}


def _compared(comp: dict, i: int):
    """The eval report compare wrote of run i's own model (OUT/eval/...), for a run with none in RUN/eval."""
    for row in comp["rows"]:
        if row["run"] == i and str(row.get("format") or "").startswith("keras") and row.get("report"):
            item = eval_item(Path(row["report"]))
            if item is not None:
                return item
    return None


def _unique_labels(runs: list):
    """Two runs of one recipe: tell them apart by folder, as compare does."""
    seen = {}
    for r in runs:
        seen[r["name"]] = seen.get(r["name"], 0) + 1
    for r in runs:
        r["label"] = r["name"] if seen[r["name"]] == 1 else f"{r['name']} [{Path(r['path']).name}]"
