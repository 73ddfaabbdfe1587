"""Benchmark keras-birds' training loop against a plain PyTorch loop, and the data loader, on this machine.

    python tools/bench_train.py --json bench.json

Quick smoke run (under a minute on an idle machine):

    python tools/bench_train.py --steps 2 --rounds 1 --warmup 1 --image-size 96 --loader-epochs 1

1. Train-step images/s, EfficientNet-B0 (random init), batch 32, 224x224, the same synthetic float32 pixel
   batches held in memory for both loops, so data loading is excluded from both:
   - keras:  exactly what keras_birds.training.train does for a phase (default: phase 2, all layers):
             `_set_trainable` + `_compile` (AdamW + one_cycle, CategoricalCrossentropy with label
             smoothing, top1/top5 metrics), then `model.fit` over a keras.utils.PyDataset of in-memory
             batches. The per-epoch EpochCheckpoint (validation + saving) is not part of a train step
             and is left out.
   - plain:  the same Keras-built model used as a torch.nn.Module: torch.optim.AdamW +
             torch.optim.lr_scheduler.OneCycleLR, cross-entropy with label smoothing on log(probs)
             (the model ends in softmax), zero_grad / backward / step.
   Warm-up steps are excluded; then W timed steps of each loop, alternating A B A B ... for R rounds.
   Reported: medians and the ratio keras / plain (target >= 0.9).
2. The augmenting BatchLoader's images/s on real images (--data, default ../shared/data/birds-dev
   relative to the repo root), consumed the way model.fit consumes it, and the ratio
   loader / keras train images/s (target >= 2).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import keras_birds  # noqa: F401  (sets KERAS_BACKEND=torch before keras is imported)

import keras
import numpy as np
import torch
import torch.nn.functional as F

from keras_birds.data.augment import build_augmenter
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import load_source
from keras_birds.models.build import HEAD, build_classifier
from keras_birds.recipe import Augment, Recipe
from keras_birds.training.schedule import two_phase_plan
from keras_birds.training.train import _compile, _set_trainable

REPO_ROOT = Path(__file__).resolve().parent.parent
T_START = time.perf_counter()


def log(msg):
    print(f"[{time.perf_counter() - T_START:7.1f}s] {msg}", flush=True)


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--classes", type=int, default=525, help="head size (BIRDS-525)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--phase", type=int, choices=(1, 2), default=2,
                   help="training phase to mirror: 1 = head only (backbone frozen), 2 = all layers")
    p.add_argument("--head-lr-mult", type=float, default=Recipe().head_lr_mult,
                   help="recipe head_lr_mult (train.py uses it in phase 2; != 1 picks its HeadLRAdamW)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each loop before the rounds")
    p.add_argument("--steps", type=int, default=6, help="timed steps per loop per round (W)")
    p.add_argument("--rounds", type=int, default=3, help="A B rounds (R)")
    p.add_argument("--distinct-batches", type=int, default=4, help="synthetic batches held in memory, cycled")
    p.add_argument("--threads", type=int, default=default_threads(), help="torch.set_num_threads")
    p.add_argument("--fit-verbose", type=int, default=0,
                   help="model.fit verbose (the CLI uses 1; its progress bar costs ~nothing per 3 s step)")
    p.add_argument("--data", default="../shared/data/birds-dev",
                   help="Kaggle-layout folder for the loader benchmark (relative paths: from the repo root)")
    p.add_argument("--workers", type=int, default=Recipe().workers, help="BatchLoader worker threads")
    p.add_argument("--loader-epochs", type=int, default=2, help="passes over the train split to time")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-loader", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------- training


class InMemoryBatches(keras.utils.PyDataset):
    """N steps over a few pre-made (pixels, one-hot) batches: no decoding, no augmentation.

    workers=1 (PyDataset's default): Keras then reads batches in the training thread without an
    enqueuer, so nothing but the train step itself is measured.
    """

    def __init__(self, xs, ys, steps):
        super().__init__()
        self.xs, self.ys, self.steps = xs, ys, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        return self.xs[i % len(self.xs)], self.ys[i % len(self.ys)]


class StepTimer(keras.callbacks.Callback):
    """Wall time from the start of the first batch to the end of the last batch of a fit call.

    That spans all N train steps plus the N-1 in-between batch fetches and callback calls, and leaves
    out fit's per-call set-up and tear-down (recorded separately as fit_call_seconds).
    Having a batch hook makes Keras call batch callbacks inline instead of in its thread pool: a few
    microseconds per step, next to seconds of training.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.t1, self.steps = time.perf_counter(), batch + 1


def keras_round(model, xs, ys, steps, verbose):
    timer = StepTimer()
    t = time.perf_counter()
    model.fit(InMemoryBatches(xs, ys, steps), epochs=1, verbose=verbose, callbacks=[timer])
    call = time.perf_counter() - t
    return timer.t1 - timer.t0, call


def smoothed_nll(probs, onehot, label_smoothing):
    # The model ends in softmax: cross_entropy's log_softmax of log(p) is log(p) again (sum p = 1),
    # so this is Keras' CategoricalCrossentropy(label_smoothing) on probabilities, clipped alike.
    return F.cross_entropy(torch.log(probs.clamp(1e-7, 1 - 1e-7)), onehot, label_smoothing=label_smoothing)


def plain_steps(model, opt, sched, xs, ys, steps, label_smoothing, start):
    t0 = time.perf_counter()
    for i in range(start, start + steps):
        x = torch.from_numpy(xs[i % len(xs)])
        y = torch.from_numpy(ys[i % len(ys)])
        probs = model(x, training=True)
        loss = smoothed_nll(probs, y, label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def call_compile(model, recipe, phase, steps_per_epoch, n_classes):
    """train.py's own _compile, whichever of its signatures this checkout has (n_classes was added)."""
    params = inspect.signature(_compile).parameters
    if "n_classes" in params:
        return _compile(model, recipe, phase, steps_per_epoch, n_classes=n_classes)
    return _compile(model, recipe, phase, steps_per_epoch)


def bench_training(args):
    recipe = Recipe(model=args.model, weights="none", image_size=args.image_size, batch_size=args.batch,
                    head_lr_mult=args.head_lr_mult)
    phase = two_phase_plan(recipe.epochs, recipe.lr)[args.phase - 1]
    rng = np.random.default_rng(args.seed)
    n = max(1, args.distinct_batches)
    shape = (args.batch, args.image_size, args.image_size, 3)
    xs = [rng.uniform(0, 255, shape).astype("float32") for _ in range(n)]
    ys = [np.eye(args.classes, dtype="float32")[rng.integers(0, args.classes, args.batch)] for _ in range(n)]

    log(f"building {args.model} (random init, {args.classes} classes, {args.image_size}px)")
    model = build_classifier(args.model, args.classes, weights="none", image_size=args.image_size)
    log(f"{model.count_params():,} parameters; phase {phase.number} "
        f"({'all layers' if phase.train_backbone else 'head only'}), peak LR {phase.peak_lr:g}, "
        f"head LR x{recipe.head_lr_mult:g}")

    # keras-birds: the very functions train() calls. steps_per_epoch = the PyDataset's length, as in train().
    _set_trainable(model, phase, recipe.freeze_bn)
    call_compile(model, recipe, phase, args.steps, args.classes)
    total_steps = args.warmup + args.rounds * args.steps

    # plain PyTorch on the same module; only parameters that Keras trains (requires_grad) are optimised.
    params = [p for p in model.parameters() if p.requires_grad]
    n_keras = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    n_torch = sum(p.numel() for p in params)
    if n_keras != n_torch:
        raise SystemExit(f"trainable parameter mismatch: keras {n_keras:,} vs torch {n_torch:,}")
    mult = recipe.head_lr_mult if phase.train_backbone else 1.0
    head_ids = {id(v.value) for v in model.get_layer(HEAD).trainable_weights}
    groups = [{"params": [q for q in params if id(q) not in head_ids], "max_lr": phase.peak_lr},
              {"params": [q for q in params if id(q) in head_ids], "max_lr": phase.peak_lr * mult}]
    groups = [g for g in groups if g["params"]]
    if mult != 1.0 and len(groups) != 2:
        raise SystemExit("could not split the head's parameters from the backbone's for --head-lr-mult")
    opt = torch.optim.AdamW([{"params": g["params"]} for g in groups], lr=phase.peak_lr / 25,
                            weight_decay=recipe.weight_decay, eps=1e-7)
    # Same shape as one_cycle(): peak/25 -> peak over 30%, down to peak/(25*1e4); no momentum cycling
    # (the Keras side keeps beta_1 fixed too). total_steps >= steps taken, as OneCycleLR requires.
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["max_lr"] for g in groups], total_steps=max(phase.epochs * args.steps, total_steps + 1),
        pct_start=0.3, div_factor=25.0, final_div_factor=1e4, cycle_momentum=False)

    if args.warmup:
        log(f"warm-up: keras {args.warmup} step(s)")
        _, call = keras_round(model, xs, ys, args.warmup, args.fit_verbose)
        log(f"warm-up: keras done in {call:.1f}s; plain {args.warmup} step(s)")
        sec = plain_steps(model, opt, sched, xs, ys, args.warmup, recipe.label_smoothing, 0)
        log(f"warm-up: plain done in {sec:.1f}s")

    images = args.steps * args.batch
    keras_ips, plain_ips, fit_calls = [], [], []
    start = args.warmup
    for r in range(args.rounds):
        sec, call = keras_round(model, xs, ys, args.steps, args.fit_verbose)
        keras_ips.append(images / sec)
        fit_calls.append(call)
        log(f"round {r + 1}/{args.rounds}: keras {images / sec:6.2f} images/s "
            f"({sec / args.steps:.2f} s/step; fit call {call:.1f}s)")
        sec = plain_steps(model, opt, sched, xs, ys, args.steps, recipe.label_smoothing, start)
        start += args.steps
        plain_ips.append(images / sec)
        log(f"round {r + 1}/{args.rounds}: plain {images / sec:6.2f} images/s ({sec / args.steps:.2f} s/step)")

    k, p = statistics.median(keras_ips), statistics.median(plain_ips)
    return {
        "model": args.model, "classes": args.classes, "batch": args.batch, "image_size": args.image_size,
        "phase": phase.number, "head_lr_mult": mult,
        "keras_optimizer": f"{type(model.optimizer).__module__}.{type(model.optimizer).__name__}",
        "warmup_steps": args.warmup, "steps_per_round": args.steps, "rounds": args.rounds,
        "trainable_params": n_keras,
        "keras_images_per_s": keras_ips, "plain_images_per_s": plain_ips,
        "keras_fit_call_seconds": fit_calls,
        "keras_median": k, "plain_median": p, "ratio_keras_over_plain": k / p,
    }


