"""Open-set scores: how much an image looks like one of the model's species (higher = more known).

Pure numpy, so eval, calibrate-unknown and the tests share one definition of every figure.

Two kinds of score:
  - from the output probabilities alone (`DEPLOYABLE`): what an app running the exported file can
    compute, so a threshold on them means the same in `predict`, in the .tflite and in the app;
  - from the Keras model's insides (logits, pooled features): reported by eval to show whether
    they would separate known from unknown better, but not storable as the run's rule.
"""
from __future__ import annotations

import numpy as np

# The share of known images a threshold keeps (accepts): the 95%.
DEFAULT_ACCEPT = 0.95


def _max_probability(out):
    return out["probs"].max(1)


def _margin(out):
    top2 = np.sort(out["probs"], axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0] if out["probs"].shape[1] > 1 else top2[:, -1]


def _neg_entropy(out):
    p = np.clip(out["probs"], 0.0, 1.0)
    return (p * np.log(np.where(p > 0, p, 1.0))).sum(1)  # 0 log 0 = 0: int8 outputs hold exact zeros


def _max_logit(out):
    return out["logits"].max(1)


def _energy(out):
    z = out["logits"]
    top = z.max(1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(1, keepdims=True)))[:, 0]  # logsumexp: the negative free energy


def unit(x):
    """Rows scaled to length 1 (cosine similarity is then a dot product)."""
    x = np.asarray(x, np.float64)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def _cosine_to_class_mean(out):
    return (unit(out["features"]) @ unit(out["class_means"]).T).max(1)


def _knn_cosine(out):
    # deep nearest neighbours (Sun et al., ICML 2022) on normalised features, k = 1: with 3 photos a species a
    # class is its photos, and a mean of 3 blurs a species that looks different from the side and the front
    return (unit(out["features"]) @ unit(out["train_features"]).T).max(1)


def mahalanobis(x, means, precision):
    """Squared Mahalanobis distance of every row of x to every mean, (N, C)."""
    xp = x @ precision
    return (xp * x).sum(1)[:, None] - 2 * xp @ means.T + ((means @ precision) * means).sum(1)[None]


def shrunk_precision(centred, shrink: float = 0.99):
    """Inverse covariance of the rows, shrunk toward a scaled identity: 3 photos a species leave a 1280-d
    covariance singular. 0.99 measured best on the protocol's valid side (of 0.5, 0.9, 0.99; tools/bench_openset_heads.py)."""
    cov = np.atleast_2d(np.cov(np.asarray(centred, np.float64).T))
    return np.linalg.inv((1 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / len(cov))


def _relative_mahalanobis(out):
    # Ren et al. 2021: the distance to the nearest class Gaussian (a shared covariance) minus the distance to one
    # Gaussian of all train photos, so a photo far from every bird is not mistaken for a far-off known species
    train, y, means = out["train_features"], out["train_labels"], out["class_means"]
    centre = train.mean(0)
    within, whole = shrunk_precision(train - means[y]), shrunk_precision(train - centre)
    x = np.asarray(out["features"], np.float64)
    return -(mahalanobis(x, means, within) - mahalanobis(x, centre[None], whole)).min(1)


# name -> (function of the outputs dict, what the app computes from the output vector p, or None); the
# phrase reads in "answer 'unknown' when <phrase> is below T" (rule.rule_payload).
SCORES = {
    "max_probability": (_max_probability, "the top probability max(p)"),
    "margin": (_margin, "the margin p1 - p2 between the two largest probabilities"),
    "neg_entropy": (_neg_entropy, "the negative entropy -H(p) = sum(p * log p)"),
    "max_logit": (_max_logit, None),
    "energy": (_energy, None),
    "cosine_to_class_mean": (_cosine_to_class_mean, None),
    "knn_cosine": (_knn_cosine, None),
    "relative_mahalanobis": (_relative_mahalanobis, None),
}
DEPLOYABLE = tuple(name for name, (_, rule) in SCORES.items() if rule)
RULE_NOTES = {"neg_entropy": "a p of 0 adds 0"}  # int8 outputs hold exact zeros, where log p is -inf
NEEDS = {"max_logit": ("logits",), "energy": ("logits",), "cosine_to_class_mean": ("features", "class_means"),
         "knn_cosine": ("features", "train_features"),
         "relative_mahalanobis": ("features", "train_features", "train_labels", "class_means")}


def available(out: dict) -> list:
    """The scores computable from `out` ({"probs", and for a Keras model "logits", "features", "class_means"})."""
    return [name for name in SCORES if all(out.get(k) is not None for k in NEEDS.get(name, ()))]


def score(name: str, out: dict) -> np.ndarray:
    return np.asarray(SCORES[name][0](out), dtype=np.float64)


def auroc(known, unknown) -> float:
    """P(score of a known image > score of an unknown one), ties counting half (Mann-Whitney U)."""
    known, unknown = np.asarray(known, np.float64), np.sort(np.asarray(unknown, np.float64))
    if not len(known) or not len(unknown):
        return float("nan")
    below = np.searchsorted(unknown, known, "left")
    tied = np.searchsorted(unknown, known, "right") - below
    return float((below + 0.5 * tied).sum() / (len(known) * len(unknown)))


def threshold_at(known, accept: float = DEFAULT_ACCEPT) -> float:
    """The highest threshold t with at least `accept` of the known scores >= t (accepted)."""
    known = np.sort(np.asarray(known, np.float64))
    if not len(known):
        raise ValueError("no known image to set a threshold on")
    k = int(np.floor((1.0 - accept) * len(known) + 1e-9))  # images that may fall below
    return float(known[min(k, len(known) - 1)])


def rates(known, unknown, threshold: float) -> dict:
    """Known images accepted and unknown images rejected at `threshold` (score >= threshold: accepted)."""
    known, unknown = np.asarray(known), np.asarray(unknown)
    return {"known_accepted": float((known >= threshold).mean()) if len(known) else None,
            "unknown_rejected": float((unknown < threshold).mean()) if len(unknown) else None}


def compare_scores(known_out: dict, unknown_out: dict, accept: float = DEFAULT_ACCEPT, names=None) -> dict:
    """{score: {auroc, threshold (keeps `accept` of these known images), known_accepted, unknown_rejected}}."""
    names = names or [n for n in available(known_out) if n in available(unknown_out)]
    figures = {}
    for name in names:
        k, u = score(name, known_out), score(name, unknown_out)
        t = threshold_at(k, accept)
        figures[name] = {"auroc": auroc(k, u), "threshold": t, **rates(k, u, t),
                         "deployable": name in DEPLOYABLE}
    return figures
