"""What each verb costs as the data grows: wall time, peak memory and disk written at ~1k, 10k and 90k images.

    .venv/bin/python tools/bench_scale.py --sizes 1000,10000,90000 --out scale/

For each size it writes a synthetic BIRDS-525-shaped set with planted faults (tools/make_synthetic_birds.py
--faults: real 224x224 JPEGs), then runs every verb as a user would, one subprocess at a time:
  clean        keras-birds clean --data SET (and its recall of the planted faults)
  train-data   index + uint8 cache build, one epoch of the augmenting train loader into a step that does
               nothing, and a few real EfficientNet-Lite0 steps that project the epoch (not the model's cost)
  eval, export (int8 calibration + the gate), predict (the test split through the int8 file),
  add-species (5 new species), calibrate-unknown, compare, report
The verbs after train-data use one run per size: EfficientNet-Lite0 trained one head epoch on one image
per species of the set (links), whose recipe.json then names the whole set as its data, so each verb reads
the full set as it would after a real training. Per verb: seconds, the peak RSS of the process and its
children together (and the part of it that is not file pages: the memory-mapped cache aside), and the
bytes they wrote. Results land in OUT/results.json after each verb: a second run skips what is there
(--redo VERB,... measures again), so it resumes after an interruption and runs one size at a time.
OUT/scale.md is the table; OUT/scale.png the log-log plot, each verb's fitted exponent in its legend.

Sizes (S species x train/valid/test images each, BIRDS-525's split sizes at the top): 1,000 = 100 x 8/1/1
(a 1k set cannot give 525 species an image in each split), 10,000 = 525 x 17/1/1, 90,000 = 525 x 161/5/5;
any other N: min(525, N/10) species, scaled alike. Needs psutil (installed with tensorflow-datasets).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
VERBS = ("clean", "train-data", "eval", "export", "predict", "add-species", "calibrate-unknown", "compare", "report")
NEW_SPECIES = 5


def plan(n: int) -> dict:
    """{species, train, eval}: images a species per split for a set of about n images."""
    species = max(2, min(525, n // 10))
    held_out = 5 if n >= 80_000 else 1
    return {"species": species, "train": max(1, round((n - 2 * species * held_out) / species)), "eval": held_out}


class TreeMonitor(threading.Thread):
    """Samples a process and its descendants every 0.2 s: peak RSS summed over them, peak RSS without file
    pages (a memory-mapped cache's pages are file pages), and bytes written (per process, its last count)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.root, self.stop = psutil.Process(pid), threading.Event()
        self.peak_rss = self.peak_anon = 0
        self.written = {}

    def run(self):
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            rss = anon = 0
            for p in procs:
                try:
                    m = p.memory_info()
                    rss, anon = rss + m.rss, anon + m.rss - m.shared
                    self.written[p.pid] = p.io_counters().write_bytes
                except psutil.Error:
                    pass  # ended between listing and reading
            self.peak_rss, self.peak_anon = max(self.peak_rss, rss), max(self.peak_anon, anon)
            self.stop.wait(0.2)


def measure(cmd: list, log: Path, env=None) -> dict:
    """Run cmd to the end, its output into log; wall seconds, peak memory, bytes written, exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **(env or {})})
        mon = TreeMonitor(proc.pid)
        mon.start()
        code = proc.wait()
        mon.stop.set()
        mon.join()
    return {"seconds": round(time.time() - started, 2), "peak_rss_mb": round(mon.peak_rss / 2**20, 1),
            "peak_anon_mb": round(mon.peak_anon / 2**20, 1), "written_mb": round(sum(mon.written.values()) / 2**20, 1),
            "exit": code}


def _kb(*args) -> list:
    return [REPO / ".venv" / "bin" / "keras-birds", *args] if (REPO / ".venv").is_dir() else ["keras-birds", *args]


def make_set(out: Path, n: int) -> Path:
    import make_synthetic_birds

    root, p = out / "data" / str(n), plan(n)
    make_synthetic_birds.make(root, species=p["species"], per_species=p["train"], eval_per_species=p["eval"],
                              faults=True)
    return root


def new_species(out: Path) -> Path:
    """NEW_SPECIES species no set has ("SYNTH 526" on): 3 train, 1 valid and 1 test photos each."""
    import make_synthetic_birds

    root = out / "data" / "new-species"
    if not (root / "done").is_file():
        full = out / "data" / ".new-species-all"
        make_synthetic_birds.make(full, species=525 + NEW_SPECIES, per_species=3, eval_per_species=1)
        for split in ("train", "valid", "test"):
            for k in range(526, 526 + NEW_SPECIES):
                shutil.copytree(full / split / f"SYNTH {k}", root / split / f"SYNTH {k}", dirs_exist_ok=True)
        shutil.rmtree(full)
        (root / "done").write_text("")
    return root


def seed_run(work: Path, data: Path) -> Path:
    """A Lite0 run over `data`'s species, trained one head epoch on one linked image per species, whose
    recipe.json then names the whole of `data`: every later verb reads the full set."""
    run = work / "run"
    if (run / "model.keras").is_file():
        return run
    seed = work / "seed-data"
    shutil.rmtree(seed, ignore_errors=True)
    for split in ("train", "valid", "test"):
        for species in sorted(p for p in (data / split).iterdir() if p.is_dir()):
            first = min(p for p in species.iterdir() if p.name[0].isdigit())
            (seed / split / species.name).mkdir(parents=True)
            (seed / split / species.name / first.name).symlink_to(first)
    done = subprocess.run([str(c) for c in _kb("train", REPO / "recipes" / "effnet_lite0.py", "--data", seed,
                                               "--epochs", "1,0", "--set", "head_init=random", "-q", "--out", run,
                                               "--overwrite")], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the seed run failed:\n{done.stderr[-2000:]}")
    recipe = json.loads((run / "recipe.json").read_text())
    recipe["data"] = str(data.resolve())
    (run / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    return run


def verb_command(verb: str, data: Path, work: Path, out: Path) -> tuple:
    """(command, folders it writes, env) of one verb at one size."""
    run = work / "run"
    me = [sys.executable, Path(__file__).resolve()]
    new = new_species(out) if verb in ("add-species", "calibrate-unknown") else None
    cmds = {
        "clean": (_kb("clean", "--data", data, "--out", work / "clean", "-q"), [work / "clean"]),
        "train-data": (me + ["--train-data", data, "--out", work / "train-data"],
                       [work / "train-data", work / "cache"]),
        "eval": (_kb("eval", run, "--split", "test", "--latency-runs", "10", "-q", "--out", work / "eval"),
                 [work / "eval"]),
        "export": (_kb("export", run, "--tflite", "--quantize", "int8", "--latency-runs", "10", "--out",
                       work / "export"), [work / "export"]),
        "predict": (_kb("predict", data / "test", "--model", work / "export" / "model_int8.tflite", "--json"), []),
        "add-species": (_kb("add-species", run, "--data", new, "--out", work / "added"),
                        [work / "added"]),
        "calibrate-unknown": (_kb("calibrate-unknown", run, "--unknown", new), []),
        "compare": (_kb("compare", run, "--latency-runs", "5", "-q", "--out", work / "comparison"),
                    [work / "comparison"]),
        "report": (_kb("report", run, "--clean", work / "clean", "--out", work / "report"), [work / "report"]),
    }
    cmd, outputs = cmds[verb]
    return cmd, outputs, {"KERAS_BIRDS_CACHE": str(work / "cache")} if verb == "train-data" else {}


def run_size(n: int, out: Path, verbs: list, redo: set, results: dict, save) -> None:
    data = make_set(out, n)
    work = out / "work" / str(n)
    images = sum(1 for _ in data.glob("*/*/*.jpg"))
    for verb in verbs:
        key = f"{n}/{verb}"
        if key in results and verb not in redo and results[key].get("exit") == 0:
            continue
        if verb not in ("clean", "train-data"):
            seed_run(work, data)
        cmd, outputs, env = verb_command(verb, data, work, out)
        for folder in outputs:
            shutil.rmtree(folder, ignore_errors=True)  # measured from scratch, no cache of an earlier try
        print(f"[{n}] {verb}: {' '.join(str(c) for c in cmd[1:])}", file=sys.stderr, flush=True)
        row = {"size": n, "images": images, "verb": verb, **measure(cmd, work / "logs" / f"{verb}.log", env)}
        if verb == "clean" and row["exit"] == 0:
            import plant_faults

            row["clean_recall"] = plant_faults.recall(data, work / "clean" / "issues.csv")
        if verb == "train-data" and row["exit"] == 0:
            row.update(json.loads((work / "train-data" / "train_data.json").read_text()))
        results[key] = row
        save(results)
        print(f"[{n}] {verb}: {row['seconds']} s, peak RSS {row['peak_rss_mb']} MB, exit {row['exit']}",
              file=sys.stderr, flush=True)


def exponents(results: dict) -> dict:
    """{verb: (fitted exponent over all sizes, exponent between the two largest sizes)} of the seconds."""
    import numpy as np

    out = {}
    for verb in VERBS:
        rows = sorted((r["images"], r["seconds"]) for r in results.values() if r["verb"] == verb and r["exit"] == 0)
        if len(rows) >= 2:
            x, y = np.log([r[0] for r in rows]), np.log([max(r[1], 1e-3) for r in rows])
            out[verb] = (float(np.polyfit(x, y, 1)[0]), float((y[-1] - y[-2]) / (x[-1] - x[-2])))
    return out


def write_table(results: dict, out: Path) -> str:
    fits = exponents(results)
    lines = ["| verb | images | seconds | peak RSS MB | without file pages MB | written MB | notes |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in sorted(results.values(), key=lambda r: (VERBS.index(r["verb"]), r["images"])):
        notes = [] if r["exit"] == 0 else [f"FAILED (exit {r['exit']}, see work/{r['size']}/logs/{r['verb']}.log)"]
        if "clean_recall" in r:
            found = sum(f for f, _ in r["clean_recall"].values())
            notes.append(f"recall {found}/{sum(t for _, t in r['clean_recall'].values())}")
        if "projected_epoch_seconds" in r:
            notes.append(f"cache {r['cache_seconds']} s, loader epoch {r['loader_epoch_seconds']} s, "
                         f"projected Lite0 epoch {r['projected_epoch_seconds']} s")
        lines.append(f"| {r['verb']} | {r['images']:,} | {r['seconds']} | {r['peak_rss_mb']} | {r['peak_anon_mb']} | "
                     f"{r['written_mb']} | {'; '.join(notes)} |")
    lines += ["", "| verb | exponent (all sizes) | exponent (two largest) |", "|---|---:|---:|"]
    lines += [f"| {v} | {a:.2f} | {b:.2f} |" for v, (a, b) in fits.items()]
    text = "\n".join(lines) + "\n"
    (out / "scale.md").write_text(text)
    _plot(results, fits, out / "scale.png")
    return text


def _plot(results: dict, fits: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for verb, (slope, _) in fits.items():
        rows = sorted((r["images"], r["seconds"]) for r in results.values() if r["verb"] == verb and r["exit"] == 0)
        ax.plot(*zip(*rows), marker="o", label=f"{verb} (exponent {slope:.2f})")
    ax.set(xscale="log", yscale="log", xlabel="images in the set", ylabel="seconds (2-core CPU)",
           title="keras-birds: cost of each verb against data size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,90000", help="comma-separated set sizes (images)")
    p.add_argument("--out", default="scale", help="folder for the sets, runs, results.json, scale.md and scale.png")
    p.add_argument("--verbs", default=",".join(VERBS), help=f"comma-separated, from {', '.join(VERBS)}")
    p.add_argument("--redo", default="", help="verbs to measure again though results.json has them")
    p.add_argument("--train-data", metavar="DATA", help=argparse.SUPPRESS)  # the train-data verb's own process
    a = p.parse_args(argv)
    if a.train_data:
        import scale_train_data

        return scale_train_data.main(Path(a.train_data), Path(a.out))
    verbs = [v.strip() for v in a.verbs.split(",") if v.strip()]
    if set(verbs) - set(VERBS):
        p.error(f"--verbs: unknown {', '.join(sorted(set(verbs) - set(VERBS)))}")
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.json"
    results = json.loads(store.read_text()) if store.is_file() else {}

    def save(r):
        tmp = store.with_name(".results.json.tmp")
        tmp.write_text(json.dumps(r, indent=1) + "\n")
        os.replace(tmp, store)

    for n in [int(s) for s in a.sizes.split(",")]:
        run_size(n, out, verbs, set(a.redo.split(",")), results, save)
    print(write_table(results, out))


if __name__ == "__main__":
    main()
