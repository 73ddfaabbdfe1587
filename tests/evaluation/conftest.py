"""Evaluation fixtures: a tiny run directory on birds-mini (+ its ONNX export), tiny .tflite/.onnx files."""
import json

import numpy as np
import pytest

from keras_birds.data.sources import folder_source
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir, atomic_save

RUN_SIZE = 64


def tiny_recipe(data, **kw):
    base = dict(model="resnet18", weights="none", data=str(data), image_size=RUN_SIZE, batch_size=16,
                epochs=(1, 0), workers=1, augment=Augment(False, 0, 0, 0, 0, 0), name="tiny")
    base.update(kw)
    return Recipe(**base)


def make_run_dir(path, recipe, class_names, model):
    """A finished run directory written by hand through RunDir (no training)."""
    run = RunDir(path)
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(class_names)
    atomic_save(run.model_keras, model.save)
    return run


def imprint_head(model, loader, n_classes, spread=3.0):
    """Nearest-centroid head on centred features: a random-init backbone's features all point one
    way, so centring is what makes predictions differ between images (and beat chance a little)."""
    import keras

    from keras_birds.models.build import HEAD, feature_model

    x, y = loader[0]
    f = keras.ops.convert_to_numpy(feature_model(model)(x, training=False))
    y = y.argmax(1)
    mu = f.mean(0)
    centred = (f - mu) / np.linalg.norm(f - mu, axis=1, keepdims=True)
    w = np.stack([centred[y == k].mean(0) for k in range(n_classes)]).T
    scale = spread / (centred @ w).std() / np.linalg.norm(f - mu, axis=1).mean()
    model.get_layer(HEAD).kernel.assign((w * scale).astype("float32"))
    model.get_layer(HEAD).bias.assign((-(mu @ w) * scale).astype("float32"))


@pytest.fixture(scope="session")
def tiny_run(birds_mini, tmp_path_factory):
    """Random-init ResNet18 at 64px on birds-mini with a head imprinted from its train images (so
    predictions differ between images), as a run directory holding model.keras and model.onnx
    (exported with a fixed batch of 1). ResNet18, not Lite0: its ONNX export is several times faster."""
    import keras

    from keras_birds.data.loader import BatchLoader
    from keras_birds.models.build import build_classifier

    keras.utils.set_random_seed(0)
    index = folder_source(birds_mini)
    names = index["train"].class_names
    model = build_classifier("resnet18", len(names), weights="none", image_size=RUN_SIZE)
    imprint_head(model, BatchLoader(index["train"], RUN_SIZE, len(index["train"]), workers=1), len(names))
    run = make_run_dir(tmp_path_factory.mktemp("runs") / "tiny", tiny_recipe(birds_mini), names, model)
    spec = keras.InputSpec(shape=(1, RUN_SIZE, RUN_SIZE, 3), dtype="float32", name="pixels")
    model.export(str(run.path / "model.onnx"), format="onnx", input_signature=[spec], verbose=False)
    return run


def write_onnx(path, size=16, n_classes=4, seed=0, labels=None, batch="batch", uint8=False, nchw=False):
    """A hand-built ONNX 'classifier': softmax(mean colour @ W + b). Returns (path, W, b)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, (3, n_classes)).astype("float32")
    b = rng.normal(0, 0.5, n_classes).astype("float32")
    shape = [batch, 3, size, size] if nchw else [batch, size, size, 3]
    nodes = []
    x = "pixels"
    if uint8:
        nodes.append(helper.make_node("Cast", ["pixels"], ["pixels_f"], to=TensorProto.FLOAT))
        x = "pixels_f"
    nodes += [
        helper.make_node("ReduceMean", [x], ["mean"], axes=[2, 3] if nchw else [1, 2], keepdims=0),
        helper.make_node("MatMul", ["mean", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8 if uint8 else TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, n_classes])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if labels is not None:
        helper.set_model_props(model, {"labels": json.dumps(labels)})
    onnx.save(model, str(path))
    return path, w, b


@pytest.fixture
def onnx_file():
    return write_onnx


@pytest.fixture(scope="session")
def tflite_file():
    """tflite_file(path, size, n_classes, int8=False, batch=None) -> (path, W, b): the same tiny
    classifier as write_onnx, converted by TensorFlow; int8=True: full-integer quantised with
    uint8 input and output; batch=None is a dynamic batch."""
    def make(path, size=16, n_classes=4, int8=False, batch=None, seed=0):
        import tensorflow as tf

        rng = np.random.default_rng(seed)
        w = rng.normal(0, 0.05, (3, n_classes)).astype("float32")
        b = rng.normal(0, 0.5, n_classes).astype("float32")

        def classify(x):
            return tf.nn.softmax(tf.matmul(tf.reduce_mean(x, axis=[1, 2]), tf.constant(w)) + tf.constant(b))

        fn = tf.function(classify).get_concrete_function(tf.TensorSpec([batch, size, size, 3], tf.float32))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn])
        if int8:
            def representative():
                for _ in range(32):
                    yield [rng.uniform(0, 255, (1 if batch is None else batch, size, size, 3)).astype("float32")]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
        with open(path, "wb") as f:
            f.write(converter.convert())
        return path, w, b

    return make
