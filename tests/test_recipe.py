"""Recipes: shipped files load, mistakes in recipe files and overrides are one clear UserError."""
import ast
import dataclasses
import json
from pathlib import Path

import pytest

from keras_birds.errors import UserError
from keras_birds.models.registry import MODELS
from keras_birds.data.augment import STEPS
from keras_birds.recipe import CORRUPTION_FIELDS, DEFAULT_DATA, Augment, Recipe, apply_overrides, extends, load_recipe

RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "recipes").glob("*.py") if not p.name.startswith("_"))


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
    # every training command the docstring shows trains this recipe by its name (works after pip install)
    commands = [line.split("keras-birds train", 1)[1].split() for line in doc.splitlines() if "keras-birds train" in line]
    assert commands, f"{path.name}'s docstring shows no `keras-birds train {path.stem}` command"
    for words in commands:
        assert words[0] == path.stem, words


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
                     tta_flip=True, pooling="max", l2_features=True, name="n", as_given={"data": "../d"}, cache=True,
                     precision="float16", teacher="t", kd_temperature=2.0, kd_alpha=0.5, kd_views=2, unlabeled="u",
                     int8_float_convs=3, tensorboard=False)
    default = Recipe()
    for f in dataclasses.fields(Recipe):
        assert getattr(changed, f.name) != getattr(default, f.name), f.name
    assert Recipe.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed


# -- issue 21: ranges of every numeric field ----------------------------------------------------
NAN, INF = float("nan"), float("inf")

# field -> (values outside its range, the allowed range as the error states it)
OUT_OF_RANGE = {
    "image_size": ([16, 31, 224.5, NAN, "224", True], ">= 32"),
    "batch_size": ([0, -1, 2.5, INF], ">= 1"),
    "epochs": ([(0, 0), (-1, 2), (1.5, 2), (1,), (NAN, 1), 3], ">= 0, not both 0"),
    "lr": ([(0.0, 1e-3), (-1.0, 1e-3), (NAN, 1e-3), (1e-3, INF), (1e-3,)], "> 0"),
    "weight_decay": ([-1, -1e-9, 1.5, NAN, INF], "[0, 1]"),
    "label_smoothing": ([-0.1, 1.0, NAN], "[0, 1)"),
    "dropout": ([1.5, 1.0, -0.1, NAN, "0.5"], "[0, 1)"),
    "seed": ([-1, 2**30 + 1, 1.5, NAN], "[0, 1073741824]"),
    "workers": ([-1, 2.5], ">= 0"),
    "probe_views": ([-1, 1.5, INF], ">= 0"),
    "head_lr_mult": ([0, -1, NAN, INF], "> 0"),
    "kd_temperature": ([0, -1, NAN, INF], "> 0"),
    "kd_alpha": ([-0.1, 1.5, NAN], "[0, 1]"),
    "kd_views": ([-1, 1.5, INF], ">= 0"),
    "int8_float_convs": ([-1, 2.5, NAN], ">= 0"),
    "augment.perspective": ([-0.1, 1.5, NAN], "[0, 1]"),
    "augment.rotation": ([-5, 181, INF, NAN], "[0, 180]"),
    "augment.translate": ([-0.1, 1.5, NAN], "[0, 1]"),
    "augment.zoom": ([-0.1, 1.0, NAN], "[0, 1)"),
    "augment.shear": ([-0.1, 1.5, INF], "[0, 1]"),
    # photo corruptions: (strength, probability), each in [0, 1]
    **{f"augment.{name}": ([(1.5, 0.1), (0.5, -0.1), (NAN, 0.5)], "[0, 1]") for name in CORRUPTION_FIELDS},
}


def _numeric_fields():
    """Every int/float/tuple-valued field of Recipe and Augment, by its --set name."""
    names = []
    for prefix, cls in (("", Recipe), ("augment.", Augment)):
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            if isinstance(default, (int, float, tuple)) and not isinstance(default, bool):
                names.append(prefix + f.name)
    return names


def test_every_numeric_field_has_a_range_check_case():
    assert sorted(_numeric_fields()) == sorted(OUT_OF_RANGE)


def _make(key, value):
    if key.startswith("augment."):
        return Recipe(augment=Augment(**{key.split(".")[1]: value}))
    return Recipe(**{key: value})


