"""The two listing verbs: `keras-birds recipes` (the shipped recipes) and `keras-birds models` (the architectures)."""
from __future__ import annotations

import click

from keras_birds.errors import UserError


@click.command()
@click.argument("name", required=False)
def recipes(name):
    """List the recipes that ship with keras-birds, or print recipe NAME's file to copy and edit.

    Each row: the name (what `keras-birds train NAME` takes), the model and input size it trains, the first
    sentence of its docstring and, indented, the figures its docstring quotes (where they were measured).

    \b
      keras-birds recipes
      keras-birds recipes effnet_lite0_fewshot > mine.py     # edit, then: keras-birds train mine.py --data DIR
    """
    from keras_birds.recipe_catalog import catalog, recipe_text

    if name:
        click.echo(recipe_text(name), nl=False)
        return
    import shutil
    import textwrap

    rows = catalog()
    if not rows:
        raise UserError("this installation ships no recipes (keras_birds/recipes is missing): reinstall keras-birds")
    width = max(len(r.name) for r in rows)
    columns = max(80, shutil.get_terminal_size().columns)
    for r in rows:
        click.echo(f"{r.name:{width}s}  {r.model:19s} {r.image_size:>4}px  {r.summary}")
        if r.figures:
            indent = " " * (width + 2)
            click.echo(textwrap.fill(r.figures, columns - 1, initial_indent=indent, subsequent_indent=indent + "  "))


@click.command()
def models():
    """List the model names a recipe can use, their input sizes and where their ImageNet weights come from.

    "trains at": the input size of the shipped recipes (recipes/) using the model: 224px, as the study,
    unless a recipe sets image_size (--image-size overrides it). "native": the resolution the ImageNet
    weights were trained at (--set image_size=native). Only the EfficientNet-Lite0/1/2 weights work
    offline (they are installed with keras-birds); the others are downloaded once on first use (then
    cached), or use --weights PATH / none.
    """
    from keras_birds.models.registry import MODELS, resolve_image_size, weights_origin
    from keras_birds.recipe_catalog import recipe_image_sizes

    trained = recipe_image_sizes()
    for spec in MODELS.values():
        sizes = "/".join(str(s) for s in trained.get(spec.name, (resolve_image_size(spec.name),)))
        click.echo(f"{spec.name:22s} trains at {sizes}px (native {spec.native_size}px)  "
                   f"imagenet weights: {weights_origin(spec)}")
