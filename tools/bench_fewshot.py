"""Few-shot accuracy benchmark: train a recipe on birds-dev (3 images per species) and report
valid / test / together top-1, top-5 and wall time in a small table.

    python tools/bench_fewshot.py                                  # recipes/effnet_lite0.py on ../shared/data/birds-dev
    python tools/bench_fewshot.py --recipe recipes/effnet_lite0.py --seeds 0,1 --set lr=1e-2,1e-4

Settings are chosen on valid; test is only reported. Reference figures (plain PyTorch peers on the
same checkpoint and images, ../shared/peers): linear probe 88.0 / 89.6 / 88.8, the study's recipe
84.8 / 88.0 / 86.4, few-shot craft 90.4 / 91.2 / 90.8. Target: >= 92% valid+test, < 20 min.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import keras_birds  # noqa: F401  (sets the Keras backend)

REPO = Path(__file__).resolve().parents[1]


def evaluate_run(run, recipe, splits=("valid", "test")):
    import keras

    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import load_source
    from keras_birds.evaluation.metrics import topk_accuracy
    from keras_birds.training.callbacks import predict_probs

    model = keras.saving.load_model(run.model_keras)
    index = load_source(recipe.data)
    out = {}
    for split in splits:
        probs, labels = predict_probs(model, BatchLoader(index[split], recipe.image_size, 64), recipe.tta_flip)
        out[split] = {"n": len(labels), "correct": int((probs.argmax(1) == labels).sum()),
                      "top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, 5)}
    n = sum(v["n"] for v in out.values())
    correct = sum(v["correct"] for v in out.values())
    out["together"] = {"n": n, "correct": correct, "top1": correct / n}
    return out


def main(argv=None):
    from keras_birds.recipe import apply_overrides, load_recipe
    from keras_birds.training.train import train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(REPO / "recipes" / "effnet_lite0.py"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "birds-dev"))
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; each is one full training run")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_fewshot"))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    overrides = dict(s.split("=", 1) for s in args.sets)
    base = apply_overrides(load_recipe(args.recipe), {"data": args.data, **overrides})
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        recipe = dataclasses.replace(base, seed=seed)
        t0 = time.time()
        run = train(recipe, Path(args.out) / f"seed{seed}", overwrite=True, verbose=0)
        wall = time.time() - t0
        res = evaluate_run(run, recipe)
        summary = json.loads(run.summary_json.read_text())
        rows.append({"seed": seed, "wall_s": round(wall, 1), "best_epoch": summary["best_epoch"], **res})
        print(f"seed {seed}: valid {res['valid']['top1']:.3f} test {res['test']['top1']:.3f} "
              f"together {res['together']['correct']}/{res['together']['n']} in {wall:.0f}s", flush=True)

    print(f"\nrecipe {args.recipe} on {args.data}" + (f" with {' '.join(args.sets)}" if args.sets else ""))
    print(f"{'seed':>4} {'valid':>7} {'test':>7} {'together':>9} {'correct':>9} {'v-top5':>7} {'t-top5':>7} {'best ep':>7} {'wall s':>7}")
    for r in rows:
        print(f"{r['seed']:>4} {r['valid']['top1']:>7.1%} {r['test']['top1']:>7.1%} {r['together']['top1']:>9.1%} "
              f"{r['together']['correct']:>5}/{r['together']['n']:<3} {r['valid']['top5']:>7.1%} {r['test']['top5']:>7.1%} "
              f"{r['best_epoch']:>7} {r['wall_s']:>7.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"recipe": args.recipe, "sets": args.sets, "runs": rows}, indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