@pytest.mark.parametrize("key, value, allowed", [
    (key, value, allowed) for key, (values, allowed) in OUT_OF_RANGE.items() for value in values
], ids=lambda v: repr(v))
def test_numeric_field_out_of_range_is_one_clear_line(key, value, allowed):
    with pytest.raises(UserError) as e:
        _make(key, value)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{key} must be "), msg  # names the field as --set takes it
    assert allowed in msg, msg  # the allowed range
    shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else repr(value) if isinstance(value, str) else str(value)
    assert msg.endswith(f"got {shown}"), msg  # and the value


@pytest.mark.parametrize("key, value", [
    ("image_size", 32), ("batch_size", 1), ("epochs", (0, 1)), ("epochs", (1, 0)), ("lr", (1.0, 2.0)),
    ("weight_decay", 0), ("weight_decay", 1), ("label_smoothing", 0.0), ("dropout", 0.0), ("dropout", 0.99),
    ("seed", 0), ("seed", 2**30), ("workers", 1), ("workers", 0), ("probe_views", 0), ("head_lr_mult", 0.1),
    ("augment.perspective", 1.0), ("augment.rotation", 180), ("augment.translate", 1.0), ("augment.zoom", 0.99),
    ("augment.shear", 1.0), ("augment.rotation", 0),
])
def test_numeric_field_bounds_are_accepted(key, value):
    r = _make(key, value)
    got = getattr(r.augment, key.split(".")[1]) if key.startswith("augment.") else getattr(r, key)
    assert got == value


def test_whole_number_floats_are_stored_as_ints_and_numbers_as_floats():
    r = Recipe(image_size=96.0, epochs=(1.0, 2), weight_decay=0, augment=Augment(rotation=10))
    assert r.image_size == 96 and type(r.image_size) is int
    assert r.epochs == (1, 2) and all(type(e) is int for e in r.epochs)
    assert type(r.weight_decay) is float and type(r.augment.rotation) is float


@pytest.mark.parametrize("key, raw", [("dropout", "1.5"), ("weight_decay", "-1"), ("weight_decay", "nan"),
                                      ("lr", "inf,1e-3"), ("augment.zoom", "1"), ("head_lr_mult", "0")])
def test_override_out_of_range_is_a_user_error(key, raw):
    with pytest.raises(UserError, match=rf"^{key} must be .*got "):
        apply_overrides(Recipe(), {key: raw})


def test_two_problems_are_both_named():
    with pytest.raises(UserError) as e:
        Recipe(dropout=2, weight_decay=-1)
    assert "dropout must be" in str(e.value) and "weight_decay must be" in str(e.value)


def test_epochs_error_says_what_is_allowed():
    with pytest.raises(UserError) as e:
        apply_overrides(Recipe(), {"epochs": "0,0"})
    assert str(e.value) == "epochs must be two whole numbers >= 0, not both 0 (warm-up, all layers), e.g. 2,10; got 0,0"


@pytest.mark.parametrize("key, raw, says", [
    ("tta_flip", "maybe", "expected true or false"),
    ("augment.flip", "2", "expected true or false"),
    ("batch_size", "16.5", "expected a whole number"),
    ("seed", "x", "expected a whole number"),
    ("weight_decay", "lots", "expected a number"),
    ("augment.rotation", "lots", "expected a number"),
    ("epochs", "1,x", "expected two comma-separated whole numbers, e.g. 2,10"),
    ("lr", "fast,slow", "expected two comma-separated numbers, e.g. 0.01,0.001"),
])
def test_unparsable_override_says_what_is_expected(key, raw, says):
    with pytest.raises(UserError) as e:
        apply_overrides(Recipe(), {key: raw})
    assert str(e.value) == f"--set {key}={raw}: {says}"


# -- issue 21: paths as given and as stored -------------------------------------------------------
def test_as_given_is_not_settable():
    for key in ("as_given", "as_given.data"):
        with pytest.raises(UserError) as e:
            apply_overrides(Recipe(), {key: "x"})
        assert "as_given" in str(e.value) and "recorded by" in str(e.value), str(e.value)


