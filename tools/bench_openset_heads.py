"""Open-set candidates beyond the output scores, on tools/bench_openset.py's folds and runs: can a better head or a
feature score tell an unseen species from a known one better than max_probability?

    .venv/bin/python tools/bench_openset_heads.py [--recipes effnet_lite0_fewshot,effnet_lite2_fewshot]
        [--folds 0,1,2,3,4] [--data ../shared/data/birds-dev] [--work WORK] [--out docs/openset] [--set KEY=VALUE ...]

The few-shot recipes train only the head on a frozen backbone, so a head on the same pooled features is all that
training with the outlier pool could change there. Per fold, the pooled features of every photo and of its mirror
image are cached (WORK/<recipe>/fold<f>/views.npz; the runs must exist: run tools/bench_openset.py first), then:
  heads    the run's own; a refit of the recipe's probe (clean + mirrored train photos: a check that a refit
           reproduces the run); temperature T on the run's logits; outlier exposure (cross-entropy to the uniform
           distribution on the pool's fit half, weight lam); MixOE (a known photo's features mixed with a pool
           photo's, the target fading from its species to uniform); virtual outliers (two known species mixed,
           uniform target); LogitNorm (training on logits scaled to length 1/tau)
  features kNN to the train photos (k-th nearest), Mahalanobis to the class means under a shrunk shared
           covariance, relative Mahalanobis (minus the distance to one Gaussian of all train photos), a ViM-style
           residual (length outside the train features' top principal directions), max_probability + kNN
  post-hoc ReAct (the run head on features clipped at the train features' 90th percentile: a head, with its own
           top-1), ASH (each photo's lowest 65% of features zeroed, the rest scaled to keep the sum, then the run
           head's energy), GradNorm (|uniform - softmax|_1 * |features|_1)
  ensemble with two or more recipes: their run heads' probabilities averaged (max_probability), as one app
           file holding both backbones would answer; written to OUT/ensemble_heads.json
Each is scored by its head's max probability (heads) or by itself (features), with flip TTA as the run. Rows:
known top-1 of the head, test AUROC and unseen rejected at 95% known kept, valid AUROC against the pool's check
half; mean +- standard deviation over folds. Writes OUT/<recipe>_heads.json and prints the table. With --set, the
runs bench_openset.py trained under the same overrides (<recipe>+<key>-<value>) and OUT/<recipe>+<key>-<value>_heads.json.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))
SETS = {"train": ("known", ["train"]), "known_valid": ("known", ["valid"]), "known_test": ("known", ["test"]),
        "unseen": ("unseen", ["valid", "test"]), "pool_fit": ("pool_fit", ["train", "valid", "test"]),
        "pool_check": ("pool_check", ["train", "valid", "test"])}
SCORED = [k for k in SETS if k not in ("train", "pool_fit")]  # the sets a candidate scores (the rest fit it)


def cached_views(recipe: str, data: Path, fold: int, work: Path, overrides=()) -> dict:
    """{<set>_f0 / _f1 (plain / mirrored features), <set>_y, kernel, bias} of a fold's run, cached."""
    import bench_openset as bench

    folder = work / bench.run_name(recipe, overrides) / f"fold{fold}"
    cache = folder / "views.npz"
    if cache.is_file():
        return dict(np.load(cache))
    from keras_birds.inference.model import open_model
    from keras_birds.openset.outputs import feature_views, head_weights

    if not (folder / "run" / "model.keras").is_file():
        sets = "".join(f" --set {o}" for o in overrides)
        sys.exit(f"{folder / 'run'} is not trained: run tools/bench_openset.py --recipes {recipe}{sets} first")
    species = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    parts = bench.fold_species(species, fold)
    opened = open_model(folder / "run")
    names = opened.run.class_names()
    d = {}
    for key, (group, splits) in SETS.items():
        labelled = names if group == "known" else None
        views, labels = feature_views(opened.runner.model, bench.index_of(data, parts[group], splits, labelled),
                                      opened.runner.image_size, True)
        d[key + "_f0"], d[key + "_f1"], d[key + "_y"] = views[0], views[1], labels
    d["kernel"], d["bias"] = head_weights(opened.runner.model)
    np.savez(cache, **d)
    return d


