"""Metric code against hand-computed values: ties, classes absent from the split, ECE bins."""
import numpy as np
import pytest

from keras_birds.evaluation import metrics

NAMES = ["A", "B", "C", "D"]  # D: a class of the model with no image in the split
# A fake model's known predictions (rows) for true labels LABELS.
PROBS = np.array([
    [0.70, 0.10, 0.10, 0.10],  # A  hit
    [0.40, 0.40, 0.10, 0.10],  # A  tie A/B: the true class has the lower index -> hit
    [0.40, 0.40, 0.10, 0.10],  # B  same tie, true class has the higher index -> miss (rank 1)
    [0.10, 0.20, 0.55, 0.15],  # B  predicted C (rank 1)
    [0.25, 0.25, 0.25, 0.25],  # C  four-way tie -> predicted A, true class rank 2
    [0.05, 0.05, 0.10, 0.80],  # C  predicted D (rank 1)
    [0.90, 0.05, 0.03, 0.02],  # A  hit
    [0.10, 0.15, 0.20, 0.55],  # C  predicted D (rank 1)
])
LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 2])


def test_ranks_and_topk_with_ties():
    assert metrics.true_class_rank(PROBS, LABELS).tolist() == [0, 0, 1, 1, 2, 1, 0, 1]
    assert metrics.predictions(PROBS).tolist() == [0, 0, 0, 2, 0, 3, 0, 3]
    assert metrics.topk_accuracy(PROBS, LABELS, 1) == pytest.approx(3 / 8)
    assert metrics.topk_accuracy(PROBS, LABELS, 2) == pytest.approx(7 / 8)
    assert metrics.topk_accuracy(PROBS, LABELS, 3) == 1.0
    assert metrics.topk_accuracy(PROBS, LABELS, 5) == 1.0  # k >= number of classes


def test_ties_do_not_depend_on_row_order_or_sort_algorithm():
    tied = np.full((60, 6), 1 / 6)
    labels = np.arange(60) % 6
    assert metrics.topk_hits(tied, labels, 3).tolist() == (labels < 3).tolist()
    perm = np.random.default_rng(0).permutation(60)
    assert metrics.topk_accuracy(tied[perm], labels[perm], 3) == metrics.topk_accuracy(tied, labels, 3) == 0.5


def test_top1_agrees_with_argmax():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), 200)
    probs[::3] = np.round(probs[::3], 1)  # plenty of ties
    labels = rng.integers(0, 7, 200)
    assert metrics.topk_accuracy(probs, labels, 1) == pytest.approx((probs.argmax(1) == labels).mean())


def test_per_class_table_and_macro_over_present_classes():
    rows = metrics.per_class(PROBS, LABELS, NAMES, k=2)
    by = {r["class"]: r for r in rows}
    assert [by[c]["n"] for c in NAMES] == [3, 2, 3, 0]
    assert [by[c]["correct"] for c in NAMES] == [3, 0, 0, 0]
    assert [by[c]["top1"] for c in NAMES] == [1.0, 0.0, 0.0, None]
    assert by["B"]["top2"] == 1.0 and by["C"]["top2"] == pytest.approx(2 / 3) and by["D"]["top2"] is None
    assert by["A"]["mean_confidence"] == pytest.approx((0.7 + 0.4 + 0.9) / 3)
    assert by["D"]["predicted_as_this"] == 2
    assert by["B"]["most_confused_with"] == "A"  # A and C once each: the lower index wins
    assert (by["C"]["most_confused_with"], by["C"]["most_confused_count"]) == ("D", 2)
    assert by["A"]["most_confused_with"] is None
    # macro over A, B, C (D has no images): (1 + 0 + 0) / 3, not the micro 3/8
    assert metrics.macro_accuracy(PROBS, LABELS) == pytest.approx(1 / 3)


def test_most_confused_pairs():
    pairs = metrics.most_confused(LABELS, metrics.predictions(PROBS), NAMES)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("C", "D", 2), ("B", "A", 1), ("B", "C", 1), ("C", "A", 1)]
    assert pairs[0]["fraction_of_true"] == pytest.approx(2 / 3)
    assert metrics.most_confused(LABELS, metrics.predictions(PROBS), NAMES, top=1)[0]["count"] == 2


def test_confusion_matrix():
    cm = metrics.confusion_matrix(LABELS, metrics.predictions(PROBS), 4)
    assert cm.tolist() == [[3, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 2], [0, 0, 0, 0]]


def test_ece_hand_example():
    cal = metrics.calibration(PROBS, LABELS, n_bins=5)
    # confidences .7 .4 .4 .55 .25 .8 .9 .55 ; correct 1 1 0 0 0 0 1 0 ; bins (lower, upper]
    counts = [b["count"] for b in cal["bins"]]
    assert counts == [0, 3, 2, 2, 1]  # 0.4 falls in (0.2, 0.4], 0.8 in (0.6, 0.8]
    assert cal["bins"][0]["accuracy"] is None and cal["bins"][0]["confidence"] is None
    assert cal["bins"][1]["accuracy"] == pytest.approx(1 / 3)
    assert cal["bins"][1]["confidence"] == pytest.approx(0.35)
    assert cal["bins"][3]["accuracy"] == 0.5 and cal["bins"][3]["confidence"] == pytest.approx(0.75)
    expected = 3 / 8 * abs(1 / 3 - 0.35) + 2 / 8 * 0.55 + 2 / 8 * 0.25 + 1 / 8 * 0.1
    assert cal["ece"] == pytest.approx(expected) == pytest.approx(0.21875)


def test_ece_perfectly_calibrated_and_edge_confidences():
    # confidence 1.0 always right, confidence 0.5 right half the time: ECE 0
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    labels = np.array([0, 1, 0, 1])
    cal = metrics.calibration(probs, labels, n_bins=10)
    assert cal["ece"] == pytest.approx(0.0)
    assert cal["bins"][-1]["count"] == 2 and cal["bins"][4]["count"] == 2  # 0.5 in (0.4, 0.5]


def test_summarize_keys_and_bad_shapes():
    s = metrics.summarize(PROBS, LABELS, NAMES)
    assert s["top1"] == pytest.approx(3 / 8) and s["top5"] == 1.0 and s["classes_in_split"] == 3
    assert s["confusion_matrix"].shape == (4, 4)
    with pytest.raises(ValueError):
        metrics.topk_accuracy(PROBS, LABELS[:3], 1)
    with pytest.raises(ValueError):
        metrics.topk_accuracy(PROBS, LABELS + 4, 1)
