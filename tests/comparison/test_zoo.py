"""Issue 14: `keras-birds models`, the zoo and every recipe file agree on each model's input size."""
import re

from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.comparison.zoo import recipe_models, zoo_rows
from keras_birds.models.registry import MODELS, resolve_image_size
from keras_birds.recipe import load_recipe


def _models_command_sizes():
    out = CliRunner().invoke(main, ["models"], catch_exceptions=False).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"(\S+) +trains at ([\d/]+)px \(native (\d+)px\)", line)
        assert m, line
        found[m[1]] = (tuple(int(s) for s in m[2].split("/")), int(m[3]))
    return found


def test_models_command_zoo_and_recipes_agree(repo_root):
    paths = sorted(p for p in (repo_root / "recipes").glob("*.py") if not p.name.startswith("_"))
    recipes = [load_recipe(p) for p in paths]
    by_recipes = {}
    for r in recipes:
        by_recipes.setdefault(r.model, set()).add(r.image_size)
    zoo = recipe_models(repo_root / "recipes")
    shown = _models_command_sizes()
    assert list(shown) == list(MODELS)
    for name, spec in MODELS.items():
        sizes, native = shown[name]
        assert native == spec.native_size
        assert set(sizes) == by_recipes.get(name, {resolve_image_size(name)}), name
        assert set(zoo.get(name, (resolve_image_size(name),))) == set(sizes), name
    # The study's size for every recipe but the Lite1/Lite2 ones, which say image_size="native".
    sizes = {p.stem: r.image_size for p, r in zip(paths, recipes)}
    assert sizes["effnet_b1"] == sizes["effnet_b2"] == sizes["effnet_lite0"] == 224
    assert sizes["effnet_lite1"] == 240 and sizes["effnet_lite2"] == sizes["effnet_lite2_fewshot"] == 260


def test_zoo_builds_each_model_at_the_size_its_recipes_train_at(repo_root):
    import keras

    sizes = recipe_models(repo_root / "recipes")
    assert sizes["efficientnet_lite1"] == (240,) and sizes["efficientnet_b1"] == (224,)
    rows = zoo_rows(["efficientnet_lite1"], image_sizes=sizes, n_classes=5, export_int8=False, latency_runs=1,
                    log=lambda *_: None)
    keras.backend.clear_session()
    assert [(r["name"], r["source"]) for r in rows] == [("efficientnet_lite1", "random init, 240px")]


def test_zoo_rows_name_each_size_when_a_model_has_several():
    import keras

    logged = []
    rows = zoo_rows(["efficientnet_lite0"], image_sizes={"efficientnet_lite0": (64, 96)}, n_classes=5,
                    export_int8=False, latency_runs=1, log=logged.append)
    keras.backend.clear_session()
    assert [(r["name"], r["source"]) for r in rows] == [("efficientnet_lite0 64px", "random init, 64px"),
                                                       ("efficientnet_lite0 96px", "random init, 96px")]
    assert logged[0].startswith("[1/2] efficientnet_lite0 64px: building at 64px")
