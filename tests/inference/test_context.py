"""RunContext: a run directory resolved once (recipe, model file, class names, data splits), and the one
rule for a missing exclude file that train, eval and export share."""
import json
import re

import numpy as np
import pytest

from keras_birds.errors import UserError
from keras_birds.inference.context import RunContext
from keras_birds.recipe import Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE = 32  # the smallest image_size a recipe allows


def tiny_keras_model(n_classes=2):
    """Mean colour -> softmax: loads as model.keras in a second, like a trained run's model."""
    import keras

    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(n_classes, activation="softmax")])


def write_run(path, data, *, model=True, **recipe_fields):
    """A run directory by hand: recipe.json, classes.txt (the data's species), model.keras."""
    from keras_birds.data.sources import folder_source

    recipe = Recipe(model="resnet18", weights="none", data=str(data), image_size=SIZE, epochs=(1, 0), workers=1,
                    name="tiny", **recipe_fields)
    run = RunDir(path)
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(folder_source(data)["train"].class_names)
    if model:
        atomic_save(run.model_keras, tiny_keras_model().save)
    return RunContext(path)


@pytest.fixture
def data(tmp_path, make_dataset):
    return make_dataset(tmp_path, 2, {"train": 2, "valid": 2, "test": 2}, size=SIZE)


# -- what a run answers ---------------------------------------------------------------------------
def test_recipe_is_a_recipe_and_classes_are_the_runs(tmp_path, data):
    run = write_run(tmp_path / "run", data)
    recipe = run.recipe()
    assert isinstance(recipe, Recipe) and recipe.model == "resnet18" and recipe.image_size == SIZE
    assert run.class_names() == ["CLASS 00", "CLASS 01"]
    assert isinstance(RunContext.existing(run.path, "hint"), RunContext)


def test_model_file_prefers_model_keras_then_best_weights(tmp_path, data):
    run = write_run(tmp_path / "run", data, model=False)
    with pytest.raises(UserError) as e:
        run.model_file()
    assert str(run.path) in str(e.value) and "no trained model yet" in str(e.value)
    assert "let at least one epoch finish" in str(e.value) and "\n" not in str(e.value)
    run.best_weights.write_bytes(b"weights")
    assert run.model_file() == run.best_weights
    run.model_keras.write_bytes(b"model")
    assert run.model_file() == run.model_keras


@pytest.mark.parametrize("recipe_text, words", [
    (json.dumps({"hello": 1}), "has no 'model': not a keras-birds recipe"),
    ("{not json", "is not JSON"),
    (json.dumps({"model": "resnet18", "image_size": 64, "data": "d", "epochs": [1, 0], "lr": [1, 1],
                 "colour": "blue"}), "is not a recipe this keras-birds reads"),
    (json.dumps({"model": "resnet18", "image_size": 8, "data": "d", "epochs": [1, 0], "lr": [1, 1]}),
     "image_size must be a whole number >= 32"),
])
def test_a_recipe_json_that_is_not_a_recipe_is_one_line(tmp_path, recipe_text, words):
    (tmp_path / "recipe.json").write_text(recipe_text)
    with pytest.raises(UserError) as e:
        RunContext(tmp_path).recipe()
    assert words in str(e.value) and str(tmp_path / "recipe.json") in str(e.value) and "\n" not in str(e.value)


def test_empty_classes_txt(tmp_path, data):
    run = write_run(tmp_path / "run", data)
    run.classes_txt.write_text("")
    with pytest.raises(UserError, match=re.escape(f"{run.classes_txt} is empty")):
        run.class_names()


def test_split_index_uses_the_runs_data_and_exclude_list(tmp_path, data):
    excluded = sorted((data / "valid" / "CLASS 00").iterdir())[0]
    (tmp_path / "ex.txt").write_text(f"{excluded}\n")
    run = write_run(tmp_path / "run", data, exclude=str(tmp_path / "ex.txt"))
    chosen = run.split_index("valid")
    assert chosen.from_run and chosen.data == str(data) and len(chosen.index) == 3
    assert str(excluded) not in chosen.index.paths and chosen.excluded == {str(excluded)}
    assert len(run.split_index("valid", exclude="none").index) == 4  # 'none' and '' leave no image out
    assert len(run.split_index("valid", exclude="").index) == 4
    other = run.split_index("valid", data=str(data))  # --data: the run's list goes with the run's data
    assert not other.from_run and len(other.index) == 4


def test_the_runs_moved_data_names_the_fix(tmp_path, data):
    run = write_run(tmp_path / "run", data)
    raw = json.loads(run.recipe_json.read_text())
    run.recipe_json.write_text(json.dumps({**raw, "data": str(tmp_path / "moved")}))
    with pytest.raises(UserError, match="does not exist.*the run's data.*pass --data PATH"):
        RunContext(run.path).split_index("test")


