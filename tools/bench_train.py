"""Throughput of keras-birds training and of its data loader, against a plain PyTorch loop, on CPU or GPU.

    .venv/bin/python tools/bench_train.py --quick --model efficientnet_lite0        # 2 CPUs: ~3 minutes
    .venv/bin/python tools/bench_train.py --json bench.json                         # all three models

One run reports, each a median over repeats:
1. Train images/s of each --model (random init, --classes-way head, batch --batch, --image-size px), the
   same in-memory float32 pixel batches for every loop (data loading excluded):
   - keras:  what keras_birds.training.train runs for a phase (default 2, all layers): phases.setup_phase
             (trainable layers; AdamW + one-cycle, label smoothing, top-1/top-5), model.fit over a PyDataset,
             the model built under the recipe's `precision` (precision.training_precision).
   - plain:  the same Keras-built model as a torch.nn.Module in a hand-written loop: torch AdamW +
             OneCycleLR, zero_grad / backward / step (GradScaler under float16). Keras' convolutions
             already read NHWC memory (channels_last), and the model casts to the policy's dtype itself.
   - timm:   (when timm is importable, or --plain timm) timm's model of the same name, a textbook PyTorch
             loop: channels_last, torch.autocast when precision != float32, GradScaler under float16.
   Rounds alternate keras, plain, timm; warm-up steps are not timed. Target: keras / plain >= 0.9.
2. Loader images/s over the train split of --data (default: a synthetic set that
   tools/make_synthetic_birds.py writes once under $KERAS_BIRDS_CACHE/bench), consumed as model.fit
   consumes it: from JPEGs decode-only and with augmentation (keras_birds.data.augment.build_augmenter),
   and the same from the uint8 array cache (recipe field cache). Target: cache >= 5x JPEGs.
3. The projected time of one BIRDS-525 epoch (84,635 train images) per model: train step alone, and
   bounded by the augmenting loader from JPEGs / from the cache (on CPU they share the cores: a lower bound).

On the GPU machine (PyTorch, JAX, timm; no Keras, no network): carry wheels and a data set from here.
Here, in the repo root (once):
    echo /.whl/ >> .git/info/exclude; echo /.bench-data/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl keras==3.15.1 keras-hub==0.32.0 namex==0.1.0 optree==0.20.0
    .venv/bin/python tools/make_synthetic_birds.py .bench-data --species 100 --per-species 16 --eval-per-species 2
There (device tool `run`, carry [".whl", ".bench-data"]; the package comes from the checkout via PYTHONPATH):
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \\
      && PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 tools/bench_train.py --device cuda \\
         --precision bfloat16 --data .bench-data --json $OUT/bench.json
Not yet timed there; plan a few minutes, with timeout_s well inside the 10-minute limit (--model one_name
for a shorter run). --precision float32 / float16 for the other dtypes; timm loops run there by themselves.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from keras_birds.cores import usable_cores  # import-light: keras is imported below, after --device

BIRDS_525_TRAIN = 84_635
MODELS = ("efficientnet_lite0", "efficientnet_b0", "resnet50")
# keras_birds.recipe.PRECISIONS less "auto": this tool picks by device itself (keras is not imported yet)
PRECISIONS = ("float32", "bfloat16", "float16")
# --quick / full defaults of the options left unset
QUICK = dict(batch=8, steps=2, rounds=3, warmup=1, loader_epochs=5, synthetic=(30, 10))
FULL = dict(batch=32, steps=10, rounds=3, warmup=3, loader_epochs=3, synthetic=(100, 16))
T_START = time.perf_counter()


def log(msg):
    print(f"[{time.perf_counter() - T_START:7.1f}s] {msg}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=",".join(MODELS), help=f"comma-separated [default: {','.join(MODELS)}]")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=PRECISIONS, help="[default: bfloat16 on cuda, else float32]")
    p.add_argument("--quick", action="store_true", help="small batches and few steps, for a CPU")
    p.add_argument("--classes", type=int, default=525, help="head size (BIRDS-525)")
    p.add_argument("--batch", type=int, help="[default: 32, --quick 8]")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--phase", type=int, choices=(1, 2), default=2, help="1 = head only, 2 = all layers")
    p.add_argument("--head-lr-mult", type=float, default=1.0, help="recipe head_lr_mult (phase 2)")
    p.add_argument("--warmup", type=int, help="untimed steps of each loop [default: 3, --quick 1]")
    p.add_argument("--steps", type=int, help="timed steps per loop per round [default: 10, --quick 2]")
    p.add_argument("--rounds", type=int, help="rounds of keras, plain, timm [default: 3]")
    p.add_argument("--plain", choices=("auto", "keras", "timm"), default="auto",
                   help="keras: the Keras module in a torch loop; timm: also timm's model; auto: timm if installed")
    p.add_argument("--distinct-batches", type=int, default=4, help="synthetic batches held in memory, cycled")
    p.add_argument("--threads", type=int, default=usable_cores(), help="torch threads on CPU")
    p.add_argument("--data", help="Kaggle-layout folder for the loader [default: a generated synthetic set]")
    p.add_argument("--source", help="photos make_synthetic_birds copies [default: its own, ../shared/data]")
    p.add_argument("--workers", type=int, default=0, help="loader threads [default: 0 = the usable cores]")
    p.add_argument("--loader-batch", type=int, default=32,
                   help="loader batch size [default: 32, the recipe's, also under --quick]")
    p.add_argument("--loader-epochs", type=int, help="timed passes per loader variant [default: 3, --quick 5]")
    p.add_argument("--cache-dir", help="array cache folder [default: $KERAS_BIRDS_CACHE/arrays]")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-loader", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.models = [m.strip() for m in args.model.split(",") if m.strip()]
    return args


if __name__ == "__main__" and parse_args().device != "auto":  # Keras reads its torch device once, at import
    os.environ["KERAS_TORCH_DEVICE"] = parse_args().device

import keras_birds  # noqa: E402,F401  (sets KERAS_BACKEND=torch before keras is imported)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from keras_birds.data.augment import build_augmenter  # noqa: E402
from keras_birds.data.cache import cache_key, cache_root  # noqa: E402
from keras_birds.data.loader import BatchLoader, usable_workers  # noqa: E402
from keras_birds.data.sources import default_cache_dir, load_source  # noqa: E402
from keras_birds.models.build import HEAD, build_classifier, classifier_options  # noqa: E402
from keras_birds.recipe import Augment, Recipe  # noqa: E402
from keras_birds.training.phases import setup_phase  # noqa: E402
from keras_birds.training.precision import training_precision  # noqa: E402
from keras_birds.training.schedule import two_phase_plan  # noqa: E402

SYNC = False  # set in main: on a GPU, timers wait for the queued kernels


def sync():
    if SYNC:
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------------------------- training


class InMemoryBatches(keras.utils.PyDataset):
    """N steps over a few pre-made batches; workers=1: fit reads them in its own thread, no enqueuer."""

    def __init__(self, xs, ys, steps):
        super().__init__()
        self.xs, self.ys, self.steps = xs, ys, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        return self.xs[i % len(self.xs)], self.ys[i % len(self.ys)]


class StepTimer(keras.callbacks.Callback):
    """First batch start to last batch end of a fit call: N steps and N-1 fetches, no set-up/tear-down."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            sync()
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.steps - 1:
            sync()
            self.t1 = time.perf_counter()


