"""Accuracy, per-class figures, confusions and calibration from (probabilities, labels): pure numpy.

Ties: a class's rank is the number of classes scored strictly higher, plus the number scored
equally that have a lower class index - the order of a stable sort of -probs, and the class
`np.argmax` picks. So a row tied between the true class and another counts as a top-1 hit only
if the true class has the lower index, always the same way, never by chance of sort order.
"""
from __future__ import annotations

import numpy as np


def _check(probs, labels):
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"probs (N, C) and labels (N,) expected, got {probs.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be in [0, {probs.shape[1]}), got {labels.min()}..{labels.max()}")
    return probs, labels


def true_class_rank(probs, labels) -> np.ndarray:
    """0-based rank of each row's true class (see the module note on ties)."""
    probs, labels = _check(probs, labels)
    true = probs[np.arange(len(labels)), labels][:, None]
    higher = (probs > true).sum(1)
    lower_index_equal = ((probs == true) & (np.arange(probs.shape[1])[None, :] < labels[:, None])).sum(1)
    return higher + lower_index_equal


def predictions(probs) -> np.ndarray:
    """Top-1 class per row; ties go to the lower index (np.argmax's rule)."""
    return np.asarray(probs).argmax(1)


def topk_hits(probs, labels, k: int) -> np.ndarray:
    """Per-row bool: true class within the top k. k >= C is always a hit."""
    return true_class_rank(probs, labels) < k


def topk_accuracy(probs, labels, k: int) -> float:
    hits = topk_hits(probs, labels, k)
    return float(hits.mean()) if len(hits) else float("nan")


def confusion_matrix(labels, preds, n_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(preds, np.int64)), 1)
    return cm


def per_class(probs, labels, class_names, k: int = 5) -> list:
    """One row per class: images, top-1/top-k accuracy (None when the class has no image in the
    split), mean confidence of the top prediction, and the most frequent wrong prediction."""
    probs, labels = _check(probs, labels)
    preds = predictions(probs)
    cm = confusion_matrix(labels, preds, probs.shape[1])
    hit1, hitk = preds == labels, topk_hits(probs, labels, k)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    rows = []
    for c, name in enumerate(class_names):
        mask = labels == c
        n = int(mask.sum())
        wrong = cm[c].copy()
        wrong[c] = 0
        top_wrong = int(wrong.argmax()) if wrong.any() else None
        rows.append({
            "class": name, "index": c, "n": n,
            "correct": int(hit1[mask].sum()),
            "top1": float(hit1[mask].mean()) if n else None,
            f"top{k}": float(hitk[mask].mean()) if n else None,
            "mean_confidence": float(conf[mask].mean()) if n else None,
            "predicted_as_this": int(cm[:, c].sum()),
            "most_confused_with": class_names[top_wrong] if top_wrong is not None else None,
            "most_confused_count": int(wrong[top_wrong]) if top_wrong is not None else 0,
        })
    return rows


def macro_accuracy(probs, labels) -> float:
    """Mean of per-class top-1 accuracy over the classes that have images in this split."""
    probs, labels = _check(probs, labels)
    hit = predictions(probs) == labels
    present = np.unique(labels)
    return float(np.mean([hit[labels == c].mean() for c in present])) if len(present) else float("nan")


def most_confused(labels, preds, class_names, top: int = 10) -> list:
    """The most frequent (true -> predicted) mistakes; ties ordered by true then predicted index."""
    cm = confusion_matrix(labels, preds, len(class_names))
    per_true = cm.sum(1)
    np.fill_diagonal(cm, 0)
    true_idx, pred_idx = np.nonzero(cm)
    order = sorted(zip(-cm[true_idx, pred_idx], true_idx, pred_idx))[:top]
    return [{"true": class_names[t], "predicted": class_names[p], "count": int(-neg),
             "fraction_of_true": float(-neg / per_true[t])} for neg, t, p in order]


def calibration(probs, labels, n_bins: int = 15) -> dict:
    """Expected calibration error over equal-width confidence bins, and the reliability data.

    confidence = the top-1 probability, correct = top-1 hit. Bin b holds confidences in
    (b/n, (b+1)/n], the first bin also 0. ECE = sum over bins of (share of images) * |accuracy -
    mean confidence|. Empty bins contribute nothing and have accuracy/confidence None.
    """
    probs, labels = _check(probs, labels)
    conf = probs.max(1) if len(probs) else np.zeros(0)
    correct = (predictions(probs) == labels) if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], conf, side="left")  # edges[b] < conf <= edges[b + 1]
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        acc = float(correct[mask].mean()) if n else None
        mean_conf = float(conf[mask].mean()) if n else None
        if n:
            ece += n / len(conf) * abs(acc - mean_conf)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
                     "accuracy": acc, "confidence": mean_conf})
    return {"ece": float(ece) if len(conf) else float("nan"), "n_bins": n_bins, "bins": bins,
            "mean_confidence": float(conf.mean()) if len(conf) else None}


def summarize(probs, labels, class_names, *, k: int = 5, n_bins: int = 15, top_confusions: int = 10) -> dict:
    """Everything the report needs from one split's predictions."""
    probs, labels = _check(probs, labels)
    preds = predictions(probs)
    return {
        "top1": topk_accuracy(probs, labels, 1),
        f"top{k}": topk_accuracy(probs, labels, k),
        "macro_top1": macro_accuracy(probs, labels),
        "classes_in_split": int(len(np.unique(labels))),
        "per_class": per_class(probs, labels, class_names, k),
        "most_confused": most_confused(labels, preds, class_names, top_confusions),
        "calibration": calibration(probs, labels, n_bins),
        "confusion_matrix": confusion_matrix(labels, preds, probs.shape[1]),
    }