# ------------------------------------------------------------------------------------------------- loader


def bench_loader(args, train_ips):
    from keras.src.backend.torch.trainer import TorchEpochIterator

    data = Path(args.data)
    if not data.is_absolute():
        data = (REPO_ROOT / data).resolve()
    log(f"indexing {data}")
    index = load_source(str(data))
    loader = BatchLoader(index["train"], image_size=args.image_size, batch_size=args.batch, shuffle=True,
                         augmenter=build_augmenter(Augment()), workers=args.workers)
    log(f"loader: {len(index['train'])} train images, {len(loader)} batches of {args.batch}, "
        f"{args.workers} worker thread(s), augmentation on")
    t = time.perf_counter()
    loader[0]  # builds the augmentation layers once (fit's first step would do it); not timed
    log(f"loader: first batch (untimed, builds the augmenter) {time.perf_counter() - t:.1f}s")

    # Consumed exactly as model.fit on the torch backend consumes a PyDataset: fit wraps it in a
    # TorchEpochIterator (shuffle=True is fit's default) -> PyDatasetAdapter, whose OrderedEnqueuer runs
    # `workers` threads calling loader[i] (max_queue_size batches ahead) when workers > 1, and a torch
    # DataLoader converting each batch to tensors. A hand-made thread pool would skip the enqueuer's
    # queueing and ordering, so it could report a rate that training never sees.
    iterator = TorchEpochIterator(x=loader, shuffle=True)
    iterator.reset()  # as fit does before its first epoch
    per_epoch = []
    total_images, total_sec = 0, 0.0
    for e in range(args.loader_epochs):
        t0 = time.perf_counter()
        t_first, images_after_first, n_batches = None, 0, 0
        for _, _, data_list in iterator:
            x = data_list[0][0]
            n_batches += 1
            if t_first is None:
                t_first = time.perf_counter()  # pipeline fill (enqueuer start, first decode) excluded
            else:
                images_after_first += int(x.shape[0])
        t1 = time.perf_counter()
        if n_batches < 2:
            raise SystemExit("loader benchmark needs at least 2 batches per epoch (more images or a smaller --batch)")
        ips = images_after_first / (t1 - t_first)
        per_epoch.append(ips)
        total_images += images_after_first
        total_sec += t1 - t_first
        log(f"loader epoch {e + 1}/{args.loader_epochs}: {ips:6.2f} images/s steady "
            f"({n_batches} batches, {t1 - t0:.1f}s incl. {t_first - t0:.1f}s to the first batch)")
    ips = total_images / total_sec
    skipped = len(loader.skipped.files)
    out = {
        "data": str(data), "train_images": len(index["train"]), "workers": args.workers,
        "loader_epochs": args.loader_epochs, "loader_images_per_s_per_epoch": per_epoch,
        "loader_images_per_s": ips, "skipped_files": skipped,
    }
    if train_ips:
        out["ratio_loader_over_keras_train"] = ips / train_ips
    return out