def keras_round(model, xs, ys, steps):
    timer = StepTimer(steps)
    model.fit(InMemoryBatches(xs, ys, steps), epochs=1, verbose=0, callbacks=[timer])
    return timer.t1 - timer.t0


def one_cycle(opt, peaks, total):
    # one_cycle()'s shape: peak/25 -> peak over 30%, then down to peak/(25*1e4); no momentum cycling.
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total, pct_start=0.3,
                                               div_factor=25.0, final_div_factor=1e4, cycle_momentum=False)


class PlainLoop:
    """A hand-written PyTorch train loop: forward, smoothed cross-entropy, backward, AdamW, OneCycleLR."""

    def __init__(self, module, groups, recipe, precision, device, total, to_input, autocast, logits):
        self.module, self.device, self.to_input, self.logits = module, device, to_input, logits
        self.smoothing, self.step_no = recipe.label_smoothing, 0
        self.opt = torch.optim.AdamW([{"params": g["params"]} for g in groups], lr=groups[0]["max_lr"] / 25,
                                     weight_decay=recipe.weight_decay, eps=1e-7)
        self.sched = one_cycle(self.opt, [g["max_lr"] for g in groups], total)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")
        self.autocast = (torch.autocast(device.type, dtype=getattr(torch, precision))
                         if autocast and precision != "float32" else contextlib.nullcontext())

    def run(self, xs, ys, steps):
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            i, self.step_no = self.step_no, self.step_no + 1
            x = self.to_input(torch.from_numpy(xs[i % len(xs)]).to(self.device, non_blocking=True))
            y = torch.from_numpy(ys[i % len(ys)]).to(self.device, non_blocking=True)
            with self.autocast:
                out = self.module(x)
            if self.logits:
                loss = F.cross_entropy(out.float(), y, label_smoothing=self.smoothing)
            else:  # the Keras model ends in softmax: Keras' crossentropy on clipped probabilities
                loss = F.cross_entropy(torch.log(out.float().clamp(1e-7, 1 - 1e-7)), y, label_smoothing=self.smoothing)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
        sync()
        return time.perf_counter() - t0


