"""The parity gate's rule (export/verify.py) on synthetic predictions: fast and deterministic. Real
broken files: test_gate_broken_files.py."""
import numpy as np
import pytest

from keras_birds.export import verify as gate

N_CLASSES = 10


def _predictions(n, lost, gained, *, near_tie_flips=0, decisive_margin=0.6, seed=0):
    """(ref, out, truth) with `lost` images Keras gets right and the file wrong, `gained` the reverse,
    and `near_tie_flips` images where both are wrong and the file changes a near-tie (margin 0.01)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, N_CLASSES, n)
    ref = np.full((n, N_CLASSES), (1 - decisive_margin) / (N_CLASSES + 1), np.float32)
    keras_top = truth.copy()
    keras_top[:gained] = (truth[:gained] + 1) % N_CLASSES  # Keras wrong where the file gains
    ref[np.arange(n), keras_top] += decisive_margin + ref[0, 0]
    out_top = keras_top.copy()
    out_top[gained:gained + lost] = (truth[gained:gained + lost] + 2) % N_CLASSES
    out_top[:gained] = truth[:gained]
    ties = np.arange(gained + lost, gained + lost + near_tie_flips)
    ref[ties] = 0.0
    ref[ties, (truth[ties] + 3) % N_CLASSES] = 0.505
    ref[ties, (truth[ties] + 4) % N_CLASSES] = 0.495
    keras_top[ties] = (truth[ties] + 3) % N_CLASSES
    out_top[ties] = (truth[ties] + 4) % N_CLASSES
    out = np.eye(N_CLASSES, dtype=np.float32)[out_top]
    return ref, out, truth


def test_bound_matches_tango_and_grows_with_the_evidence():
    assert 100 * gate.drop_lower_bound(4, 0, 125) == pytest.approx(0.28, abs=0.01)
    assert 100 * gate.drop_lower_bound(5, 0, 125) == pytest.approx(1.07, abs=0.01)
    assert 100 * gate.drop_lower_bound(42, 0, 2625) == pytest.approx(1.23, abs=0.01)
    # the same observed drop (1.6 points) is inside the tolerance on 125 images, beyond it on 2,625
    assert gate.drop_lower_bound(2, 0, 125) < 0.01 < gate.drop_lower_bound(42, 0, 2625)
    assert gate.drop_lower_bound(5, 2, 125) < gate.drop_lower_bound(5, 0, 125)  # gains offset losses
    assert gate.drop_lower_bound(0, 0, 125) < 0 and gate.drop_lower_bound(0, 0, 0) == -1.0


@pytest.mark.parametrize("n", [125, 2625])
def test_a_file_at_the_tolerance_rarely_fails_on_any_split_size(n):
    """True drop exactly 1 point (2% lost, 1% gained): the bound fails it in under 5% of splits,
    on 125 images as on 2,625; a true drop of 3 points fails far more often."""
    rng = np.random.default_rng(0)

    def fail_rate(p_lost, p_gained, trials=400):
        counts = rng.multinomial(n, [p_lost, p_gained, 1 - p_lost - p_gained], size=trials)
        return np.mean([100 * gate.drop_lower_bound(b, c, n) > gate.MAX_TOP1_DROP_POINTS for b, c, _ in counts])

    assert fail_rate(0.02, 0.01) <= 0.07
    assert fail_rate(0.04, 0.01) >= (0.15 if n == 125 else 0.99)


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_judge_counts_flips_near_ties_and_decisive_changes(quantize):
    ref, out, truth = _predictions(125, lost=1, gained=1, near_tie_flips=2)
    figures, problems = gate.judge(ref, out, truth, quantize)
    assert (figures["lost"], figures["gained"], figures["near_ties"]) == (1, 1, 2)
    assert figures["top1_drop_points"] == 0 and figures["top1_agreement"] == pytest.approx(121 / 125)
    assert figures["decisive_changes"] == 2  # the lost and the gained image: Keras was sure of both
    assert bool(problems) == (quantize == "none")  # a float file may not change a decisive answer


def test_near_tie_flips_alone_pass_a_float_file():
    ref, out, truth = _predictions(125, lost=0, gained=0, near_tie_flips=3)
    figures, problems = gate.judge(ref, out, truth, "fp16")
    assert problems == [] and figures["top1_agreement"] == pytest.approx(122 / 125)


@pytest.mark.parametrize("n, lost, gained, fails", [
    (125, 1, 0, False), (125, 3, 0, False),  # 2.4 points: inside the bound and the cap
    (125, 4, 0, True),  # 3.2 points: the bound says 0.28, the cap fails it
    (125, 5, 0, True),  # bound 1.07 > 1
    (25, 1, 0, True),  # 4 points on a tiny split: the cap
    (2625, 21, 0, False), (2625, 42, 0, True)])  # 0.8 and 1.6 points (bound 1.23) on a large split
def test_quantised_verdicts(n, lost, gained, fails):
    ref, out, truth = _predictions(n, lost, gained)
    _, problems = gate.judge(ref, out, truth, "int8")
    assert bool(problems) == fails, problems