def test_paths_are_made_absolute_and_the_typed_form_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.weights.h5").write_bytes(b"")
    r = Recipe(data="../data", exclude="lists/ex.txt", weights="w.weights.h5").with_absolute_paths()
    assert r.data == str(tmp_path.parent / "data")
    assert r.exclude == str(tmp_path / "lists" / "ex.txt")
    assert r.weights == str(tmp_path / "w.weights.h5")
    assert r.as_given == {"data": "../data", "exclude": "lists/ex.txt", "weights": "w.weights.h5"}
    # names that are not local paths, and paths already absolute, stay as they are and are not listed
    for kw in (dict(data="hf:a/b", weights="imagenet"), dict(data=str(tmp_path), weights="none"),
               dict(weights="random"), dict(weights="hf://keras/x")):
        r = Recipe(**kw)
        assert r.with_absolute_paths() == r and r.with_absolute_paths().as_given == {}
    assert Recipe(exclude="").with_absolute_paths().exclude == ""


def test_from_dict_reads_new_and_old_recipe_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    new = Recipe(data="data", exclude="ex.txt").with_absolute_paths()
    d = json.loads(json.dumps(new.to_dict()))
    assert d["as_given"] == {"data": "data", "exclude": "ex.txt"}
    assert Recipe.from_dict(d) == new
    old = {k: v for k, v in Recipe(data="../shared/data/birds-dev").to_dict().items() if k != "as_given"}
    r = Recipe.from_dict(json.loads(json.dumps(old)))
    assert r.data == "../shared/data/birds-dev" and r.as_given == {}  # an old run keeps its relative path