def keras_module_loop(model, recipe, phase, precision, device, total):
    params = [p for p in model.parameters() if p.requires_grad]  # only what Keras trains
    n_keras = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    if n_keras != sum(p.numel() for p in params):
        raise SystemExit(f"trainable parameter mismatch: keras {n_keras:,} vs torch {sum(p.numel() for p in params):,}")
    mult = recipe.head_lr_mult if phase.train_backbone else 1.0
    head = {id(v.value) for v in model.get_layer(HEAD).trainable_weights}
    groups = [{"params": [q for q in params if id(q) not in head], "max_lr": phase.peak_lr},
              {"params": [q for q in params if id(q) in head], "max_lr": phase.peak_lr * mult}]
    return PlainLoop(lambda x: model(x, training=True), [g for g in groups if g["params"]], recipe, precision,
                     device, total, to_input=lambda x: x, autocast=False, logits=False)


def timm_loop(name, classes, recipe, phase, precision, device, total):
    import timm

    net = timm.create_model(name, num_classes=classes, pretrained=False).to(device, memory_format=torch.channels_last)
    net.train()
    if not phase.train_backbone:
        for p in net.parameters():
            p.requires_grad_(False)
        for p in net.get_classifier().parameters():
            p.requires_grad_(True)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1) * 255

    def to_input(x):  # NHWC pixels 0-255 -> normalised NCHW in channels_last memory (a view, no copy)
        return (x.permute(0, 3, 1, 2) - mean) / std

    groups = [{"params": [p for p in net.parameters() if p.requires_grad], "max_lr": phase.peak_lr}]
    return PlainLoop(net, groups, recipe, precision, device, total, to_input, autocast=True, logits=True)


def random_batches(args):
    """--distinct-batches float32 pixel batches and one-hot labels, held in memory and cycled."""
    rng = np.random.default_rng(args.seed)
    shape = (args.batch, args.image_size, args.image_size, 3)
    xs = [rng.uniform(0, 255, shape).astype("float32") for _ in range(max(1, args.distinct_batches))]
    ys = [np.eye(args.classes, dtype="float32")[rng.integers(0, args.classes, args.batch)] for _ in xs]
    return xs, ys


def time_rounds(args, loops, step) -> dict:
    """{loop name: [images/s of each round]}: untimed warm-up first, then rounds alternating the loops."""
    for key, loop in loops.items():
        if args.warmup:
            log(f"  warm-up {key}: {step(loop, args.warmup):.1f}s")
    ips = {key: [] for key in loops}
    for r in range(args.rounds):
        for key, loop in loops.items():
            ips[key].append(args.steps * args.batch / step(loop, args.steps))
        log(f"  round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in ips.items()) + " images/s")
    return ips


def bench_training(args, name, precision, device, use_timm):
    recipe = Recipe(model=name, weights="none", image_size=args.image_size, batch_size=args.batch,
                    head_lr_mult=args.head_lr_mult, precision=precision)
    phase = two_phase_plan(recipe.epochs, recipe.lr)[args.phase - 1]
    xs, ys = random_batches(args)
    with training_precision(recipe.precision):
        model = build_classifier(name, args.classes, weights="none", **classifier_options(recipe))
    setup_phase(model, recipe, phase, args.steps, args.classes)
    total = args.warmup + args.rounds * args.steps + 1  # OneCycleLR: more steps than taken
    loops = {"keras": None, "plain": keras_module_loop(model, recipe, phase, precision, device, total)}
    if use_timm:
        loops["timm"] = timm_loop(name, args.classes, recipe, phase, precision, device, total)
    log(f"{name}: {model.count_params():,} parameters, {precision}, phase {phase.number}, batch {args.batch}, "
        f"{args.image_size}px on {device}; loops {', '.join(loops)}")

    def step(loop, steps):
        return keras_round(model, xs, ys, steps) if loop is None else loop.run(xs, ys, steps)

    ips = time_rounds(args, loops, step)
    med = {k: statistics.median(v) for k, v in ips.items()}
    del model, loops, step
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"model": name, "precision": precision, "batch": args.batch, "image_size": args.image_size,
            "phase": phase.number, "images_per_s": ips, "median": med,
            "ratio_keras_over_plain": med["keras"] / med["plain"],
            **({"ratio_keras_over_timm": med["keras"] / med["timm"]} if "timm" in med else {})}


