"""Few-shot head initialisation: start fine-tuning from a working classifier on frozen features."""
from __future__ import annotations

import sys

import keras
import numpy as np
from tqdm import tqdm

from keras_birds.inference.frozen import frozen_predictor
from keras_birds.inference.mirror import mirrored
from keras_birds.models.build import HEAD, feature_model
from keras_birds.training.distributed import batch_predictor, single_device


def extract_features(model, loaders, flip_too=False, progress=False):
    """Pooled backbone features and integer labels of every batch of every loader (and mirrored);
    progress: a bar on stderr (minutes on a large train split)."""
    frozen = feature_model(model)
    batch = max((loader.batch_size for loader in loaders), default=32)
    features = frozen_predictor(frozen, batch, fallback=batch_predictor(frozen))  # ONNX Runtime where it matches
    feats, labels = [], []
    with tqdm(total=sum(len(loader) for loader in loaders), desc="frozen features", unit="batch", file=sys.stderr,
              disable=not progress, mininterval=1.0) as bar:
        for loader in loaders:
            for i in range(len(loader)):
                x, y = loader[i]
                for view in ([x, mirrored(x)] if flip_too else [x]):
                    feats.append(features(view))
                    labels.append(y.argmax(1))
                bar.update()
    return np.concatenate(feats).astype("float32"), np.concatenate(labels)


def init_head_from_class_means(model, loader, n_classes, scale=10.0, progress=False):
    """Imprint the head: logits ~ scale * cosine(feature, class centroid), a ready nearest-centroid
    classifier, so the few-shot fine-tuning starts from good predictions instead of random ones."""
    f, y = extract_features(model, [loader], progress=progress)
    centroids = np.stack([f[y == c].mean(0) if (y == c).any() else np.zeros(f.shape[1]) for c in range(n_classes)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-8
    kernel = (centroids * scale / np.linalg.norm(f, axis=1).mean()).T
    head = model.get_layer(HEAD)
    head.kernel.assign(kernel.astype("float32"))
    head.bias.assign(np.zeros(n_classes, "float32"))


def fit_probe(f, y, n_classes, weight_decay=0.5, epochs=300, lr=1e-2, feature_norm=10.0, progress=False):
    """(kernel, bias) of a linear classifier fitted to convergence on features f (N, D), labels y: full-batch
    AdamW on features scaled to a mean length of `feature_norm`, the scale folded back into the kernel, so weight
    decay means the same for average-, max-pooled or unit-length features."""
    scale = feature_norm / (np.linalg.norm(f, axis=1).mean() + 1e-12)
    with single_device():  # one full batch of any size: a data-parallel one must split evenly
        probe = keras.Sequential([keras.Input((f.shape[1],)), keras.layers.Dense(n_classes)])
        probe.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=weight_decay),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        with tqdm(total=epochs, desc="linear probe", unit="epoch", file=sys.stderr, disable=not progress,
                  mininterval=1.0) as bar:
            probe.fit((f * scale).astype("float32"), y, batch_size=len(f), epochs=epochs, verbose=0, shuffle=False,
                      callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: bar.update())])
        kernel, bias = probe.layers[-1].get_weights()
    return kernel * scale, bias


def init_head_from_probe(model, loaders, n_classes, weight_decay=0.5, epochs=300, lr=1e-2, feature_norm=10.0,
                         progress=False):
    """Linear probe to convergence on frozen features (LP-FT, Kumar et al. 2022): the all-layers phase
    then starts from the best head the pretrained features allow and distorts them less.

    `loaders` give the train images, plain and augmented; each is also seen mirrored. Full-batch
    AdamW on cached features takes seconds, against minutes for the same epochs through the backbone.
    Strong weight decay and no label smoothing measured best on birds-dev valid (frozen Lite0 features).
    """
    f, y = extract_features(model, loaders, flip_too=True, progress=progress)
    kernel, bias = fit_probe(f, y, n_classes, weight_decay, epochs, lr, feature_norm, progress)
    head = model.get_layer(HEAD)
    head.kernel.assign(kernel.astype("float32"))
    head.bias.assign(bias)