def fit_head(f, y, n_classes, pool=None, loss="ce", lam=0.0, tau=0.05, weight_decay=0.5, epochs=300, lr=1e-2,
             seed=0):
    """(kernel, bias): a linear head on features f as training/head_init.py's probe fits it (full batch AdamW,
    features scaled to mean length 10), plus the candidate's term. Plain torch: Keras' fit has no hook for a
    second batch of pool photos with their own loss."""
    import torch

    torch.set_num_threads(1)  # tiny full-batch steps: a second thread only spins, many-fold slower on a loaded CPU
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    scale = 10.0 / (np.linalg.norm(f, axis=1).mean() + 1e-12)
    x, labels = torch.tensor(f * scale, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)
    other = torch.tensor(pool * scale, dtype=torch.float32) if pool is not None else None
    onehot = torch.nn.functional.one_hot(labels, n_classes).float()
    head = torch.nn.Linear(f.shape[1], n_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    to_uniform = lambda z: (torch.logsumexp(z, 1) - z.mean(1)).mean()  # noqa: E731  cross-entropy to uniform, less a constant
    for _ in range(epochs):
        opt.zero_grad()
        z = head(x)
        if loss == "logitnorm":
            z = z / (tau * (z.norm(dim=1, keepdim=True) + 1e-7))
        total = torch.nn.functional.cross_entropy(z, labels)
        a = torch.rand(len(x), 1, generator=gen)
        if loss == "oe":
            total = total + lam * to_uniform(head(other))
        elif loss == "mixoe":
            j = torch.randint(0, len(other), (len(x),), generator=gen)
            target = a * onehot + (1 - a) / n_classes
            total = total - lam * (target * torch.log_softmax(head(a * x + (1 - a) * other[j]), 1)).sum(1).mean()
        elif loss == "mixed_known":
            j = torch.randint(0, len(x), (len(x),), generator=gen)
            a, apart = 0.3 + 0.4 * a, labels[j] != labels
            total = total + lam * to_uniform(head((a * x + (1 - a) * x[j])[apart]))
        total.backward()
        opt.step()
    return head.weight.detach().numpy().T.astype(np.float64) * scale, head.bias.detach().numpy().astype(np.float64)


HEADS = {  # name -> (loss, lam, tau, temperature)
    "run head: max_probability": None, "refit probe (clean + mirrored)": ("ce", 0, 0, 1),
    "run head, temperature 2": ("run", 0, 0, 2.0), "run head, temperature 0.5": ("run", 0, 0, 0.5),
    "outlier exposure lam=0.3": ("oe", 0.3, 0, 1), "outlier exposure lam=1": ("oe", 1.0, 0, 1),
    "MixOE lam=1": ("mixoe", 1.0, 0, 1), "mixed known species lam=1": ("mixed_known", 1.0, 0, 1),
    "LogitNorm tau=0.05": ("logitnorm", 0, 0.05, 1), "LogitNorm tau=0.02": ("logitnorm", 0, 0.02, 1),
    "ReAct p90 (run head, clipped features)": ("react", 0, 90, 1)}


def head_probs(d: dict, name: str):
    """{set: probabilities (flip views averaged)} under head `name`."""
    from keras_birds.openset.outputs import softmax

    spec = HEADS[name]
    kernel, bias, temperature, clip = d["kernel"], d["bias"], 1.0, np.inf
    if spec is not None and spec[0] == "react":
        clip = np.percentile(np.concatenate([d["train_f0"], d["train_f1"]]), spec[2])
    elif spec is not None and spec[0] != "run":
        loss, lam, tau, temperature = spec
        f, y = np.concatenate([d["train_f0"], d["train_f1"]]), np.concatenate([d["train_y"]] * 2)
        pool = np.concatenate([d["pool_fit_f0"], d["pool_fit_f1"]])
        kernel, bias = fit_head(f, y, d["kernel"].shape[1], pool, loss, lam, tau)
    elif spec is not None:
        temperature = spec[3]
    return {key: np.mean([softmax((np.minimum(d[f"{key}_f{v}"], clip) @ kernel + bias) / temperature) for v in (0, 1)], 0)
            for key in SCORED}


def feature_scores(d: dict, msp: dict) -> dict:
    """{name: {set: score}} of the feature candidates (higher = more known), features of the flip views averaged;
    msp: {set: the run head's max probability}, for the combination."""
    from keras_birds.openset.scores import mahalanobis, score, shrunk_precision, unit

    feats = {k: (d[k + "_f0"] + d[k + "_f1"]) / 2 for k in SCORED}
    train, y = np.concatenate([d["train_f0"], d["train_f1"]]), np.concatenate([d["train_y"]] * 2)
    means = np.stack([train[y == c].mean(0) for c in range(d["kernel"].shape[1])])
    centre = train.mean(0)
    within = shrunk_precision(train - means[y])
    residual = np.linalg.svd(train - centre, full_matrices=False)[2][128:].T
    out = {}
    for k in (1, 3):  # each train photo is in the bank twice (plain, mirrored): k=3 reaches a second photo
        out[f"knn k={k}"] = {s: np.sort(unit(f) @ unit(train).T, 1)[:, -k] for s, f in feats.items()}
    out["mahalanobis (shrink 0.99)"] = {s: -mahalanobis(f, means, within).min(1) for s, f in feats.items()}
    bank = {"train_features": train, "train_labels": y, "class_means": means}
    out["relative mahalanobis"] = {s: score("relative_mahalanobis", {"features": f, **bank}) for s, f in feats.items()}
    out["ViM-style residual (128 dims)"] = {s: -np.linalg.norm((f - centre) @ residual, axis=1) for s, f in feats.items()}
    z = lambda v, ref: (v - ref.mean()) / (ref.std() + 1e-12)  # noqa: E731  on the known valid photos' scores
    out["max_probability + knn k=1"] = {s: z(msp[s], msp["known_valid"]) + z(out["knn k=1"][s], out["knn k=1"]["known_valid"])
                                        for s in SCORED}
    out.update(posthoc_scores(d))
    return out


def posthoc_scores(d: dict) -> dict:
    """ASH and GradNorm on the run head: {name: {set: score}}, flip views averaged (ReAct is a head: HEADS)."""
    from scipy.special import logsumexp

    from keras_birds.openset.outputs import softmax

    def ash(f, keep=0.35):  # ASH-S's pruning with ASH-B/S's rescale by the sums' ratio (exp of it overflows here)
        g = np.where(f >= np.quantile(f, 1 - keep, axis=1, keepdims=True), f, 0.0)
        return g * f.sum(1, keepdims=True) / (g.sum(1, keepdims=True) + 1e-12)

    def gradnorm(f):
        p = softmax(f @ d["kernel"] + d["bias"])
        return np.abs(1.0 / p.shape[1] - p).sum(1) * np.abs(f).sum(1)

    shaped = {"ASH p65, energy": lambda f: logsumexp(ash(f) @ d["kernel"] + d["bias"], axis=1), "GradNorm": gradnorm}
    return {name: {s: np.mean([fn(d[f"{s}_f{v}"]) for v in (0, 1)], 0) for s in SCORED} for name, fn in shaped.items()}


def known_top1(probs: dict, d: dict) -> float:
    """Top-1 of {set: probabilities} on the known species' valid + test photos."""
    return float(np.mean(np.concatenate([probs[k].argmax(1) == d[k + "_y"] for k in ("known_valid", "known_test")])))


def fold_rows(d: dict) -> dict:
    rows = {}
    for name in HEADS:
        probs = head_probs(d, name)
        rows[name] = ({s: p.max(1) for s, p in probs.items()}, known_top1(probs, d))
    base_top1 = rows["run head: max_probability"][1]
    rows.update({name: (s, base_top1) for name, s in feature_scores(d, rows["run head: max_probability"][0]).items()})
    return measured(rows)


def measured(rows: dict) -> dict:
    """{name: known top-1, test AUROC, test unknown rejected, valid AUROC} of rows {name: ({set: score}, top1)}."""
    from keras_birds.openset.scores import auroc, rates, threshold_at

    out = {}
    for name, (s, top1) in rows.items():
        known = np.concatenate([s["known_valid"], s["known_test"]])
        t = threshold_at(known)
        out[name] = {"known_top1": top1, "test_auroc": auroc(known, s["unseen"]),
                     "test_unknown_rejected": rates(known, s["unseen"], t)["unknown_rejected"],
                     "valid_auroc": auroc(s["known_valid"], s["pool_check"])}
    return out


def ensemble_rows(views: list, recipes: list) -> dict:
    """One fold: each recipe's run head (max_probability) and their probabilities averaged."""
    for d in views[1:]:  # same folds, same photo order: the labels must agree photo by photo
        assert all(np.array_equal(d[k + "_y"], views[0][k + "_y"]) for k in SCORED), "recipes' folds differ"
    probs = [head_probs(d, "run head: max_probability") for d in views]
    probs.append({k: np.mean([p[k] for p in probs], 0) for k in SCORED})
    names = [f"{r}: max_probability" for r in recipes] + ["ensemble: max_probability"]
    return measured({name: ({k: v.max(1) for k, v in p.items()}, known_top1(p, views[0])) for name, p in zip(names, probs)})


def write_table(name: str, folds: list, args, data: Path, out: Path) -> None:
    """OUT/<name>_heads.json (per fold and mean +- standard deviation) and the printed table."""
    from keras_birds.inference.latency import cpu_description

    summ = {row: {key: [round(float(np.mean([f[row][key] for f in folds])), 4),
                        round(float(np.std([f[row][key] for f in folds])), 4)] for key in folds[0][row]}
            for row in folds[0]}
    (out / f"{name}_heads.json").write_text(json.dumps(
        {"recipe": name, "data": os.path.relpath(data, REPO), "machine": cpu_description(), "folds": args.folds,
         "summary": summ, "per_fold": folds}, indent=2) + "\n")
    print(f"{name}, folds {args.folds}\n| candidate | known top-1 | test AUROC | test rejected at 95% known | "
          "valid AUROC (vs pool) |\n|---|---|---|---|---|")
    for row, r in summ.items():
        print(f"| {row} | {100 * r['known_top1'][0]:.1f}% | {r['test_auroc'][0]:.3f} +- {r['test_auroc'][1]:.3f} | "
              f"{100 * r['test_unknown_rejected'][0]:.1f}% +- {100 * r['test_unknown_rejected'][1]:.1f} | "
              f"{r['valid_auroc'][0]:.3f} +- {r['valid_auroc'][1]:.3f} |", flush=True)


def main(argv=None):
    import bench_openset as bench

    args, data, work, out = bench.arguments(argv, __doc__.split("\n\n")[0])
    recipes, fold_ids = args.recipes.split(","), [int(f) for f in args.folds.split(",")]
    views = {}  # (recipe, fold) -> cached views, read once for the recipe's table and the ensemble's
    for recipe in recipes:
        name = bench.run_name(recipe, args.overrides)
        folds = []
        for f in fold_ids:
            views[recipe, f] = cached_views(recipe, data, f, work, args.overrides)
            folds.append(fold_rows(views[recipe, f]))
            print(f"{name} fold {f}: max_probability test AUROC {folds[-1]['run head: max_probability']['test_auroc']:.3f}",
                  flush=True)
        write_table(name, folds, args, data, out)
    if len(recipes) > 1:
        write_table(bench.run_name("ensemble", args.overrides),
                    [ensemble_rows([views[r, f] for r in recipes], recipes) for f in fold_ids], args, data, out)


if __name__ == "__main__":
    main()