# ------------------------------------------------------------------------------------------------- loader


def synthetic_data(args) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_synthetic_birds

    species, per = args.synthetic
    root = default_cache_dir() / "bench" / f"synthetic-{species}x{per}-{args.image_size}px"
    kw = {"source": args.source} if args.source else {}
    made = make_synthetic_birds.make(root, species=species, per_species=per, size=args.image_size, seed=args.seed, **kw)
    log(f"synthetic data {root}: {made['written']} JPEGs written, {made['kept']} there already")
    return root


def loader_epochs(loader, epochs):
    """Steady images/s of each pass, consumed as model.fit on torch consumes a PyDataset: TorchEpochIterator
    -> PyDatasetAdapter (its OrderedEnqueuer runs `workers` threads) -> torch DataLoader. Timed from the
    first batch's arrival to the last one's: the enqueuer's start and its stop at the end of a pass (a
    0.1 s wait on an empty queue) are per-epoch constants that would swamp a small set's pass and are
    nothing next to a BIRDS-525 epoch."""
    from keras.src.backend.torch.trainer import TorchEpochIterator

    iterator = TorchEpochIterator(x=loader, shuffle=True)
    iterator.reset()
    out = []
    for _ in range(epochs):
        t_first, images = None, 0
        for _, _, data_list in iterator:
            x = data_list[0][0]
            if t_first is None:
                t_first = time.perf_counter()
            else:
                if SYNC and isinstance(x, torch.Tensor):
                    sync()
                images, t_last = images + int(x.shape[0]), time.perf_counter()
        if not images:
            raise SystemExit("the loader benchmark needs >= 2 batches an epoch (more images or a smaller --batch)")
        out.append(images / (t_last - t_first))
    return out


def time_cache_build(args, index, root, workers) -> dict:
    """Build (or find) the split's array cache, as the first cached run would."""
    existed = (root / cache_key(index, args.image_size)).is_dir()
    t = time.perf_counter()
    BatchLoader(index, args.image_size, args.loader_batch, workers=workers, cache=root)
    build = time.perf_counter() - t
    log(f"loader: cache {'reused' if existed else 'built'} in {build:.1f}s under {root}")
    return {"cache_dir": str(root), "cache_seconds": build, "cache_built": not existed}


def bench_loader(args, data):
    index = load_source(str(data))["train"]
    root = Path(args.cache_dir) if args.cache_dir else cache_root(True)
    workers = usable_workers(args.workers)
    log(f"loader: {len(index)} train images of {data}, batch {args.loader_batch}, {workers} worker threads")
    out = {"data": str(data), "train_images": len(index), "batch": args.loader_batch, "workers": workers,
           **time_cache_build(args, index, root, workers), "images_per_s": {}}
    augmenter = build_augmenter(Augment(), args.seed)
    for source in ("jpeg", "cache"):
        for aug in ("decode", "augment"):
            loader = BatchLoader(index, args.image_size, args.loader_batch, shuffle=True, workers=workers,
                                 seed=args.seed, augmenter=augmenter if aug == "augment" else None,
                                 cache=root if source == "cache" else False,
                                 as_tensors=True)  # the train loader as train() builds it for fit
            loader[0]  # untimed: builds/traces the augmentation once, as fit's first step would
            ips = loader_epochs(loader, args.loader_epochs)
            out["images_per_s"][f"{source}_{aug}"] = ips
            log(f"loader {source:5} {aug:7}: {statistics.median(ips):8.1f} images/s (" +
                " ".join(f"{v:.1f}" for v in ips) + ")")
    med = {k: statistics.median(v) for k, v in out["images_per_s"].items()}
    out["median"] = med
    out["ratio_cache_over_jpeg"] = med["cache_decode"] / med["jpeg_decode"]
    out["ratio_cache_over_jpeg_augmenting"] = med["cache_augment"] / med["jpeg_augment"]
    return out


