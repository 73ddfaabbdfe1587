"""The size/speed half of the study's table, anywhere in minutes: every recipe's architecture built
offline with random weights (525 species) at the input size its recipes train at, its parameters,
float32 MB, Keras batch-1 latency and the int8 .tflite file's size and latency on this machine.
Writes comparison.md/.csv/.json and a plot.

    python tools/benchmark_zoo.py                              # all recipes/, int8 export too (~10 min on 2 CPUs)
    python tools/benchmark_zoo.py --models efficientnet_lite0,resnet18 --no-export --out /tmp/zoo

Accuracy columns stay empty: they need trained runs (`keras-birds compare RUN...`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras_birds  # noqa: F401  (sets the Keras backend)

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    from keras_birds.comparison.compare import write_comparison
    from keras_birds.comparison.zoo import N_CLASSES, recipe_models, zoo_rows
    from keras_birds.inference.latency import cpu_description
    from keras_birds.models.registry import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma-separated model names [default: every model a file in recipes/ uses]")
    ap.add_argument("--classes", type=int, default=N_CLASSES, help="head size (default: %(default)s species)")
    ap.add_argument("--no-export", action="store_true", help="skip the int8 .tflite conversion (much faster)")
    ap.add_argument("--latency-runs", type=int, default=20)
    ap.add_argument("--out", default=str(REPO / "runs" / "zoo"))
    args = ap.parse_args(argv)

    sizes = recipe_models(REPO / "recipes")  # each model at the sizes its recipes train at
    models = args.models.split(",") if args.models else list(sizes)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"error: unknown model(s) {', '.join(unknown)} (known: {', '.join(MODELS)})")
    t0 = time.time()
    rows = zoo_rows(models, image_sizes=sizes, n_classes=args.classes, export_int8=not args.no_export, latency_runs=args.latency_runs)
    notes = [f"random-init builds with a {args.classes}-species head at the input size its recipes train at "
             "(`keras-birds models`); "
             f"{args.latency_runs} timed batch-1 runs after warm-up, on {cpu_description()}",
             "accuracy needs trained runs: keras-birds compare RUN_DIR..."]
    result = write_comparison(rows, args.out, None, notes=notes, title="Model zoo: size and speed (random-init builds)")
    print(result.files["comparison.md"].read_text(encoding="utf-8"))
    print(f"wrote {', '.join(str(p) for p in result.files.values())} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
