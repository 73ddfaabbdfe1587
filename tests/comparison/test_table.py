"""The comparison table's maths: the recommended-model rule, Markdown and CSV."""
import csv
import io

import pytest

from keras_birds.comparison.table import new_row, recommend, to_csv, to_markdown


def row(name, top1, mb, ms, **kw):
    return new_row(name=name, format="keras", top1=top1, size_mb=mb, fp32_mb=mb, latency_ms=ms, **kw)


def test_best_model_wins_when_nothing_is_close():
    rows = [row("big", 0.95, 90.0, 80.0), row("small", 0.90, 10.0, 5.0)]
    rec = recommend(rows)
    assert rec["row"]["name"] == "big"
    assert "the best accuracy" in rec["why"]


def test_smaller_faster_model_within_half_a_point_wins():
    rows = [row("big", 0.950, 90.0, 80.0), row("mid", 0.946, 20.0, 10.0), row("tiny", 0.940, 5.0, 2.0)]
    rec = recommend(rows)
    assert rec["row"]["name"] == "mid"  # 0.4 points below the best; tiny is 1.0 below
    assert [r["name"] for r in rec["candidates"]] == ["big", "mid"]
    assert "within 0.5 point of the best (big, 95.0%)" in rec["why"]


def test_exactly_half_a_point_counts_despite_float_error():
    rows = [row("a", 0.91, 50.0, 50.0), row("b", 0.905, 5.0, 5.0)]
    assert recommend(rows)["row"]["name"] == "b"
    assert recommend(rows, tolerance_points=0.4)["row"]["name"] == "a"


def test_size_and_speed_disagree_smallest_undominated_wins_and_faster_is_named():
    rows = [row("small-slow", 0.90, 4.0, 30.0), row("big-fast", 0.90, 40.0, 3.0),
            row("dominated", 0.90, 50.0, 40.0)]
    rec = recommend(rows)
    assert rec["row"]["name"] == "small-slow"
    assert "big-fast is faster (3.00 ms) but larger (40.00 MB)" in rec["why"]


def test_rows_without_accuracy_or_latency_are_not_candidates():
    assert recommend([new_row(name="zoo", size_mb=5.0, latency_ms=3.0)]) is None
    rows = [row("timed", 0.80, 5.0, 3.0), new_row(name="untimed", top1=0.99, size_mb=1.0)]
    assert recommend(rows)["row"]["name"] == "timed"


def test_exported_rows_are_labelled_by_format():
    rows = [row("lite0", 0.90, 14.0, 30.0),
            new_row(name="lite0", format="tflite int8", top1=0.899, size_mb=4.1, int8_mb=4.1, latency_ms=1.2)]
    assert recommend(rows)["row"]["format"] == "tflite int8"
    assert recommend(rows)["why"].startswith("lite0 (tflite int8): 89.9% top-1, 4.10 MB, 1.20 ms")


def test_markdown_and_csv_hold_every_row_and_the_recommendation():
    rows = [row("a", 0.9123, 14.3, 31.5, params=3_573_149, top5=0.99, valid_top1=0.904, device="cpu"),
            row("b", 0.5, 1.0, 1.0)]
    md = to_markdown(rows, "test", notes=["a note"])
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| model"))
    assert "test top-1" in header and "valid top-1 (best epoch)" in header
    assert "| a | keras | 3,573,149 | 14.30 |  | 90.4% | 91.2% | 99.0% | 31.50 |  | cpu |" in lines
    assert "**Recommended:** a: 91.2% top-1" in md and "- a note" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["name"] for r in parsed] == ["a", "b"]
    assert float(parsed[0]["top1"]) == pytest.approx(0.9123) and parsed[0]["int8_mb"] == ""


def test_unknown_column_is_refused():
    with pytest.raises(KeyError, match="acuracy"):
        new_row(name="x", acuracy=1.0)


def test_keras_rows_with_tta_are_labelled_by_name():
    rows = [new_row(name="lite0", format="keras (flip TTA)", top1=0.9, size_mb=14.0, latency_ms=60.0)]
    assert recommend(rows)["why"].startswith("lite0: 90.0% top-1")
