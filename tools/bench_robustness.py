"""The robustness table of docs/measurements.md: clean and mean corrupted top-1, at severity 3 and over all severities, on
valid and test, for each model, and its relative drop (clean - corrupted) / clean.

    .venv/bin/python tools/bench_robustness.py [LABEL=]MODEL... [--data ROOT] [--out DIR] [--splits valid,test]
        [--severity all|3]

MODEL: a run directory, .keras, .tflite or .onnx file (a bare file needs --data). Each model and split is
`keras-birds eval MODEL --split S --corruptions all --severity all --no-tta-flip --latency-runs 0` (one
pass per image, as an app runs a model, so a run and its .tflite compare directly) with its report in
OUT/<label>-<split>/; a report already there for the same model file, split and data, with the severities
asked for, is reused, so an interrupted table resumes. `--severity 3` alone is 5x quicker (sev 1-5: n/a).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")


def _label(spec: str) -> tuple:
    label, sep, path = spec.partition("=")
    if not sep:
        path = spec
        p = Path(spec)
        label = p.name if p.is_dir() else f"{p.parent.parent.name}/{p.name}" if p.parent.name == "export" else p.name
    return label, path


def _report(path, split, data, out: Path, severities: tuple) -> dict:
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.evaluation.robustness import stored

    previous = out / "report.json"
    if previous.is_file():
        report = json.loads(previous.read_text())
        robust = stored(report)
        if robust and _same_model(robust, path, split, data) and set(severities) <= set(robust["severities"]) \
                and not report.get("tta_flip"):
            print(f"  reusing {previous}", file=sys.stderr)
            return report
    return evaluate(path, split=split, data=data, out=out, latency_runs=0, corruptions="all",
                    severity=",".join(map(str, severities)), tta_flip=False)


def _same_model(robust: dict, path, split: str, data) -> bool:
    """The stored figures are of this model (a run dir: the file eval reads from it), split and data: a
    label reused for another model must not pick up the old one's figures."""
    from keras_birds.evaluation.robustness import data_location
    from keras_birds.inference.context import RunContext

    p = Path(path)
    model = (RunContext(p).model_file() if p.is_dir() else p).resolve()
    return (robust["model_file"] == str(model) and robust["split"] == split
            and (data is None or robust["data"] == data_location(data)))


def _cells(report: dict) -> list:
    rob = report["robustness"]
    clean, sev3 = rob["clean_top1"], rob["by_severity"].get("3")
    mean = rob["mean_corruption_top1"] if rob["severities"] == [1, 2, 3, 4, 5] else None
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    drop = lambda v: "n/a" if v is None else f"{100 * (clean - v) / clean:.1f}%"  # noqa: E731
    return [pct(clean), pct(sev3), drop(sev3), pct(mean), drop(mean)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="[LABEL=]run dir, .keras, .tflite or .onnx")
    ap.add_argument("--data", help="data root [default: each run's own]")
    ap.add_argument("--out", default="robustness", help="report folder [default: robustness/]")
    ap.add_argument("--splits", default="valid,test")
    ap.add_argument("--severity", default="all", help="all (1-5) or severities, e.g. 3")
    args = ap.parse_args(argv)
    from keras_birds.data.corruptions import parse_severities

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    severities = parse_severities(args.severity)
    header = ["model"] + [f"{s} {c}" for s in splits for c in ("clean", "sev 3", "sev 3 drop", "sev 1-5", "sev 1-5 drop")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for spec in args.models:
        label, path = _label(spec)
        cells = []
        for split in splits:
            print(f"{label} [{split}] ...", file=sys.stderr)
            out = Path(args.out) / f"{label.replace('/', '_')}-{split}"
            cells += _cells(_report(path, split, args.data, out, severities))
        lines.append("| " + " | ".join([label] + cells) + " |")
        print(lines[-1], file=sys.stderr)
    table = "\n".join(lines)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "robustness.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
