"""The `keras-birds` command: parses arguments and calls a workflow; nothing else lives here."""
from __future__ import annotations

import sys

import click

from keras_birds import __version__
from keras_birds.errors import UserError


class _Group(click.Group):
    """Turns a UserError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-birds")
def main():
    """keras-birds: turn ImageNet-pretrained CNNs into small, accurate bird-species classifiers.

    \b
    Typical session:
      keras-birds models                                   list the architectures
      keras-birds train recipes/effnet_lite0.py --data ../shared/data/birds-dev
      keras-birds train --resume runs/effnet_lite0         continue a killed run
    """


def _parse_sets(values):
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item}: expected KEY=VALUE (e.g. --set augment.rotation=10)")
        out[key.strip()] = value
    return out


@main.command()
@click.argument("recipe_file", required=False, type=click.Path(dir_okay=False))
@click.option("--data", help="Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/ or hf:<dataset id>.")
@click.option("--weights", help="imagenet | none (random init) | a local KerasHub preset dir or weights file.")
@click.option("--epochs", help="Epochs of the two phases, e.g. 2,10 (head-only warm-up, all layers).")
@click.option("--lr", help="One-cycle peak LR of the two phases, e.g. 1e-2,1e-3.")
@click.option("--batch-size", type=int)
@click.option("--image-size", type=int)
@click.option("--exclude", type=click.Path(dir_okay=False), help="File of image paths to leave out (e.g. from `keras-birds clean`).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any recipe field; repeatable (augment.rotation=10).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<recipe name>].")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue a killed run from its last finished epoch.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No per-batch progress bar.")
def train(recipe_file, data, weights, epochs, lr, batch_size, image_size, exclude, sets, out, resume_dir, overwrite, quiet):
    """Fine-tune a classifier from RECIPE_FILE (a file in recipes/) and write a run directory.

    Phase 1 trains the head with the backbone frozen, phase 2 all layers, each with a one-cycle LR
    and AdamW. Every epoch's weights are kept and the best validation epoch is picked. The run
    directory holds recipe.json, classes.txt, epochs/, best.weights.h5, metrics.csv/json and
    model.keras. A killed run continues with --resume RUN_DIR.
    """
    from keras_birds.recipe import apply_overrides, load_recipe
    from keras_birds.training.train import train as run_training

    if resume_dir:
        if recipe_file or any(v is not None for v in (data, weights, epochs, lr, batch_size, image_size, exclude)) or sets:
            raise UserError("--resume continues a run with its own saved recipe: pass no recipe file or overrides")
        run_training(None, resume_dir, resume=True, verbose=0 if quiet else 1)
        return
    if not recipe_file:
        raise UserError("missing RECIPE_FILE (e.g. recipes/effnet_lite0.py), or --resume RUN_DIR")
    recipe = load_recipe(recipe_file)
    overrides = {"data": data, "weights": weights, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                 "image_size": image_size, "exclude": exclude, **_parse_sets(sets)}
    recipe = apply_overrides(recipe, overrides)
    from keras_birds.models.build import normalize_weights

    normalize_weights(recipe.weights)  # a mistyped weights path fails before any run directory exists
    run_training(recipe, out or f"runs/{recipe.name}", overwrite=overwrite, verbose=0 if quiet else 1)


@main.command()
def models():
    """List the model names a recipe can use, with where their ImageNet weights come from."""
    from keras_birds.models.registry import MODELS

    for spec in MODELS.values():
        click.echo(f"{spec.name:24s} {spec.image_size:4d}px  imagenet weights: {spec.imagenet}"
                   + (f"  ({spec.note})" if spec.note else ""))


if __name__ == "__main__":
    main()
