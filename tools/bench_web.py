"""The exported web page against `keras-birds predict`: same answers? how fast? how big? Plus its screenshots.

    .venv/bin/python tools/bench_web.py RUN [--data ../shared/data/birds-dev] [--split test] [--out docs/web]

RUN: a run directory whose export has a page (`keras-birds export RUN --web`), its export folder or the
page's folder. On every image of --data's --split, in headless Chromium (the system's `chromium`, through
Playwright) from a server on 127.0.0.1, with the page's LiteRT build for Chromium (relaxed SIMD) and
with the compat build other browsers load (?runtime=compat):
  agreement      top-1 equal to predict on the same .tflite, the answer (species or "unknown") equal,
                 and the largest difference of the top probability
  load           the page's own load time (model.json, model file, LiteRT.js, compile, first run) over
                 --loads fresh browser contexts, median, beside `keras-birds predict`'s cold start (the
                 process, one image: what a person waits for the first answer)
  per image      the page's model time and image preparation (decode + resize), medians, and its wall time
                 per image over the whole split; predict's wall time per image over the split (batch 32, as
                 the command runs) and the .tflite's batch-1 model time in Python (LiteRT, all cores and one
                 thread: the page runs WebAssembly on one thread)
  size           the page folder, in all and by part
Writes OUT/bench.json and OUT/desktop.png (1280 x 860) and OUT/phone.png (390 x 844 CSS px, 2x).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def compare(page_results, images, model) -> dict:
    from keras_birds.prediction.predict import predict

    ours = predict([str(p) for p in images], model, progress=False)
    by_path = {r["path"]: r for r in ours.results}
    top1 = answer = 0
    worst = 0.0
    for path, got in zip(images, page_results):
        want = by_path[str(path)]
        if got["state"] != "done":
            continue
        top1 += got["top"][0]["species"] == want["top_k"][0]["species"]
        answer += got["species"] == want["species"]
        worst = max(worst, abs(got["top"][0]["probability"] - want["top_k"][0]["probability"]))
    return {"images": len(images), "top1_agree": top1, "answer_agree": answer, "max_top_prob_diff": worst,
            "errors": sum(r["state"] != "done" for r in page_results)}


def page_run(folder, images, query="", loads: int = 3) -> dict:
    from keras_birds.export.web.browser import PageSession

    load_ms, wall_s = [], []
    for _ in range(max(loads - 1, 0)):  # fresh contexts: nothing cached between them
        with PageSession(folder, query=query) as s:
            load_ms.append(s.load_ms)
            wall_s.append(s.wall_load_s)
    with PageSession(folder, query=query) as s:
        load_ms.append(s.load_ms)
        wall_s.append(s.wall_load_s)
        started = time.perf_counter()
        results = s.classify(images)
        wall = time.perf_counter() - started
        runtime, outside = s.runtime, list(s.outside)
    done = [r for r in results if r["state"] == "done"]
    return {"results": results, "runtime": runtime, "outside_requests": outside,
            "load_ms_median": statistics.median(load_ms), "load_ms": [round(x) for x in load_ms],
            "load_wall_s_median": round(statistics.median(wall_s), 3),
            "model_ms_median": round(statistics.median(r["modelMs"] for r in done), 1),
            "prep_ms_median": round(statistics.median(r["prepMs"] for r in done), 1),
            "wall_ms_per_image": round(1000 * wall / len(images), 1)}


def predict_timing(images, model) -> dict:
    import numpy as np

    from keras_birds.data.images import load_rgb
    from keras_birds.inference.runners import TFLiteRunner
    from keras_birds.prediction.predict import predict

    predict([str(images[0])], model, progress=False)  # warm: imports, first interpreter
    started = time.perf_counter()
    predict([str(p) for p in images], model, progress=False)
    wall = time.perf_counter() - started
    def batch1_ms(runner) -> float:
        x = load_rgb(images[0], runner.image_size)[None]
        for _ in range(5):
            runner.predict(x)
        times = []
        for _ in range(50):
            t = time.perf_counter()
            runner.predict(x)
            times.append(1000 * (time.perf_counter() - t))
        return round(float(np.median(times)), 2)

    runner = TFLiteRunner(model)
    all_cores, one_thread = batch1_ms(runner), batch1_ms(TFLiteRunner(model, threads=1))
    cold = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("keras-birds")), "predict", str(images[0]), "--model",
                        str(model), "-q"], check=True, capture_output=True)
        cold.append(time.perf_counter() - t)
    return {"wall_ms_per_image": round(1000 * wall / len(images), 1),
            "model_ms_b1_median": all_cores, "model_ms_b1_1thread_median": one_thread, "device": runner.device,
            "cli_cold_start_one_image_s_median": round(statistics.median(cold), 2)}


def folder_size(folder: Path) -> dict:
    parts = {"total": 0, "model": 0, "wasm_relaxed_simd": 0, "wasm_compat": 0, "page_and_js": 0}
    model = json.loads((folder / "model.json").read_text())["file"]
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        n = p.stat().st_size
        parts["total"] += n
        key = ("model" if p.name == model else "wasm_compat" if "compat" in p.name else
               "wasm_relaxed_simd" if p.name.startswith("litert_wasm_internal") else "page_and_js")
        parts[key] += n
    return {k: round(v / 1e6, 2) for k, v in parts.items()}


def screenshots(folder, images, out: Path):
    from keras_birds.export.web.browser import PageSession

    with PageSession(folder, viewport=(1280, 860)) as s:
        s.classify(images[:6])
        s.page.evaluate("window.scrollTo(0, 0)")
        s.screenshot(out / "desktop.png")
    with PageSession(folder, viewport=(390, 844), mobile=True, scale=2) as s:
        s.classify(images[:3])
        s.page.evaluate("window.scrollTo(0, 0)")
        s.screenshot(out / "phone.png")


def _shown(path) -> str:
    """A path as the report records it, never an absolute path of this machine: relative as given; under the
    repo's parent, relative to the repo (../shared/data/...); elsewhere, its last three parts (run/export/web)."""
    if not Path(path).is_absolute():
        return str(path)
    resolved = Path(path).resolve()
    if resolved.is_relative_to(REPO.parent):
        return os.path.relpath(resolved, REPO)
    return str(Path(*resolved.parts[-3:]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "birds-dev"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default=str(REPO / "docs" / "web"))
    ap.add_argument("--loads", type=int, default=3, help="Fresh page loads timed (median).")
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from keras_birds.export.web.serve import page_folder

    folder = page_folder(args.run)
    info = json.loads((folder / "model.json").read_text())
    model = folder / info["file"]
    images = sorted(p for p in (Path(args.data) / args.split).rglob("*") if p.is_file())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"page": _shown(folder), "model": info, "data": _shown(args.data), "split": args.split,
              "images": len(images), "cpu": f"{os.cpu_count()} cores", "size_mb": folder_size(folder)}
    for name, query in (("chromium", ""), ("compat", "?runtime=compat")):
        run = page_run(folder, images, query, args.loads)
        report[name] = {**compare(run.pop("results"), images, model), **run}
        print(name, json.dumps(report[name]), flush=True)
    report["predict"] = predict_timing(images, model)
    print("predict", json.dumps(report["predict"]), flush=True)
    screenshots(folder, images, out)
    from importlib.metadata import version

    from keras_birds.export.web.browser import find_chromium

    report["browser"] = subprocess.run([find_chromium(), "--version"], capture_output=True, text=True).stdout.strip()
    report["playwright"] = version("playwright")
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'bench.json'}, {out / 'desktop.png'}, {out / 'phone.png'}")


if __name__ == "__main__":
    main()
