"""A real, tiny classifier of birds-mini: nearest class-mean colour layout (a 4 x 4 grid of mean colours),
as a run directory (Keras) and as an ONNX file with the same weights, so both runners must see the
same corrupted pixels. It knows its train images well and the corruptions make it forget them."""
import json

import numpy as np
import pytest

from keras_birds.data.images import load_rgb
from keras_birds.data.sources import folder_source
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE, GRID = 64, 4
CELL = SIZE // GRID


def colour_centroid_head(index, size=SIZE, temperature=3000.0):
    """W (48, C), b (C,): softmax(grid colours @ W + b) = nearest class-mean grid of the train images."""
    colours = np.stack([load_rgb(p, size).reshape(GRID, CELL, GRID, CELL, 3).mean((1, 3)).reshape(-1)
                        for p in index.paths])
    labels = np.asarray(index.labels)
    centroids = np.stack([colours[labels == c].mean(0) for c in range(len(index.class_names))])
    # -|f - c|^2 / T = (2 f.c - |c|^2) / T + a term the same for every class
    return (2 * centroids.T / temperature).astype("float32"), (-(centroids ** 2).sum(1) / temperature).astype("float32")


def write_onnx(path, w, b, labels, size=SIZE):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("AveragePool", ["nchw"], ["cells"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
             helper.make_node("Transpose", ["cells"], ["nhwc"], perm=[0, 2, 3, 1]),
             helper.make_node("Flatten", ["nhwc"], ["mean"], axis=1),
             helper.make_node("MatMul", ["mean", "W"], ["logits0"]),
             helper.make_node("Add", ["logits0", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    graph = helper.make_graph(
        nodes, "colour", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(b)])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"labels": json.dumps(labels)})
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def colour_models(birds_mini, tmp_path_factory):
    """(run directory holding model.keras, model.onnx beside nothing): one classifier, two runners."""
    import keras

    index = folder_source(birds_mini)
    names = index["train"].class_names
    w, b = colour_centroid_head(index["train"])
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.AveragePooling2D(CELL),
                              keras.layers.Flatten(), keras.layers.Dense(len(names), activation="softmax")])
    model.layers[-1].set_weights([w, b])
    root = tmp_path_factory.mktemp("robust")
    recipe = Recipe(model="resnet18", weights="none", data=str(birds_mini), image_size=SIZE, epochs=(1, 0),
                    workers=1, augment=Augment(False, 0, 0, 0, 0, 0), name="colour")
    run = RunDir(root / "colour")
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(names)
    atomic_save(run.model_keras, model.save)
    return run, write_onnx(root / "colour.onnx", w, b, names)


@pytest.fixture(scope="session")
def bird_images(birds_mini):
    """Six real birds-mini test images, 96 px, uint8 (N, 96, 96, 3)."""
    paths = folder_source(birds_mini, splits=("test",))["test"].paths[::4][:6]
    return np.stack([load_rgb(p, 96) for p in paths])
