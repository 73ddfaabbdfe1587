"""Head rows for new species on frozen features, and the old rows kept or refitted.

The head is logits = f @ kernel + bias over the pooled features f, one kernel column ("row") per class.
Three ways to grow it, each returning (kernel, bias) with the old classes first, new ones after:

    imprint       new rows = class-mean directions (from the mean feature), as long as the old rows on
                  average (Qi et al. 2018, "Low-shot learning with imprinted weights"); needs no old image
    probe         new rows fitted by logistic regression on old + new train features with the old rows
                  frozen: old images teach the new rows where not to fire
    probe_all     every row refitted from the `probe` start (the old rows rebalanced against the new),
                  the weight decay pulling each row toward that start, not toward zero

Both probes use the recipe probe's settings (training/head_init.init_head_from_probe: full-batch
AdamW, weight decay 0.5, 300 steps, features scaled to mean length 10) and weigh every train image
alike, however many views of it there are (the caller's per-row weights).
"""
from __future__ import annotations

import numpy as np

from keras_birds.openset.outputs import softmax

METHODS = ("imprint", "probe", "probe_all")
KEEPS_OLD_ROWS = ("imprint", "probe")
PROBE = dict(weight_decay=0.5, epochs=300, lr=1e-2, feature_norm=10.0)


def imprint(f_new, y_new, n_new: int, kernel, bias, reference=None):
    """Old rows as they are; new rows from the new classes' mean features (y_new in 0..n_new-1).

    Pooled features share one large common direction, so a raw class mean scores every image high:
    the new rows point from `reference` (the mean train feature: old and new images, else the new
    ones) to their class mean, as long as the old rows are on average, with the bias that gives them
    the old rows' mean logit at `reference`.
    """
    reference = f_new.mean(0) if reference is None else reference
    directions = np.stack([f_new[y_new == c].mean(0) for c in range(n_new)]) - reference
    directions /= np.linalg.norm(directions, axis=1, keepdims=True) + 1e-12
    new_kernel = (directions * np.linalg.norm(kernel, axis=0).mean()).T
    new_bias = (reference @ kernel + bias).mean() - reference @ new_kernel
    return np.concatenate([kernel, new_kernel], 1), np.concatenate([bias, new_bias])


def _fit(fs, y, weights, start_logits, n_fixed: int):
    """(kernel, bias) changes fitted by logistic regression on scaled features: logits = start_logits + the
    change on every column after the first n_fixed (those stay as given). AdamW's weight decay pulls the
    change toward zero, so the rows toward their start, not toward zero: refitted old rows keep what their
    training on many more images taught them (like L2-SP) and only move as far as the new classes need."""
    import keras

    features, start = keras.Input((fs.shape[1],)), keras.Input((start_logits.shape[1],))
    change = keras.layers.Dense(start_logits.shape[1] - n_fixed, kernel_initializer="zeros")
    trained = keras.layers.Add()([start[:, n_fixed:], change(features)])
    logits = keras.layers.Concatenate()([start[:, :n_fixed], trained]) if n_fixed else trained
    fit = keras.Model([features, start], logits)
    fit.compile(optimizer=keras.optimizers.AdamW(PROBE["lr"], weight_decay=PROBE["weight_decay"]),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fit.fit([fs.astype("float32"), start_logits.astype("float32")], y, sample_weight=weights.astype("float32"),
            batch_size=len(fs), epochs=PROBE["epochs"], verbose=0, shuffle=False)
    kernel, bias = change.get_weights()
    return kernel.astype(np.float64), bias.astype(np.float64)


def probe(f, y, weights, kernel, bias, n_new: int, *, train_old: bool = False, start=None):
    """(kernel, bias) over old + new classes fitted on features f (labels y: old classes first).

    weights: per row of f, e.g. 1 / (views of its image), so that every image weighs the same.
    start: (kernel, bias) to start from (all classes); default: the old rows and zeros.
    """
    n_old = kernel.shape[1]
    scale = PROBE["feature_norm"] / (np.linalg.norm(f, axis=1).mean() + 1e-12)
    fs = f * scale
    # Mean weight 1: the loss keeps its scale against the weight decay.
    weights = np.asarray(weights, np.float64) * len(weights) / np.sum(weights)
    if start is None:
        start = (np.concatenate([kernel, np.zeros((kernel.shape[0], n_new))], 1), np.concatenate([bias, np.zeros(n_new)]))
    k0, b0 = start[0] / scale, start[1]  # the same logits on scaled features
    n_fixed = 0 if train_old else n_old
    dk, db = _fit(fs, y, weights, fs @ k0 + b0, n_fixed)
    k, b = k0 + np.pad(dk, ((0, 0), (n_fixed, 0))), b0 + np.pad(db, (n_fixed, 0))
    if train_old:
        return k * scale, b
    return np.concatenate([kernel, k[:, n_old:] * scale], 1), np.concatenate([bias, b[n_old:]])


def top1(kernel, bias, views, labels) -> float:
    """Top-1 of a head on features given as a list of views (probabilities averaged over them)."""
    if not len(labels):
        return float("nan")
    probs = np.mean([softmax(v @ kernel + bias) for v in views], axis=0)
    return float((probs.argmax(1) == labels).mean())
