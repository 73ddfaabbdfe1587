"""Shipped recipes work by name from any folder (issue 30): train, extends() and `keras-birds recipes`."""
import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.recipe import RECIPES_DIR, find_recipe, load_recipe, shipped_recipes
from keras_birds.recipe_catalog import catalog

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty working directory outside the checkout, as after `pip install`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_recipe_file_is_shipped_by_name():
    files = {p.stem for p in (REPO / "recipes").glob("*.py") if not p.name.startswith("_")}
    assert set(shipped_recipes()) == files and len(files) >= 10


@pytest.mark.parametrize("given", ["effnet_lite0_fewshot", "effnet_lite0_fewshot.py"])
def test_a_shipped_recipe_loads_by_name_from_an_empty_folder(elsewhere, given):
    recipe = load_recipe(given)
    assert recipe.name == "effnet_lite0_fewshot" and recipe.head_init == "probe"
    assert recipe == load_recipe(RECIPES_DIR / "effnet_lite0_fewshot.py")


def test_a_local_file_of_the_same_name_wins_and_says_so(elsewhere, capsys):
    (elsewhere / "effnet_lite0.py").write_text("from keras_birds.recipe import Recipe\nRECIPE = Recipe(model='resnet18')\n")
    recipe = load_recipe("effnet_lite0")
    assert recipe.model == "resnet18"
    err = capsys.readouterr().err
    assert "effnet_lite0.py in this folder, not the shipped recipe effnet_lite0" in err
    # the shipped file itself, named by its path, is not "another file of the same name"
    assert find_recipe(RECIPES_DIR / "effnet_lite0.py") == (RECIPES_DIR / "effnet_lite0.py", "")


def test_an_unknown_name_is_one_line_with_the_close_matches(elsewhere):
    with pytest.raises(UserError) as e:
        load_recipe("efnet_lite0_fewshot")
    message = str(e.value)
    assert "\n" not in message and "did you mean effnet_lite0_fewshot" in message
    assert "keras-birds recipes" in message


def test_extends_finds_a_shipped_recipe_from_any_folder(elsewhere):
    (elsewhere / "mine.py").write_text(
        'from keras_birds.recipe import extends\nRECIPE = extends("effnet_lite0_fewshot", dropout=0.3)\n')
    recipe = load_recipe("mine.py")
    shipped = load_recipe("effnet_lite0_fewshot")
    assert recipe.name == "mine" and recipe.dropout == 0.3
    assert (recipe.head_init, recipe.epochs, recipe.lr) == (shipped.head_init, shipped.epochs, shipped.lr)
    (elsewhere / "bad.py").write_text('from keras_birds.recipe import extends\nRECIPE = extends("no_such_recipe")\n')
    with pytest.raises(UserError, match="no shipped recipe of that name"):
        load_recipe("bad.py")


def test_recipes_lists_every_shipped_recipe_with_its_model_size_and_figures(elsewhere):
    result = CliRunner().invoke(main, ["recipes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for entry in catalog():
        row = next(line for line in lines if line.startswith(entry.name + " "))
        assert entry.model in row and f"{entry.image_size}px" in row and entry.summary in row
    # the figures quoted are the docstring's own words
    lite2 = next(e for e in catalog() if e.name == "effnet_lite2_fewshot")
    doc = " ".join(ast.get_docstring(ast.parse((RECIPES_DIR / "effnet_lite2_fewshot.py").read_text())).split())
    assert lite2.figures.startswith("Measured") and lite2.figures in doc
    assert lite2.image_size == 260
    assert " ".join(lite2.figures.split()[:4]) in " ".join(result.output.split())


def test_recipes_name_prints_the_file_and_an_unknown_name_is_an_error(elsewhere):
    result = CliRunner().invoke(main, ["recipes", "effnet_b0"], catch_exceptions=False)
    assert result.exit_code == 0 and result.output == (RECIPES_DIR / "effnet_b0.py").read_text()
    (elsewhere / "copy.py").write_text(result.output)
    assert load_recipe("copy.py").model == "efficientnet_b0"
    bad = CliRunner().invoke(main, ["recipes", "resnet_18"], catch_exceptions=False)
    assert bad.exit_code == 2 and "did you mean resnet18" in bad.output
