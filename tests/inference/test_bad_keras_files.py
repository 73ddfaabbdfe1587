""".keras files that cannot be opened: each refusal says in one line what is wrong and what to do (issue 29, 9)."""
import json

import pytest

from keras_birds.errors import UserError
from keras_birds.inference.runners import open_runner
from keras_birds.recipe import Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE = 32


def _model(lambda_layer=False):
    import keras

    layers = [keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D()]
    if lambda_layer:
        layers.append(keras.layers.Lambda(lambda x: x * 2.0))
    return keras.Sequential(layers + [keras.layers.Dense(2, activation="softmax")])


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


def test_a_truncated_model_keras_is_called_damaged_and_the_best_weights_are_the_way_out(tmp_path):
    from keras_birds.models.build import build_classifier

    recipe = Recipe(model="resnet18", weights="none", data=str(tmp_path / "data"), image_size=SIZE, epochs=(1, 0),
                    workers=1, name="tiny")
    run = RunDir(tmp_path / "run")
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(["A", "B"])
    model = build_classifier("resnet18", 2, "none", image_size=SIZE)
    atomic_save(run.best_weights, model.save_weights)
    atomic_save(run.model_keras, model.save)
    whole = run.model_keras.read_bytes()
    run.model_keras.write_bytes(whole[:len(whole) // 2])  # a copy cut short, a disk that filled up
    for target in (run.path, run.model_keras):
        with pytest.raises(UserError) as e:
            open_runner(target)
        text = _one_line(e)
        assert "File not found" not in text and "damaged or truncated" in text and "not a valid .keras" in text
        assert "best.weights.h5" in text and f"keras-birds eval {run.path}" in text
    run.model_keras.unlink()  # what the message says to do: the run then opens from its best weights
    assert open_runner(run.path).path == run.best_weights


def test_a_lambda_layer_is_refused_as_unsafe_in_whole_words(tmp_path):
    path = tmp_path / "lambda.keras"
    _model(lambda_layer=True).save(path)
    with pytest.raises(UserError) as e:
        open_runner(path)
    text = _one_line(e)
    assert text.startswith(f"{path} was refused as unsafe to load: it holds a Lambda layer")
    assert "Python code" in text and "would run" in text and "safe_mode" not in text
    assert text.endswith(")") or text.endswith(".") or text[-1].isalpha(), text
    # Every word is whole: the message is ours, not Keras' text cut at a character count.
    assert "Requested the deseri" not in text


def test_an_ordinary_keras_file_still_opens(tmp_path):
    path = tmp_path / "plain.keras"
    _model().save(path)
    (tmp_path / "labels.txt").write_text("A\nB\n")
    runner = open_runner(path)
    assert runner.kind == "keras" and runner.class_names == ["A", "B"]
    assert json.dumps(runner.describe())
