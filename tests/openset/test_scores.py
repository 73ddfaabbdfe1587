"""Open-set scores and figures (pure numpy): AUROC, the 95% threshold, rejection, and the unknown rule."""
import itertools
import json

import numpy as np
import pytest

from keras_birds.errors import UserError
from keras_birds.openset import scores
from keras_birds.openset.rule import UnknownRule, parse_rule, rule_payload


def test_auroc_counts_pairs_with_ties_as_half():
    rng = np.random.default_rng(0)
    known, unknown = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 30).astype(float)  # many ties
    pairs = [1.0 if k > u else 0.5 if k == u else 0.0 for k, u in itertools.product(known, unknown)]
    assert scores.auroc(known, unknown) == pytest.approx(np.mean(pairs))
    assert scores.auroc([2, 3], [0, 1]) == 1.0 and scores.auroc([0, 1], [2, 3]) == 0.0
    assert np.isnan(scores.auroc([], [1.0]))


@pytest.mark.parametrize("n", [1, 19, 20, 100, 101])
def test_threshold_keeps_at_least_the_share_asked_and_is_the_highest_that_does(n):
    known = np.random.default_rng(n).normal(size=n)
    t = scores.threshold_at(known, 0.95)
    assert (known >= t).mean() >= 0.95
    higher = np.sort(known)[np.sort(known) > t]
    assert not len(higher) or (known >= higher[0]).mean() < 0.95


def test_scores_from_probabilities_survive_int8_zeros_and_rank_sure_answers_first():
    sure, unsure = [0.96, 0.04, 0.0, 0.0], [0.3, 0.3, 0.2, 0.2]
    out = {"probs": np.array([sure, unsure])}
    for name in scores.DEPLOYABLE:
        s = scores.score(name, out)
        assert np.isfinite(s).all() and s[0] > s[1], name
    assert scores.available(out) == list(scores.DEPLOYABLE)
    logits = np.array([[5.0, 1, 0, 0], [1.0, 1, 0.5, 0.5]])
    full = {**out, "logits": logits, "features": np.eye(4)[:2], "class_means": np.eye(4),
            "train_features": np.eye(4), "train_labels": np.arange(4)}
    assert scores.available(full) == list(scores.SCORES)
    assert scores.score("energy", full)[0] == pytest.approx(np.log(np.exp(logits[0]).sum()))


def test_nearest_neighbour_score_looks_at_each_train_photo_not_the_class_mean():
    # one species photographed from two sides: a query like one side is near a photo, far from the mean
    side, front = np.array([1.0, 0, 0]), np.array([0.0, 1, 0])
    out = {"features": np.array([[0.9, 0.1, 0.0], [0.0, 0.0, 1.0]]), "class_means": np.array([(side + front) / 2]),
           "train_features": np.stack([side, front])}
    knn, mean = scores.score("knn_cosine", out), scores.score("cosine_to_class_mean", out)
    assert knn[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1)) and knn[0] > mean[0]
    assert knn[1] == pytest.approx(0.0) and knn[0] > knn[1]  # unlike every photo: ranked unknown


def test_relative_mahalanobis_ranks_photos_near_a_species_first_and_ignores_where_the_features_sit():
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 4, (3, 8))  # species 0 and 1 known, 2 unseen
    y = np.repeat([0, 1], 5)
    train = centres[y] + rng.normal(0, 1, (10, 8))
    query = np.concatenate([centres[[0, 1]].repeat(4, 0), centres[[2]].repeat(4, 0)]) + rng.normal(0, 1, (12, 8))
    bank = {"train_features": train, "train_labels": y, "class_means": np.stack([train[y == c].mean(0) for c in (0, 1)])}
    s = scores.score("relative_mahalanobis", {"features": query, **bank})
    assert scores.auroc(s[:8], s[8:]) == 1.0
    shift = rng.normal(0, 10, 8)  # a constant offset of every feature moves both Gaussians with it
    moved = {"features": query + shift, "train_features": train + shift, "train_labels": y,
             "class_means": bank["class_means"] + shift}
    assert scores.score("relative_mahalanobis", moved) == pytest.approx(s, rel=1e-6, abs=1e-6)


def test_compare_scores_gives_every_score_its_figures():
    rng = np.random.default_rng(1)
    known = {"probs": rng.dirichlet(np.full(5, 0.2), 200)}  # peaked: sure answers
    unknown = {"probs": rng.dirichlet(np.full(5, 5.0), 100)}  # flat: unsure ones
    figures = scores.compare_scores(known, unknown)
    assert set(figures) == set(scores.DEPLOYABLE)
    for f in figures.values():
        assert f["auroc"] > 0.9 and f["known_accepted"] >= 0.95 and f["unknown_rejected"] > 0.5 and f["deployable"]


def test_the_rule_an_app_applies_and_its_bad_forms():
    json_text = json.dumps(rule_payload("margin", 0.2))
    rule = parse_rule(json_text, "x")
    assert rule == UnknownRule("margin", 0.2, "x") and "p1 - p2" in json_text
    assert rule.accepted([[0.5, 0.2, 0.3], [0.4, 0.35, 0.25]]).tolist() == [True, False]
    with pytest.raises(UserError, match="not one computed from probabilities"):
        parse_rule('{"score": "energy", "threshold": 1}', "RUN/unknown.json")
    with pytest.raises(UserError, match="calibrate-unknown"):
        parse_rule("{not json", "RUN/unknown.json")


def test_each_scores_rule_reads_as_a_sentence_with_its_threshold():
    """Issue 29, 9: the entropy rule read "answer 'unknown' when sum(p * log p), with 0 log 0 = 0 < threshold"."""
    assert rule_payload("max_probability", 0.241)["rule"] == ("answer 'unknown' when the top probability max(p) "
                                                              "is below 0.241")
    assert rule_payload("margin", 0.1)["rule"] == ("answer 'unknown' when the margin p1 - p2 between the two largest "
                                                   "probabilities is below 0.1")
    assert rule_payload("neg_entropy", -1.23)["rule"] == ("answer 'unknown' when the negative entropy -H(p) = "
                                                          "sum(p * log p) is below -1.23 (a p of 0 adds 0)")
    for name in scores.DEPLOYABLE:
        assert "< threshold" not in rule_payload(name, 0.5)["rule"]