# -- one rule for a missing exclude file: train, eval, export -------------------------------------
def _rule(path, recorded_in=None):
    """The message every verb gives: the file, where it was named, and the fix."""
    where = re.escape(f" (named in {recorded_in})") if recorded_in else ""
    return re.compile(f"^exclude file {re.escape(str(path))} does not exist{where}; restore it, or pass "
                      f"--exclude '' to leave no image out$")


def test_missing_exclude_file_is_the_same_error_for_train_eval_and_export(tmp_path, data):
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.export.export import export
    from keras_birds.training.train import train

    gone = tmp_path / "lists" / "exclude.txt"  # recorded by a run, then deleted
    run = write_run(tmp_path / "run", data, exclude=str(gone))
    errors = {}
    for verb, call in {
        "train": lambda: train(run.recipe(), tmp_path / "new_run", verbose=0, log=lambda *_: None),
        "eval": lambda: evaluate(run.path, split="test", progress=False, latency_runs=0, out=tmp_path / "e"),
        "export": lambda: export(run.path, tflite=False, latency_runs=0, out=tmp_path / "x", log=lambda *_: None),
        "eval --exclude": lambda: evaluate(run.path, exclude=str(gone), progress=False, latency_runs=0,
                                           out=tmp_path / "e"),
        "export --exclude": lambda: export(run.path, tflite=False, exclude=str(gone), latency_runs=0,
                                           out=tmp_path / "x", log=lambda *_: None),
    }.items():
        with pytest.raises(UserError) as e:
            call()
        errors[verb] = str(e.value)
    # train reads the recipe's field; eval and export say which run named it
    assert _rule(gone).match(errors["train"]), errors["train"]
    for verb in ("eval", "export"):
        assert _rule(gone, run.recipe_json).match(errors[verb]), errors[verb]
    for verb in ("eval --exclude", "export --exclude"):  # typed on the command line: named by the user
        assert _rule(gone).match(errors[verb]), errors[verb]
    assert not (tmp_path / "new_run").exists() and not (tmp_path / "x" / "export.json").exists()
    # the fix works: --exclude '' uses every image
    report = evaluate(run.path, split="test", exclude="", progress=False, latency_runs=0, out=tmp_path / "e")
    assert report["n_images"] == 4 and report["excluded_files"] == 0


# -- each verb opens its run once -----------------------------------------------------------------
@pytest.fixture
def reads(monkeypatch):
    """Counts of recipe.json and classes.txt reads, through any RunDir."""
    counts = {"recipe": 0, "classes": 0}
    real_recipe, real_classes = RunDir.read_recipe, RunDir.read_classes

    def read_recipe(self):
        counts["recipe"] += 1
        return real_recipe(self)

    def read_classes(self):
        counts["classes"] += 1
        return real_classes(self)

    monkeypatch.setattr(RunDir, "read_recipe", read_recipe)
    monkeypatch.setattr(RunDir, "read_classes", read_classes)
    return counts


def test_eval_predict_and_export_read_the_run_once(tmp_path, data, reads, monkeypatch):
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.export import export as export_module
    from keras_birds.prediction.predict import predict

    run = write_run(tmp_path / "run", data)
    report = evaluate(run.path, split="valid", progress=False, latency_runs=0, out=tmp_path / "e")
    assert report["n_images"] == 4 and reads == {"recipe": 1, "classes": 1}
    reads.update(recipe=0, classes=0)
    image = sorted((data / "test" / "CLASS 01").iterdir())[0]
    preds = predict([image], run.path, top_k=2, progress=False)
    assert len(preds.results) == 1 and reads == {"recipe": 1, "classes": 1}
    reads.update(recipe=0, classes=0)
    monkeypatch.setattr(export_module, "_convert", lambda *args, **kwargs: {})  # conversion is not the point
    result = export_module.export(run.path, tflite=False, latency_runs=1, out=tmp_path / "x", log=lambda *_: None)
    assert result.report["validation_images"] == 4 and result.report["keras"]["latency_ms_b1_median"] > 0
    assert reads == {"recipe": 1, "classes": 1}
    assert (tmp_path / "x" / "labels.txt").read_text().splitlines() == ["CLASS 00", "CLASS 01"]


def test_open_runner_takes_an_opened_run(tmp_path, data):
    from keras_birds.inference.runners import open_runner

    run = write_run(tmp_path / "run", data)
    runner = open_runner(run)
    assert runner.run_dir is run and runner.path == run.model_keras and runner.class_names == run.class_names()
    probs = runner.predict(np.zeros((3, SIZE, SIZE, 3), np.uint8))
    assert probs.shape == (3, 2)
