"""Head rows for new species on frozen features, and the old rows kept or refitted.

The head is logits = f @ kernel + bias over the pooled features f, one kernel column ("row") per class.
Three ways to grow it, each returning (kernel, bias) with the old classes first, new ones after:

    imprint       new rows = class-mean directions (from the mean feature), as long as the old rows on
                  average (Qi et al. 2018, "Low-shot learning with imprinted weights"); needs no old image
    probe         new rows fitted by logistic regression on old + new train features with the old rows
                  frozen: old images teach the new rows where not to fire
    probe_all     every row refitted from the `probe` start (the old rows rebalanced against the new)

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


def _fit(fs, y, weights, fixed_logits, init_kernel, init_bias):
    """Logistic regression on scaled features; `fixed_logits` (N, k) are prepended, untrained."""
    import keras

    features = keras.Input((fs.shape[1],))
    inputs, logits = [features], None
    dense = keras.layers.Dense(init_kernel.shape[1])
    trained = dense(features)
    if fixed_logits is not None:
        fixed = keras.Input((fixed_logits.shape[1],))
        inputs.append(fixed)
        logits = keras.layers.Concatenate()([fixed, trained])
    probe = keras.Model(inputs, logits if logits is not None else trained)
    dense.set_weights([init_kernel.astype("float32"), init_bias.astype("float32")])
    probe.compile(optimizer=keras.optimizers.AdamW(PROBE["lr"], weight_decay=PROBE["weight_decay"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = [fs.astype("float32")] + ([fixed_logits.astype("float32")] if fixed_logits is not None else [])
    probe.fit(x, y, sample_weight=weights.astype("float32"), batch_size=len(fs), epochs=PROBE["epochs"],
              verbose=0, shuffle=False)
    kernel, bias = dense.get_weights()
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
    if train_old:
        k, b = _fit(fs, y, weights, None, k0, b0)
        return k * scale, b
    fixed = fs @ k0[:, :n_old] + b0[:n_old]
    k_new, b_new = _fit(fs, y, weights, fixed, k0[:, n_old:], b0[n_old:])
    return np.concatenate([kernel, k_new * scale], 1), np.concatenate([bias, b_new])


def top1(kernel, bias, views, labels) -> float:
    """Top-1 of a head on features given as a list of views (probabilities averaged over them)."""
    if not len(labels):
        return float("nan")
    probs = np.mean([softmax(v @ kernel + bias) for v in views], axis=0)
    return float((probs.argmax(1) == labels).mean())
