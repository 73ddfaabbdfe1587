"""Recipes: shipped files load, mistakes in recipe files and overrides are one clear UserError."""
import ast
import dataclasses
import json
from pathlib import Path

import pytest

from keras_birds.errors import UserError
from keras_birds.models.registry import MODELS
from keras_birds.recipe import Augment, Recipe, apply_overrides, load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.py"))


def test_there_are_recipes():
    assert len(RECIPES) >= 5


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_loads_and_documents_its_command(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert recipe.name == path.stem
    assert recipe.model in MODELS
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name} has no docstring"
    assert f"keras-birds train recipes/{path.name}" in doc
    # every command line the docstring shows names its own file
    for line in doc.splitlines():
        if "keras-birds train" in line:
            assert f"recipes/{path.name}" in line, line


def test_recipe_file_states_only_what_differs(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("from keras_birds.recipe import Recipe, Augment\n"
                    "RECIPE = Recipe(model='resnet18', epochs=[1, 3], lr=(1, 2), augment=Augment(rotation=0))\n")
    recipe = load_recipe(path)
    assert recipe.name == "mine"
    assert recipe.epochs == (1, 3) and recipe.lr == (1.0, 2.0)
    assert recipe.augment.rotation == 0 and recipe.augment.flip is True
    assert recipe.batch_size == Recipe().batch_size
    # a list-valued recipe still takes typed overrides
    r = apply_overrides(recipe, {"epochs": "2,2", "lr": "1e-3,1e-4"})
    assert r.epochs == (2, 2) and r.lr == (1e-3, 1e-4)


def test_explicit_name_is_kept(tmp_path):
    path = tmp_path / "file.py"
    path.write_text("from keras_birds.recipe import Recipe\nRECIPE = Recipe(model='resnet18', name='other')\n")
    assert load_recipe(path).name == "other"


def _write(tmp_path, text, name="bad.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_field_names_the_file_and_the_field(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe\nRECIPE = Recipe(model='resnet18', epoch=(1, 1))\n")
    with pytest.raises(UserError) as e:
        load_recipe(path)
    assert str(path) in str(e.value)
    assert "unknown field 'epoch'" in str(e.value)
    assert "epochs" in str(e.value)  # the known fields are listed


def test_unknown_augment_field_names_the_field(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe, Augment\n"
                            "RECIPE = Recipe(augment=Augment(rotaton=5))\n")
    with pytest.raises(UserError, match="unknown field 'rotaton'") as e:
        load_recipe(path)
    assert str(path) in str(e.value)


def test_a_file_that_does_not_parse_names_the_line(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe\n\nRECIPE = Recipe(model='resnet18'\n")
    with pytest.raises(UserError) as e:
        load_recipe(path)
    assert str(path) in str(e.value)
    assert "does not parse" in str(e.value)
    assert "line 3" in str(e.value)


def test_bad_indentation_is_a_parse_error(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe\n  RECIPE = Recipe()\n")
    with pytest.raises(UserError, match="does not parse: line 2"):
        load_recipe(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist") as e:
        load_recipe(tmp_path / "nope.py")
    assert str(tmp_path / "nope.py") in str(e.value)


def test_a_directory_is_not_a_recipe(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_recipe(tmp_path)


def test_a_file_without_recipe(tmp_path):
    path = _write(tmp_path, "x = 1\n")
    with pytest.raises(UserError, match="must define RECIPE") as e:
        load_recipe(path)
    assert str(path) in str(e.value)


def test_a_failing_recipe_is_reported_against_the_file(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe\nRECIPE = Recipe(model=undefined_name)\n")
    with pytest.raises(UserError, match="NameError") as e:
        load_recipe(path)
    assert str(path) in str(e.value)


def test_unknown_model_in_a_recipe_file(tmp_path):
    path = _write(tmp_path, "from keras_birds.recipe import Recipe\nRECIPE = Recipe(model='resnet9000')\n")
    with pytest.raises(UserError, match="unknown model 'resnet9000'") as e:
        load_recipe(path)
    assert str(path) in str(e.value)
    assert "efficientnet_lite0" in str(e.value)  # the known names are listed


@pytest.mark.parametrize("kwargs, words", [
    ({"epochs": (0, 0)}, "epochs"),
    ({"epochs": (1, 2, 3)}, "epochs"),
    ({"epochs": (-1, 2)}, "epochs"),
    ({"lr": (0.0, 1e-3)}, "lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"image_size": 16}, "image_size"),
    ({"head_init": "mean"}, "head_init"),
    ({"probe_views": -1}, "probe_views"),
    ({"pooling": "gem"}, "pooling must be one of avg, max"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
])
def test_invalid_values_in_a_recipe_file(tmp_path, kwargs, words):
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    path = _write(tmp_path, f"from keras_birds.recipe import Recipe\nRECIPE = Recipe({args})\n")
    with pytest.raises(UserError, match=words) as e:
        load_recipe(path)
    assert str(path) in str(e.value)


# -- overrides -----------------------------------------------------------------------------------
def test_overrides_are_parsed_to_the_field_types():
    base = Recipe(model="resnet18")
    r = apply_overrides(base, {"epochs": "1,1", "batch_size": "16", "augment.rotation": "0", "weights": "none",
                               "freeze_bn": "true"})
    assert r.epochs == (1, 1) and all(type(e) is int for e in r.epochs)
    assert r.batch_size == 16 and type(r.batch_size) is int
    assert r.augment.rotation == 0.0 and type(r.augment.rotation) is float
    assert r.weights == "none" and r.random_init
    assert r.freeze_bn is True
    # everything else unchanged, and the input recipe untouched
    assert r.augment.zoom == base.augment.zoom and r.lr == base.lr and r.model == "resnet18"
    assert base.epochs == Recipe().epochs and base.freeze_bn is False


@pytest.mark.parametrize("key, raw, expected", [
    ("lr", "1e-2, 5e-4", (0.01, 0.0005)),
    ("freeze_bn", "off", False),
    ("tta_flip", "YES", True),
    ("augment.flip", "false", False),
    ("augment.translate", "0.25", 0.25),
    ("image_size", "96", 96),
    ("weight_decay", "0", 0.0),
    ("head_init", "class_mean", "class_mean"),
    ("head_init", "probe", "probe"),
    ("probe_views", "6", 6),
    ("model", "efficientnet_lite0", "efficientnet_lite0"),
    ("data", "../shared/data/birds-mini", "../shared/data/birds-mini"),
])
def test_more_overrides(key, raw, expected):
    r = apply_overrides(Recipe(), {key: raw})
    value = getattr(r.augment, key.split(".")[1]) if key.startswith("augment.") else getattr(r, key)
    assert value == expected and type(value) is type(expected)


def test_none_valued_overrides_are_ignored():
    assert apply_overrides(Recipe(), {"epochs": None, "weights": None}) == Recipe()


@pytest.mark.parametrize("key", ["epoch", "augment.rotate", "optimizer.lr", "lr.0"])
def test_unknown_override_key(key):
    with pytest.raises(UserError, match="unknown recipe field") as e:
        apply_overrides(Recipe(), {key: "1"})
    assert f"'{key}'" in str(e.value)


@pytest.mark.parametrize("key, raw", [
    ("batch_size", "sixteen"),
    ("batch_size", "16.5"),
    ("epochs", "1,x"),
    ("epochs", "1.5,2"),
    ("lr", "fast,slow"),
    ("freeze_bn", "maybe"),
    ("augment.rotation", "lots"),
    ("augment.flip", "2"),
    ("augment", "0"),
])
def test_bad_override_value_is_a_user_error(key, raw):
    with pytest.raises(UserError) as e:
        apply_overrides(Recipe(), {key: raw})
    assert key in str(e.value)


@pytest.mark.parametrize("key, raw", [("epochs", "3"), ("epochs", "0,0"), ("batch_size", "0"),
                                      ("head_init", "zeros"), ("label_smoothing", "1"), ("pooling", "mean"),
                                      ("l2_features", "maybe")])
def test_override_to_an_invalid_value_is_a_user_error(key, raw):
    with pytest.raises(UserError, match=key):
        apply_overrides(Recipe(), {key: raw})


def test_override_to_an_unknown_model():
    with pytest.raises(UserError, match="unknown model 'foo'"):
        apply_overrides(Recipe(), {"model": "foo"})


def test_round_trip_through_dict_and_json():
    r = apply_overrides(Recipe(model="efficientnet_lite0", name="x"),
                        {"epochs": "0,3", "augment.shear": "0", "tta_flip": "1", "exclude": "bad.txt"})
    assert Recipe.from_dict(r.to_dict()) == r
    again = Recipe.from_dict(json.loads(json.dumps(r.to_dict())))  # as run_dir stores it
    assert again == r
    assert isinstance(again.augment, Augment) and isinstance(again.epochs, tuple) and isinstance(again.lr, tuple)


def test_every_field_survives_the_round_trip():
    # Change every field away from its default: from_dict must restore each of them.
    changed = Recipe(model="resnet50", weights="none", data="d", image_size=96, batch_size=3, epochs=(3, 4),
                     lr=(0.5, 0.25), weight_decay=0.5, label_smoothing=0.5, dropout=0.5,
                     augment=Augment(flip=False, perspective=0.5, rotation=5.0, translate=0.5, zoom=0.5, shear=0.5),
                     seed=5, workers=5, exclude="e", head_init="class_mean", probe_views=5, freeze_bn=True, head_lr_mult=5.0,
                     tta_flip=True, pooling="max", l2_features=True, name="n")
    default = Recipe()
    for f in dataclasses.fields(Recipe):
        assert getattr(changed, f.name) != getattr(default, f.name), f.name
    assert Recipe.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed
