"""Helpers of tests/reporting: run directories as train, eval, export and compare write them, without training: the report reads
files only, so files with the verbs' shapes (keys taken from real birds-dev runs) test it in seconds."""
import json
from pathlib import Path

import numpy as np

from keras_birds.comparison.plot import plot_pareto
from keras_birds.comparison.table import new_row, recommend
from keras_birds.run_dir import RunDir, atomic_write_json


def _per_class(names, rng):
    out = []
    for i, name in enumerate(names):
        correct = int(rng.random() < 0.85)
        out.append({"class": name, "index": i, "n": 1, "correct": correct, "top1": float(correct),
                    "top5": 1.0, "mean_confidence": 0.7, "predicted_as_this": 1, "most_confused_with": None,
                    "most_confused_count": 0})
    return out


def _calibration(rng):
    edges = np.linspace(0, 1, 16)
    bins = [{"lower": float(a), "upper": float(b), "count": int(rng.integers(0, 20)),
             "accuracy": float(rng.random()), "confidence": float((a + b) / 2)} for a, b in zip(edges[:-1], edges[1:])]
    return {"ece": float(rng.random() / 4), "n_bins": 15, "bins": bins, "mean_confidence": 0.6}


def write_run(root: Path, name: str, names, data, seed=0, epochs=4, export=True, with_eval=True) -> RunDir:
    """A finished run of `epochs` epochs with an eval report on test and, optionally, an export."""
    rng = np.random.default_rng(seed)
    run = RunDir(root / name)
    run.path.mkdir(parents=True)
    atomic_write_json(run.recipe_json, {"model": "efficientnet_lite0", "image_size": 224, "data": str(data),
                                        "epochs": [1, epochs - 1], "name": name})
    run.write_classes(names)
    rows = [{"epoch": e, "phase": 1 if e == 1 else 2, "loss": 2 / e, "top1": 0.5 + e / 20, "top5": 0.9,
             "val_loss": 2.2 / e, "val_top1": 0.4 + e / 25, "val_top5": 0.8, "lr": 1e-3 / e, "seconds": 10.0}
            for e in range(1, epochs + 1)]
    run.write_metrics(rows)
    atomic_write_json(run.summary_json, {"best_epoch": epochs, "best_val_top1": rows[-1]["val_top1"],
                                         "best_val_top5": 0.8, "train_images": 3 * len(names),
                                         "wall_seconds_this_session": 60.0})
    if with_eval:
        per_class = _per_class(names, rng)
        wrong = [c["class"] for c in per_class if not c["correct"]]
        confused = [{"true": t, "predicted": names[(names.index(t) + 1) % len(names)], "count": 1,
                     "fraction_of_true": 1.0} for t in wrong[:25]]
        folder = run.eval_dir / "model.keras-test"
        atomic_write_json(folder / "report.json", {
            "model": str(run.path), "model_file": str(run.model_keras), "kind": "keras", "split": "test",
            "data": str(data), "n_images": len(names), "n_classes": len(names),
            "top1": float(np.mean([c["top1"] for c in per_class])), "top5": 1.0, "macro_top1": 0.8,
            "ece": 0.1, "created": "2026-12-01T00:00:00+00:00", "report_dir": str(folder),
            "most_confused": confused, "calibration": _calibration(rng), "per_class": per_class})
    if export:
        _write_export(run, rng)
    return run


def _write_export(run: RunDir, rng):
    files = []
    for q, mb in (("none", 14.1), ("int8", 4.2)):
        files.append({"file": f"model_{'fp32' if q == 'none' else q}.tflite", "format": "tflite", "quantize": q,
                      "size_mb": mb, "size_vs_keras": round(mb / 14.8, 2), "verified": True,
                      "latency_ms_b1_median": float(rng.uniform(5, 20)), "latency_ms_b1_1thread_median": 30.0,
                      "device": "test CPU, LiteRT 2 threads",
                      "gate": {"top1": 0.9, "keras_top1": 0.904, "top1_drop_points": 0.4, "drop_bound_points": -1.5,
                               "lost": 1, "gained": 0, "passed": True}})
    atomic_write_json(run.path / "export" / "export.json", {
        "run": str(run.path), "validation_images": 125, "passed": True,
        "gate": {"quantised": "top-1 drop: 95% lower bound <= 1.0 point", "split": "valid"},
        "keras": {"size_mb": 14.842, "latency_ms_b1_median": 300.0, "device": "test CPU"}, "files": files})


def write_comparison(out: Path, runs: list, split="test") -> dict:
    """comparison.json and pareto.png as `keras-birds compare --exported` writes them."""
    rows = []
    for k, run in enumerate(runs):
        report = json.loads((run.eval_dir / "model.keras-test" / "report.json").read_text())
        rows.append(new_row(name=run.path.name, format="keras", params=3_573_149 + k, fp32_mb=14.293, int8_mb=4.2,
                            valid_top1=0.904, top1=report["top1"], top5=0.976, latency_ms=100.0 + 7 * k,
                            throughput_img_s=12.5, device="test CPU", size_mb=14.293,
                            source=str(run.model_keras)))
        rows.append(new_row(name=run.path.name, format="tflite int8", params=3_573_149 + k, int8_mb=4.2,
                            top1=report["top1"] - 0.008, top5=0.97, latency_ms=9.5 + k, throughput_img_s=99.0,
                            device="test CPU, LiteRT", size_mb=4.2,
                            source=str(run.path / "export" / "model_int8.tflite")))
    rec = recommend(rows)
    out.mkdir(parents=True, exist_ok=True)
    data = {"split": split, "rows": rows, "notes": ["made by the test"],
            "recommended": {"name": rec["row"]["name"], "format": rec["row"]["format"], "why": rec["why"]}}
    atomic_write_json(out / "comparison.json", data)
    plot_pareto(rows, out / "pareto.png", split)
    return data


def write_audit(out: Path, data) -> Path:
    """audit.json and one thumbnail sheet, as `keras-birds clean` writes them."""
    from PIL import Image

    (out / "sheets").mkdir(parents=True)
    Image.new("RGB", (1100, 500), (200, 120, 40)).save(out / "sheets" / "near_duplicates.png")
    atomic_write_json(out / "audit.json", {
        "data": str(data), "root": str(data), "created": "2026-12-01T00:00:00+00:00",
        "images": {"train": 375, "valid": 125, "test": 125},
        "issues": {"near_duplicates": {"train": 2, "valid": 0, "test": 0}, "dark": {"train": 0, "valid": 0, "test": 0}},
        "excluded_files": 0, "excluded": {"by_split": {"train": 0, "valid": 0, "test": 0}, "by_reason": {}},
        "species_missing": {}, "sheets": {"near_duplicates": "sheets/near_duplicates.png"}})
    (out / "report.md").write_text("# Data audit\n")
    return out
