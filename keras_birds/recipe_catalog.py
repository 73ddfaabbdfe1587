"""The shipped recipes as a catalogue: what `keras-birds recipes` lists and prints."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from keras_birds.recipe import RECIPES_DIR, find_recipe, load_recipe, shipped_recipes

# A docstring paragraph that quotes measured figures starts with one of these words.
FIGURE_PARAGRAPH = re.compile(r"^(Measured|Chosen)\b")


@dataclass(frozen=True)
class Entry:
    name: str
    model: str
    image_size: int
    summary: str  # the docstring's first sentence
    figures: str  # the first sentence of the docstring's paragraph of measured figures, "" when it quotes none


def _first_sentence(text: str, stops: str = ".:;") -> str:
    one_line = " ".join(text.split())
    m = re.search(rf"(?<=[^\s.])[{stops}](\s|$)", one_line)
    return one_line[: m.start() + 1].rstrip(":;") if m else one_line


def entry(name: str, path) -> Entry:
    recipe = load_recipe(path)
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc) if p.strip()]
    figures = next((_first_sentence(p, ".") for p in paragraphs if FIGURE_PARAGRAPH.match(p)), "")
    summary = _first_sentence(paragraphs[0]).rstrip(".") if paragraphs else ""
    return Entry(name, recipe.model, recipe.image_size, summary, figures)


def catalog() -> list:
    """One Entry per shipped recipe, by name."""
    return [entry(name, path) for name, path in shipped_recipes().items()]


def recipe_text(name: str) -> str:
    """The source of the recipe `name` (shipped, or a local file: find_recipe's rule), to copy and edit."""
    path, _ = find_recipe(name)
    return path.read_text(encoding="utf-8")


def recipe_image_sizes(folder=RECIPES_DIR) -> dict:
    """{model: (input sizes its recipes in `folder` train at, in file order)}: what `keras-birds models`
    shows and the zoo builds at. A model no recipe uses trains at resolve_image_size(model); files
    named _* are helpers; no folder (a plain wheel): {}."""
    paths = sorted(Path(folder).glob("*.py")) if Path(folder).is_dir() else []
    sizes: dict = {}
    for recipe in (load_recipe(p) for p in paths if not p.name.startswith("_")):
        if recipe.image_size not in sizes.setdefault(recipe.model, ()):
            sizes[recipe.model] += (recipe.image_size,)
    return sizes