# -------------------------------------------------------------------------------------------------- main


def projections(results):
    ld = results.get("loader", {}).get("median", {})
    rows = []
    for tr in results.get("train", []):
        k = tr["median"]["keras"]
        row = {"model": tr["model"], "train_step_s": BIRDS_525_TRAIN / k}
        for src in ("jpeg", "cache"):
            feed = ld.get(f"{src}_augment", ld.get(f"{src}_decode"))
            if feed:
                row[f"with_{src}_loader_s"] = BIRDS_525_TRAIN / min(k, feed)
        rows.append(row)
    return rows


def _hms(s):
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min"


def report(results):
    m = results["machine"]
    lines = [f"machine: {m['device_name']} ({m['device']}), {m['cpus']} CPUs, torch {m['torch']}, keras {m['keras']}; "
             f"load average {m['load_avg_start']:.1f} -> {m['load_avg_end']:.1f}"]
    for tr in results.get("train", []):
        med = tr["median"]
        lines.append(f"train {tr['model']:18} {tr['precision']:8} batch {tr['batch']} {tr['image_size']}px: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
                     + f" images/s; keras/plain {tr['ratio_keras_over_plain']:.2f} (target >= 0.9)"
                     + (f", keras/timm {tr['ratio_keras_over_timm']:.2f}" if "ratio_keras_over_timm" in tr else ""))
    ld = results.get("loader")
    if ld:
        lines.append(f"loader ({ld['train_images']} images, batch {ld['batch']}, {ld['workers']} threads): " +
                     ", ".join(f"{k} {v:.1f}" for k, v in ld["median"].items()) + " images/s")
        lines.append(f"cache / JPEG: {ld['ratio_cache_over_jpeg']:.1f}x decode-only (target >= 5), "
                     f"{ld['ratio_cache_over_jpeg_augmenting']:.1f}x augmenting")
    for p in results.get("projection", []):
        lines.append(f"BIRDS-525 epoch ({BIRDS_525_TRAIN:,} images) {p['model']}: {_hms(p['train_step_s'])} train step"
                     + "".join(f", {_hms(p[f'with_{s}_loader_s'])} with the {s} loader" for s in ("jpeg", "cache")
                               if f"with_{s}_loader_s" in p))
    return "\n".join(lines)


def _cpu_name():
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "CPU"


def pick_device(args):
    """(torch device, precision, use_timm) for this run; sets SYNC."""
    global SYNC
    if keras.backend.backend() != "torch":
        raise SystemExit(f"needs the torch backend, got {keras.backend.backend()} (unset KERAS_BACKEND)")
    from keras.src.backend.torch.core import get_device

    device = torch.device(get_device())
    if args.device == "cuda" and device.type != "cuda":
        raise SystemExit("--device cuda: PyTorch sees no GPU here")
    SYNC = device.type == "cuda"
    precision = args.precision or ("bfloat16" if device.type == "cuda" else "float32")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    use_timm = args.plain == "timm"
    if args.plain == "auto":  # timm is optional: the plain Keras-module loop is the target's reference
        try:
            import timm  # noqa: F401
            use_timm = True
        except ImportError:
            pass
    return device, precision, use_timm


def machine_info(device) -> dict:
    return {"device": str(device), "device_name": torch.cuda.get_device_name() if SYNC else _cpu_name(),
            "cpus": usable_cores(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "argv": sys.argv[1:], "load_avg_start": os.getloadavg()[0]}


def main(argv=None):
    args = parse_args(argv)
    device, precision, use_timm = pick_device(args)
    keras.utils.set_random_seed(args.seed)
    results = {"machine": machine_info(device)}
    log(f"torch {torch.__version__} on {device}, keras {keras.__version__}, precision {precision}")
    if not args.skip_train:
        results["train"] = [bench_training(args, name, precision, device, use_timm) for name in args.models]
    if not args.skip_loader:
        results["loader"] = bench_loader(args, Path(args.data) if args.data else synthetic_data(args))
    results["projection"] = projections(results)
    results["machine"]["load_avg_end"] = os.getloadavg()[0]
    results["seconds"] = round(time.perf_counter() - T_START, 1)
    print("\n" + report(results) + f"\ntotal {results['seconds']:.0f}s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