# -------------------------------------------------------------------------------------------------- main


def table(results):
    rows = []
    tr, ld = results.get("train"), results.get("loader")
    if tr:
        setup = (f"{tr['model']}, batch {tr['batch']}, {tr['image_size']}px, phase {tr['phase']}, "
                 f"head LR x{tr['head_lr_mult']:g}, keras optimizer {tr['keras_optimizer'].rsplit('.', 1)[-1]}")
        rows += [
            ("keras-birds train step (model.fit)", f"{tr['keras_median']:.2f} img/s",
             " ".join(f"{v:.2f}" for v in tr["keras_images_per_s"])),
            ("plain PyTorch train step", f"{tr['plain_median']:.2f} img/s",
             " ".join(f"{v:.2f}" for v in tr["plain_images_per_s"])),
            ("ratio keras / plain (target >= 0.9)", f"{tr['ratio_keras_over_plain']:.3f}",
             "ok" if tr["ratio_keras_over_plain"] >= 0.9 else "BELOW TARGET"),
        ]
    if ld:
        rows.append(("data loader, augmenting", f"{ld['loader_images_per_s']:.2f} img/s",
                     " ".join(f"{v:.2f}" for v in ld["loader_images_per_s_per_epoch"])))
        if "ratio_loader_over_keras_train" in ld:
            r = ld["ratio_loader_over_keras_train"]
            rows.append(("ratio loader / keras train (target >= 2)", f"{r:.2f}", "ok" if r >= 2 else "BELOW TARGET"))
    header = ("measure", "median", "per round / epoch")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(3)]
    lines = []
    if tr:
        lines.append(f"setup: {setup}; {tr['rounds']} rounds x {tr['steps_per_round']} steps "
                     f"(+{tr['warmup_steps']} warm-up) each")
    if ld:
        lines.append(f"loader: {ld['train_images']} images from {ld['data']}, {ld['workers']} workers, "
                     f"{ld['loader_epochs']} epoch(s), skipped files {ld['skipped_files']}")
    m = results["machine"]
    lines.append(f"machine: {m['cpus']} CPUs, torch threads {m['torch_threads']}, torch {m['torch']}, "
                 f"keras {m['keras']} ({m['backend']}); load average {m['load_avg_1min_start']:.1f} at start, "
                 f"{m['load_avg_1min_end']:.1f} at end (other processes make every figure noisy)")
    fmt = "  ".join(f"{{:{'<' if i != 1 else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*header))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv=None):
    args = parse_args(argv)
    if keras.backend.backend() != "torch":
        raise SystemExit(f"needs the torch backend, got {keras.backend.backend()} (unset KERAS_BACKEND)")
    torch.set_num_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    results = {"machine": {
        "cpus": default_threads(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "keras": keras.__version__, "backend": keras.backend.backend(), "python": platform.python_version(),
        "argv": sys.argv[1:], "load_avg_1min_start": os.getloadavg()[0],
    }}
    log(f"torch {torch.__version__}, keras {keras.__version__}, {torch.get_num_threads()} torch threads")
    train_ips = None
    if not args.skip_train:
        results["train"] = bench_training(args)
        train_ips = results["train"]["keras_median"]
    if not args.skip_loader:
        results["loader"] = bench_loader(args, train_ips)
    results["machine"]["load_avg_1min_end"] = os.getloadavg()[0]
    results["seconds"] = round(time.perf_counter() - T_START, 1)
    print()
    print(table(results), flush=True)
    print(f"total {results['seconds']:.0f}s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
