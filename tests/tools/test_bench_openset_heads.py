"""tools/bench_openset_heads.py's candidates on generated features: the outlier-exposure head really learns low
confidence on the pool, and the feature scores rank photos near the train photos above far ones."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("bench_openset_heads")


def _fold(rng, n_classes=4, dim=16, per_class=6):
    """A fold's cached views: known species around their centres, the pool and the unseen group elsewhere."""
    centres = rng.normal(0, 3, (n_classes + 2, dim))

    def photos(classes, n):
        y = np.repeat(classes, n)
        return centres[y] + rng.normal(0, 1, (len(y), dim)), y

    d = {}
    for key, classes in (("train", range(n_classes)), ("known_valid", range(n_classes)), ("known_test", range(n_classes)),
                         ("pool_fit", [n_classes]), ("pool_check", [n_classes]), ("unseen", [n_classes + 1])):
        f, y = photos(list(classes), per_class)
        d[key + "_f0"], d[key + "_f1"], d[key + "_y"] = f, f + rng.normal(0, 0.1, f.shape), y
    d["kernel"], d["bias"] = rng.normal(0, 0.1, (dim, n_classes)), np.zeros(n_classes)
    return d


def test_outlier_exposure_lowers_the_pools_confidence_and_keeps_the_known_answers(tool):
    from keras_birds.openset.outputs import softmax

    d = _fold(np.random.default_rng(0))
    f, y, pool = d["train_f0"], d["train_y"], d["pool_fit_f0"]
    plain = tool.fit_head(f, y, 4, epochs=200)
    exposed = tool.fit_head(f, y, 4, pool, loss="oe", lam=1.0, epochs=200)
    top = lambda head, x: softmax(x @ head[0] + head[1]).max(1)  # noqa: E731
    assert top(exposed, d["pool_check_f0"]).mean() < top(plain, d["pool_check_f0"]).mean() - 0.1
    for head in (plain, exposed):
        assert (softmax(d["known_test_f0"] @ head[0] + head[1]).argmax(1) == d["known_test_y"]).mean() >= 0.9


def test_feature_scores_and_fold_rows_rank_known_photos_above_unseen_ones(tool):
    d = _fold(np.random.default_rng(1))
    rows = tool.fold_rows(d)
    assert list(rows)[0] == "run head: max_probability" and set(tool.HEADS) < set(rows)
    for name in ("knn k=1", "mahalanobis (shrink 0.99)", "relative mahalanobis", "max_probability + knn k=1"):
        assert rows[name]["test_auroc"] > 0.9, (name, rows[name])
    assert rows["refit probe (clean + mirrored)"]["known_top1"] >= 0.9


def test_react_clips_features_at_the_train_percentile_before_the_run_head(tool):
    from keras_birds.openset.outputs import softmax

    d = _fold(np.random.default_rng(2))
    clip = np.percentile(np.concatenate([d["train_f0"], d["train_f1"]]), 90)
    react = tool.head_probs(d, "ReAct p90 (run head, clipped features)")
    plain = tool.head_probs(d, "run head: max_probability")
    expected = np.mean([softmax(np.minimum(d[f"unseen_f{v}"], clip) @ d["kernel"] + d["bias"]) for v in (0, 1)], 0)
    np.testing.assert_allclose(react["unseen"], expected, rtol=1e-12)
    assert (d["unseen_f0"] > clip).any() and not np.allclose(react["unseen"], plain["unseen"])


def test_ensemble_averages_the_recipes_probabilities_and_refuses_folds_that_differ(tool):
    d = _fold(np.random.default_rng(3))
    d["kernel"], d["bias"] = tool.fit_head(d["train_f0"], d["train_y"], 4, epochs=200)
    flat = dict(d, kernel=np.zeros_like(d["kernel"]))  # a head that answers uniform probabilities
    rows = tool.ensemble_rows([d, flat], ["good", "flat"])
    # averaging with the uniform answer keeps the good head's argmax and its ranking: the same figures
    assert rows["ensemble: max_probability"] == pytest.approx(rows["good: max_probability"])
    assert rows["flat: max_probability"]["known_top1"] < rows["good: max_probability"]["known_top1"]
    with pytest.raises(AssertionError, match="folds differ"):
        tool.ensemble_rows([d, dict(d, unseen_y=d["unseen_y"] + 1)], ["a", "b"])