# -- issue 14: extends() and the shipped recipes' values ---------------------------------------------
# Key fields of every shipped recipe as they loaded before extends() replaced dataclasses.replace(load_recipe(...)):
# (model, image_size, epochs, lr, head_init, pooling, l2_features, freeze_bn, head_lr_mult, tta_flip, weights)
SHIPPED = {
    "convnext_tiny": ("convnext_tiny", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "effnet_b0": ("efficientnet_b0", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "effnet_b1": ("efficientnet_b1", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "effnet_b2": ("efficientnet_b2", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "effnet_lite0": ("efficientnet_lite0", 224, (2, 10), (0.01, 0.0001), "class_mean", "avg", False, True, 10.0, True,
                     "imagenet"),
    "effnet_lite0_fewshot": ("efficientnet_lite0", 224, (1, 0), (0.001, 0.0001), "probe", "max", True, True, 10.0,
                             True, "imagenet"),
    "distill_lite0": ("efficientnet_lite0", 224, (1, 12), (0.001, 0.0001), "probe", "avg", False, True, 10.0, True,
                      "imagenet"),
    "effnet_lite0_robust": ("efficientnet_lite0", 224, (2, 10), (0.01, 0.0001), "class_mean", "avg", False, True, 10.0,
                            True, "imagenet"),
    "effnet_lite1": ("efficientnet_lite1", 240, (2, 10), (0.01, 0.0001), "class_mean", "avg", False, True, 10.0, True,
                     "imagenet"),
    "effnet_lite2": ("efficientnet_lite2", 260, (2, 10), (0.01, 0.0001), "class_mean", "avg", False, True, 10.0, True,
                     "imagenet"),
    "effnet_lite2_fewshot": ("efficientnet_lite2", 260, (1, 0), (0.001, 0.0001), "probe", "max", True, True, 10.0,
                             True, "imagenet"),
    "resnet18": ("resnet18", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "resnet34": ("resnet34", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
    "resnet34_scratch": ("resnet34", 224, (0, 12), (0.001, 0.001), "random", "avg", False, False, 1.0, False, "none"),
    "resnet50": ("resnet50", 224, (2, 10), (0.01, 0.001), "random", "avg", False, False, 1.0, False, "imagenet"),
}


def test_shipped_recipes_keep_their_values():
    assert sorted(SHIPPED) == [p.stem for p in RECIPES]
    for path in RECIPES:
        r = load_recipe(path)
        assert r.name == path.stem
        got = (r.model, r.image_size, r.epochs, r.lr, r.head_init, r.pooling, r.l2_features, r.freeze_bn,
               r.head_lr_mult, r.tta_flip, r.weights)
        assert got == SHIPPED[path.stem], path.name
        # the rest as the study's defaults (the robust recipe adds photo corruptions)
        robust = path.stem == "effnet_lite0_robust"
        assert (r.batch_size, r.dropout, r.probe_views, r.data) == (32, 0.2, 2, DEFAULT_DATA)
        # int8 export keeps Lite0's 6 worst convolutions float on the fine-tuning recipes that inherit it
        inherits = path.stem in ("effnet_lite0", "effnet_lite1", "effnet_lite2")
        assert r.int8_float_convs == (6 if inherits else 0), path.name
        assert (r.augment == Augment()) != robust and all(getattr(r.augment, s) == getattr(Augment(), s) for s in STEPS)


def test_no_shipped_recipe_names_itself_or_loads_its_base_by_hand():
    for path in RECIPES:
        text = path.read_text()
        assert "name=" not in text and "load_recipe" not in text and "dataclasses.replace" not in text, path.name


def _files(tmp_path, **files):
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text("from keras_birds.recipe import Recipe, extends\n" + text)
    return tmp_path


def test_extends_names_the_recipe_after_its_own_file_and_applies_changes(tmp_path):
    _files(tmp_path, base="RECIPE = Recipe(model='resnet18', epochs=(1, 2), dropout=0.3)\n",
           child="RECIPE = extends('base', model='efficientnet_lite2', image_size='native', epochs=(0, 3))\n",
           grandchild="RECIPE = extends('child.py', lr=(1, 2))\n",
           named="RECIPE = extends('base', name='custom')\n")
    child = load_recipe(tmp_path / "child.py")
    assert (child.name, child.model, child.image_size, child.epochs, child.dropout) == (
        "child", "efficientnet_lite2", 260, (0, 3), 0.3)
    grandchild = load_recipe(tmp_path / "grandchild.py")
    assert grandchild.name == "grandchild" and grandchild.epochs == (0, 3) and grandchild.lr == (1.0, 2.0)
    assert load_recipe(tmp_path / "named.py").name == "custom"
    assert load_recipe(tmp_path / "base.py").name == "base"


def test_extends_an_unknown_base_lists_the_recipes(tmp_path):
    _files(tmp_path, base="RECIPE = Recipe(model='resnet18')\n", other="RECIPE = Recipe(model='resnet50')\n",
           child="RECIPE = extends('effnet_lite9')\n")
    with pytest.raises(UserError) as e:
        load_recipe(tmp_path / "child.py")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "child.py") in msg
    assert 'extends("effnet_lite9"): no recipe effnet_lite9.py beside child.py' in msg
    assert "(beside it: base, other; shipped: did you mean effnet_lite" in msg and "effnet_lite0" in msg


def test_extends_in_a_shipped_recipe_finds_its_base_beside_it():
    r = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "effnet_lite2_fewshot.py")
    assert r.name == "effnet_lite2_fewshot" and r.head_init == "probe" and r.pooling == "max"


def test_extends_mistakes_are_one_line(tmp_path):
    _files(tmp_path, base="RECIPE = Recipe(model='resnet18')\n", typo="RECIPE = extends('base', epoch=(1, 1))\n",
           a="RECIPE = extends('b')\n", b="RECIPE = extends('a')\n", me="RECIPE = extends('me')\n")
    with pytest.raises(UserError, match=r"typo.py: unknown field 'epoch' \(known: "):
        load_recipe(tmp_path / "typo.py")
    with pytest.raises(UserError, match=r"recipes extend each other in a cycle \(a -> b -> a\)"):
        load_recipe(tmp_path / "a.py")
    with pytest.raises(UserError, match=r"cycle \(me -> me\)"):
        load_recipe(tmp_path / "me.py")
    with pytest.raises(UserError, match="works in a recipe file run by keras-birds train or load_recipe"):
        extends("effnet_lite0")


def test_recipe_image_sizes_skips_helpers_and_a_missing_folder(tmp_path):
    from keras_birds.recipe_catalog import recipe_image_sizes

    _files(tmp_path, a="RECIPE = Recipe(model='efficientnet_b2')\n",
           b="RECIPE = extends('a', image_size='native')\n", _helper="RECIPE = None\n")
    assert recipe_image_sizes(tmp_path) == {"efficientnet_b2": (224, 260)}
    assert recipe_image_sizes(tmp_path / "nowhere") == {}
