"""Open-set protocol on birds-dev: how well each score tells a species the model never saw from a known one.

    .venv/bin/python tools/bench_openset.py [--recipes effnet_lite0_fewshot,effnet_lite2_fewshot] [--folds 0,1,2,3,4]
        [--data ../shared/data/birds-dev] [--work WORK] [--out docs/openset] [--set KEY=VALUE ...]

birds-dev's 125 species, in a seeded order, form 5 groups of 25. Fold f: group f is unseen, group f+1 (mod 5) is
the outlier pool, the other 75 species are known; every species is unseen in exactly one fold. A recipe is
trained on the known species' train photos (WORK/<recipe>/fold<f>/run, reused when already trained; the
known data is a folder of symlinks to birds-dev's species folders, nothing is copied).
  test side    AUROC of the known species' valid+test photos against the unseen group's valid+test photos,
               and the share of unseen photos rejected at the threshold that keeps 95% of the known ones
  valid side   the same against the pool's check half (its species 13-25): what a method may be chosen on
  pool         photos of other birds an app team can always collect. Methods may use the pool's fit half
               (its species 1-12, every split); no method sees the unseen group.
Methods: every score of keras_birds/openset/scores.py (max_probability first), then pool-aware ones below,
and an "other bird" class: a linear probe over the known species plus the pool's fit half as one more class.
Known top-1 (of the 75) on their valid+test photos is printed per fold: the scores never change the answer.
Writes OUT/<recipe>.json (per fold and mean +- standard deviation) and prints the table. --set overrides recipe fields
as `keras-birds train --set` does (a training change measured on the same folds): the runs and the file are then
named <recipe>+<key>-<value> (e.g. effnet_lite0_fewshot+pooling-max).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
N_FOLDS, GROUP_SEED = 5, 0


def groups(species: list) -> list:
    order = np.random.default_rng(GROUP_SEED).permutation(sorted(species))
    return [sorted(order[g::N_FOLDS].tolist()) for g in range(N_FOLDS)]


def fold_species(species: list, fold: int) -> dict:
    g = groups(species)
    unseen, pool = g[fold], g[(fold + 1) % N_FOLDS]
    known = sorted(s for s in species if s not in set(unseen) | set(pool))
    half = (len(pool) + 1) // 2
    return {"known": known, "unseen": unseen, "pool_fit": pool[:half], "pool_check": pool[half:]}


def known_view(data: Path, known: list, root: Path) -> Path:
    """root/{train,valid,test}/<SPECIES> -> data's folders (symlinks): the known species as a data set."""
    for split in ("train", "valid", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        for s in known:
            link = root / split / s
            if not link.exists():
                link.symlink_to((data / split / s).resolve(), target_is_directory=True)
    return root


def index_of(data: Path, species: list, splits, class_names=None):
    """A SplitIndex of `species`' photos in `splits`, labelled by class_names (or all 0)."""
    from keras_birds.data.sources import IMAGE_SUFFIXES, SplitIndex

    paths, labels = [], []
    for split in splits:
        for s in species:
            for f in sorted((data / split / s).iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    paths.append(str(f))
                    labels.append(class_names.index(s) if class_names else 0)
    return SplitIndex("+".join(splits), class_names or ["other"], paths, np.asarray(labels, np.int64))


def run_name(recipe: str, overrides=()) -> str:
    """The name of a recipe's runs and figures under `--set` overrides: effnet_lite0_fewshot+pooling-max."""
    return "+".join([recipe] + [o.replace("=", "-", 1) for o in overrides])


def train(recipe: str, data: Path, run: Path, overrides=()) -> bool:
    """Train unless the run is already there (then False: its figures are reused, its time unknown here)."""
    if (run / "model.keras").is_file():
        return False
    sets = [arg for o in overrides for arg in ("--set", o)]
    subprocess.run([sys.executable, "-m", "keras_birds.cli", "train", recipe, "--data", str(data), "--out", str(run),
                    "--overwrite", "-q", *sets], check=True, timeout=6 * 3600)
    return True


def _z(score, ref):
    return (score - ref.mean()) / (ref.std() + 1e-12)


def knn_minus_pool(out: dict) -> np.ndarray:
    """Nearer a known photo than any other bird's: outlier exposure by nearest neighbours."""
    from keras_birds.openset.scores import score, unit

    return score("knn_cosine", out) - (unit(out["features"]) @ unit(out["pool_features"]).T).max(1)


def pool_scores(out: dict, ref: dict) -> dict:
    """Scores that use the outlier pool's fit half (out["pool_features"]); `ref`: the known valid photos' own
    scores, to put two scores on one scale without looking at any test image."""
    from keras_birds.openset.scores import score

    logit, knn, relative = score("max_logit", out), score("knn_cosine", out), knn_minus_pool(out)
    return {"knn_minus_pool_knn": relative,
            # the head's evidence and the backbone's, each standardised on the known valid photos
            "max_logit_plus_knn": _z(logit, ref["max_logit"]) + _z(knn, ref["knn_cosine"]),
            "max_logit_plus_knn_minus_pool": _z(logit, ref["max_logit"]) + _z(relative, ref["knn_minus_pool_knn"])}


def fit_other_probe(features, labels, pool_features, n_known: int):
    """A linear probe over the known species plus one "other bird" class (the pool's fit half): outlier exposure
    as an explicit class, fitted as the few-shot recipe fits its head. (kernel, bias)."""
    from keras_birds.training.head_init import fit_probe

    return fit_probe(np.concatenate([features, pool_features]),
                     np.concatenate([labels, np.full(len(pool_features), n_known)]), n_known + 1)


def other_scores(out: dict, probe) -> dict:
    from keras_birds.openset.outputs import softmax

    p = softmax(out["features"] @ probe[0] + probe[1])
    return {"other_class: 1 - p(other)": 1.0 - p[:, -1], "other_class: max known p": p[:, :-1].max(1)}


def all_scores(out: dict, ref: dict | None) -> dict:
    from keras_birds.openset.scores import available, score

    got = {name: score(name, out) for name in available(out)}
    if ref is not None:
        got.update(pool_scores(out, ref))
    if out.get("other_probe") is not None:
        got.update(other_scores(out, out["other_probe"]))
    return got


def figures(known: dict, unknown: dict) -> dict:
    from keras_birds.openset.scores import auroc, rates, threshold_at

    out = {}
    for name in known:
        t = threshold_at(known[name])
        out[name] = {"auroc": auroc(known[name], unknown[name]), **rates(known[name], unknown[name], t)}
    return out


def run_fold(recipe: str, data: Path, fold: int, work: Path, overrides=()) -> dict:
    from keras_birds.inference.model import open_model
    from keras_birds.openset.outputs import features_and_logits, train_bank
    from keras_birds.openset.scores import score

    species = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    parts = fold_species(species, fold)
    folder = work / run_name(recipe, overrides) / f"fold{fold}"
    run = folder / "run"
    started = time.time()
    trained = train(recipe, known_view(data, parts["known"], folder / "known"), run, overrides)
    seconds = round(time.time() - started, 1) if trained else None
    opened = open_model(run)
    model, size, tta = opened.runner.model, opened.runner.image_size, opened.tta_flip
    names = opened.run.class_names()
    train_index = index_of(data, parts["known"], ["train"], names)
    bank = train_bank(model, train_index, size)
    pool_fit = features_and_logits(model, index_of(data, parts["pool_fit"], ["train", "valid", "test"]), size, tta)
    probe = fit_other_probe(bank["train_features"], bank["train_labels"], pool_fit["features"], len(names))
    outs = {}
    for key, idx in (("known_valid", index_of(data, parts["known"], ["valid"], names)),
                     ("known_test", index_of(data, parts["known"], ["test"], names)),
                     ("unseen", index_of(data, parts["unseen"], ["valid", "test"])),
                     ("pool_check", index_of(data, parts["pool_check"], ["train", "valid", "test"]))):
        outs[key] = {**features_and_logits(model, idx, size, tta), **bank, "pool_features": pool_fit["features"],
                     "other_probe": probe}
    kv = outs["known_valid"]  # its scores set the scale of the combinations
    ref = {"max_logit": score("max_logit", kv), "knn_cosine": score("knn_cosine", kv),
           "knn_minus_pool_knn": knn_minus_pool(kv)}
    s = {k: all_scores(v, ref) for k, v in outs.items()}
    known_eval = {n: np.concatenate([s["known_valid"][n], s["known_test"][n]]) for n in s["known_valid"]}
    top1 = float(np.mean(np.concatenate([outs[k]["probs"].argmax(1) == outs[k]["labels"]
                                         for k in ("known_valid", "known_test")])))
    return {"fold": fold, "known_top1": round(top1, 4), "n_known": len(known_eval["max_probability"]),
            "n_unseen": len(s["unseen"]["max_probability"]), "n_pool_check": len(s["pool_check"]["max_probability"]),
            "train_seconds": seconds, "unseen_species": parts["unseen"],
            "test": figures(known_eval, s["unseen"]), "valid": figures(s["known_valid"], s["pool_check"])}


def summary(folds: list) -> dict:
    out = {}
    for name in folds[0]["test"]:
        row = {}
        for side in ("test", "valid"):
            for key in ("auroc", "unknown_rejected"):
                values = [f[side][name][key] for f in folds]
                row[f"{side}_{key}"] = [round(float(np.mean(values)), 4), round(float(np.std(values)), 4)]
        out[name] = row
    return out


def table(recipe: str, summ: dict, folds: list) -> str:
    top1 = [f["known_top1"] for f in folds]
    lines = [f"{recipe}: {len(folds)} folds; known top-1 {np.mean(top1):.4f} +- {np.std(top1):.4f} (unchanged by any score)",
             "| method | test AUROC | test rejected at 95% known | valid AUROC (vs pool) |", "|---|---|---|---|"]
    for name, r in summ.items():
        lines.append(f"| {name} | {r['test_auroc'][0]:.3f} +- {r['test_auroc'][1]:.3f} | "
                     f"{100 * r['test_unknown_rejected'][0]:.1f}% +- {100 * r['test_unknown_rejected'][1]:.1f} | "
                     f"{r['valid_auroc'][0]:.3f} +- {r['valid_auroc'][1]:.3f} |")
    return "\n".join(lines)


def arguments(argv, description: str):
    """(args, data, work, out) of the protocol's command line, shared with bench_openset_heads.py; OUT is created."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--recipes", default="effnet_lite0_fewshot,effnet_lite2_fewshot")
    p.add_argument("--folds", default="0,1,2,3,4")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "birds-dev"))
    p.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "keras-birds-openset"))
    p.add_argument("--out", default=str(REPO / "docs" / "openset"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a recipe field for every fold's run (as keras-birds train --set); repeatable")
    args = p.parse_args(argv)
    from keras_birds.errors import UserError
    from keras_birds.recipe import apply_overrides, load_recipe, parse_sets

    try:  # train's own checks of the overrides, before any fold is trained
        for recipe in args.recipes.split(","):
            apply_overrides(load_recipe(recipe), parse_sets(args.overrides))
    except UserError as e:
        p.error(str(e))
    data, work, out = Path(args.data).resolve(), Path(args.work), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return args, data, work, out


def main(argv=None):
    from keras_birds.inference.latency import cpu_description

    args, data, work, out = arguments(argv, __doc__.split("\n\n")[0])
    for recipe in args.recipes.split(","):
        name = run_name(recipe, args.overrides)
        folds = []
        for fold in (int(f) for f in args.folds.split(",")):
            folds.append(run_fold(recipe, data, fold, work, args.overrides))
            r = folds[-1]
            print(f"{name} fold {fold}: known top-1 {r['known_top1']}, max_probability AUROC "
                  f"{r['test']['max_probability']['auroc']:.3f}, best test AUROC "
                  f"{max(v['auroc'] for v in r['test'].values()):.3f} "
                  f"({'trained in ' + str(r['train_seconds']) + ' s' if r['train_seconds'] else 'run reused'})", flush=True)
        summ = summary(folds)
        result = {"recipe": recipe, **({"set": args.overrides} if args.overrides else {}),
                  "data": os.path.relpath(data, REPO), "machine": cpu_description(),
                  "protocol": {"folds": N_FOLDS, "group_seed": GROUP_SEED, "accept_known": 0.95}, "summary": summ,
                  "folds": folds}
        (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(table(name, summ, folds), flush=True)


if __name__ == "__main__":
    main()
