"""What a model says about a set of images, for open-set scores and new head rows.

    feature_views(model, index, size, tta_flip)        pooled features of the images (and of their mirror images)
    features_and_logits(model, index, size, tta_flip)  pooled features and head logits of a Keras model
    model_outputs(opened, index, batch_size)           {"probs"} of any runner, plus "logits" and "features"
                                                       for a Keras model
    train_bank(model, index, size)                     mean pooled feature of each class, and every train image's

Each takes `progress`: the label of a progress bar on stderr over the images ("" for none).

A Keras model's probabilities are softmax(logits) of its own head (dropout is off at inference), so
every score of one image comes from one forward pass. With flip TTA the two views' probabilities are
averaged, as eval and predict do, and their logits and features too.
"""
from __future__ import annotations

import sys

import numpy as np

from keras_birds.data.loader import BatchLoader
from keras_birds.inference.frozen import frozen_predictor
from keras_birds.inference.mirror import mirrored


def softmax(logits) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def head_weights(model):
    """(kernel (D, C), bias (C,)) of the classifier's head, as float64 numpy."""
    from keras_birds.models.build import HEAD

    kernel, bias = model.get_layer(HEAD).get_weights()
    return kernel.astype(np.float64), bias.astype(np.float64)


def _batches(index, size: int, batch_size: int, progress: str = ""):
    """(uint8 images, int labels) of every batch; a wholly unreadable batch is skipped, not borrowed twice."""
    from tqdm.auto import tqdm

    loader = BatchLoader(index, size, batch_size, workers=1)
    with tqdm(total=len(index), desc=progress, unit="img", file=sys.stderr, disable=not progress) as bar:
        for i in range(len(loader)):
            positions = loader.order[i * batch_size:(i + 1) * batch_size]
            images, labels = loader.load_batch(i)
            bar.update(len(positions))
            if not all(index.paths[j] in loader.skipped.files for j in positions):
                yield images, labels


def feature_views(model, index, size: int, tta_flip: bool = False, batch_size: int = 32, progress: str = ""):
    """([pooled features of each view (N, D)], labels): the plain images, and their mirror images too."""
    from keras_birds.models.build import feature_model

    features = feature_model(model)
    predict = frozen_predictor(features, batch_size)  # ONNX Runtime where it gives Keras' features
    views = [[], []] if tta_flip else [[]]
    labels = []
    for images, y in _batches(index, size, batch_size, progress):
        for out, batch in zip(views, [images, mirrored(images)]):
            out.append(np.asarray(predict(batch.astype("float32")), np.float64))
        labels.append(y)
    width = features.output_shape[-1]
    return ([np.concatenate(v) if v else np.zeros((0, width)) for v in views],
            np.concatenate(labels) if labels else np.zeros(0, np.int64))


def features_and_logits(model, index, size: int, tta_flip: bool = False, batch_size: int = 32,
                        progress: str = "") -> dict:
    """{"features", "logits", "probs", "labels"} of a Keras classifier over `index` (views averaged)."""
    kernel, bias = head_weights(model)
    views, labels = feature_views(model, index, size, tta_flip, batch_size, progress)
    logits = [v @ kernel + bias for v in views]
    return {"features": np.mean(views, axis=0), "logits": np.mean(logits, axis=0),
            "probs": np.mean([softmax(z) for z in logits], axis=0), "labels": labels}


def train_bank(model, index, size: int, progress: str = "") -> dict:
    """{"class_means" (C, D), "train_features" (N, D), "train_labels" (N,)}: what feature scores compare with."""
    got = features_and_logits(model, index, size, progress=progress)
    f, y = got["features"], got["labels"]
    means = np.stack([f[y == c].mean(0) if (y == c).any() else np.zeros(f.shape[1])
                      for c in range(len(index.class_names))])
    return {"class_means": means, "train_features": f, "train_labels": y}


def model_outputs(opened, index, batch_size: int = 32, progress: str = "") -> dict:
    """{"probs", "labels"} of any opened model (inference.open_model) over `index`; a Keras model adds
    "logits" and "features"."""
    runner = opened.runner
    if runner.kind == "keras":
        return features_and_logits(runner.model, index, runner.image_size, opened.tta_flip, batch_size, progress)
    probs, labels = [], []
    for images, y in _batches(index, runner.image_size, batch_size, progress):
        probs.append(np.asarray(opened.predict(images), np.float64))
        labels.append(y)
    n = runner.n_classes or 0
    return {"probs": np.concatenate(probs) if probs else np.zeros((0, n)),
            "labels": np.concatenate(labels) if labels else np.zeros(0, np.int64)}
