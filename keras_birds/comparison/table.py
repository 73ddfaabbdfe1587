"""The study's comparison table as data: rows, the recommended-model rule, Markdown and CSV.

A row is a plain dict with the keys of COLUMNS (None where a figure does not apply), so the
same writer serves `keras-birds compare` (trained runs) and tools/benchmark_zoo.py (random-init
builds, no accuracy). Pure Python: no model, no backend.
"""
from __future__ import annotations

import csv
import io

# key, Markdown header, format for Markdown
COLUMNS = (
    ("name", "model", "{}"),
    ("format", "format", "{}"),
    ("unfinished", "training", "{}"),  # a run killed before training ended: "unfinished: stopped after epoch 2 of 5"
    ("params", "parameters", "{:,}"),
    ("fp32_mb", "float32 weights MB", "{:.2f}"),
    ("int8_mb", "exported int8 MB", "{:.2f}"),
    ("valid_top1", "valid top-1 (best epoch)", "pct"),
    ("n_classes", "species", "{}"),  # what top-1 was scored on: species and images of the split
    ("n_images", "images", "{:,}"),
    ("top1", "top-1", "pct"),
    ("top5", "top-5", "pct"),
    ("corruption_top1", "mean corrupted top-1", "pct"),  # `eval --corruptions`; shown when a row has it
    ("latency_ms", "latency batch 1, median ms", "{:.2f}"),
    ("throughput_img_s", "throughput img/s", "{:.1f}"),
    ("device", "device", "{}"),
)
OPTIONAL = ("corruption_top1", "unfinished", "n_classes", "n_images")  # columns left out when no row has the figure
SPLIT_HEADERS = ("n_classes", "n_images", "top1", "top5", "corruption_top1")  # headed "<split> ..."
# Not columns: the data location and split a row was scored on, the digest of its images
# (evaluation.evaluate.images_digest), the model file and the eval report it came from.
EXTRA = ("source", "size_mb", "data", "split", "images", "report")
TOLERANCE_POINTS = 0.5  # the study: within half a point of the best, prefer the smaller, faster model


def new_row(**values) -> dict:
    unknown = set(values) - {k for k, _, _ in COLUMNS} - set(EXTRA)
    if unknown:
        raise KeyError(f"unknown comparison column(s): {', '.join(sorted(unknown))}")
    row = {k: None for k, _, _ in COLUMNS}
    row.update({k: None for k in EXTRA})  # size_mb: the size of what this row ran (weights or file)
    row.update(values)
    return row


def scored_on(row: dict) -> tuple:
    """What a row's top-1 was measured on: data location, split and images."""
    return row.get("data"), row.get("split"), row.get("images")


def pick(rows: list, include_unfinished: bool = False, tolerance_points: float = TOLERANCE_POINTS) -> dict:
    """The recommendation, and what kept rows from it: {"recommended": recommend() or None, "not_ranked": why no
    row was ranked (rows scored on different images) or None, "left_out": rows of unfinished runs set aside}."""
    left_out = [] if include_unfinished else [r for r in rows if r.get("unfinished")]
    candidates = [r for r in rows if not any(r is o for o in left_out)]
    scored = [r for r in candidates if r.get("top1") is not None]
    sets = list(dict.fromkeys(scored_on(r) for r in scored))
    if len(sets) > 1:  # top-1 on other images is another exam: no ranking says which model is better
        groups = "; ".join(", ".join(row_label(r) for r in scored if scored_on(r) == key) + ": "
                           + _scored_text(next(r for r in scored if scored_on(r) == key)) for key in sets)
        why = (f"the rows were scored on different images ({groups}), so their top-1 do not compare and none is "
               f"ranked; compare them on one data set and split (--data ROOT, species every model knows)")
        return {"recommended": None, "not_ranked": why, "left_out": left_out}
    return {"recommended": recommend(candidates, tolerance_points), "not_ranked": None, "left_out": left_out}


def _scored_text(row: dict) -> str:
    images, species = (("?" if row.get(k) is None else f"{row[k]:,}") for k in ("n_images", "n_classes"))
    return f"{images} images of {species} species, {row.get('data')} [{row.get('split')}]"


def _dominated(a: dict, b: dict) -> bool:
    """b is at least as small and as fast as a, and strictly better in one."""
    return (b["size_mb"] <= a["size_mb"] and b["latency_ms"] <= a["latency_ms"]
            and (b["size_mb"] < a["size_mb"] or b["latency_ms"] < a["latency_ms"]))


def recommend(rows: list, tolerance_points: float = TOLERANCE_POINTS) -> dict | None:
    """The study's pick: among rows within `tolerance_points` of the best top-1, the smallest and
    fastest. When size and speed disagree (no candidate is both), the smallest of those not beaten
    on both; `why` then names the faster alternative. None when no row has top-1, size and latency.

    Returns {"row", "best", "candidates", "why"}.
    """
    usable = [r for r in rows if r.get("top1") is not None and r.get("size_mb") is not None
              and r.get("latency_ms") is not None]
    if not usable:
        return None
    best = max(usable, key=lambda r: r["top1"])
    # Compare in points with a little slack, so 0.905 vs 0.910 counts as within 0.5 despite float error.
    near = [r for r in usable if 100 * (best["top1"] - r["top1"]) <= tolerance_points + 1e-9]
    front = [r for r in near if not any(_dominated(r, other) for other in near)]
    pick = min(front, key=lambda r: (r["size_mb"], r["latency_ms"]))
    label = row_label(pick)
    why = (f"{label}: {100 * pick['top1']:.1f}% top-1, {pick['size_mb']:.2f} MB, {pick['latency_ms']:.2f} ms; "
           + ("the best accuracy" if pick is best else
              f"within {tolerance_points:g} point of the best ({row_label(best)}, {100 * best['top1']:.1f}%)"))
    fastest = min(front, key=lambda r: r["latency_ms"])
    if fastest is not pick:
        why += (f"; {row_label(fastest)} is faster ({fastest['latency_ms']:.2f} ms) but larger "
                f"({fastest['size_mb']:.2f} MB)")
    return {"row": pick, "best": best, "candidates": near, "why": why}


def row_label(row: dict) -> str:
    """How the recommendation and the plot name a row: the model, plus its format unless Keras."""
    return row["name"] if (row.get("format") or "keras").startswith("keras") else f"{row['name']} ({row['format']})"


def _cell(value, fmt: str) -> str:
    if value is None:
        return ""
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    return fmt.format(value)


def _columns(rows: list) -> list:
    return [c for c in COLUMNS if c[0] not in OPTIONAL or any(r.get(c[0]) is not None for r in rows)]


def to_markdown(rows: list, split: str | None = None, title: str = "Comparison", notes=(),
                include_unfinished: bool = False) -> str:
    columns = _columns(rows)
    headers = [h if k not in SPLIT_HEADERS or not split else f"{split} {h}" for k, h, _ in columns]
    lines = [f"# {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(k), fmt) for k, _, fmt in columns) + " |")
    lines += [""] + pick_lines(rows, include_unfinished)
    lines.extend(["", *[f"- {n}" for n in notes]] if notes else [])
    return "\n".join(lines) + "\n"


def pick_lines(rows: list, include_unfinished: bool = False) -> list:
    """The recommendation line, and beside it what the rows were scored on and which were left out."""
    choice = pick(rows, include_unfinished)
    rec, left_out = choice["recommended"], choice["left_out"]
    if rec:
        lines = [f"**Recommended:** {rec['why']}"]
    elif choice["not_ranked"]:
        lines = [f"**Recommended:** none: {choice['not_ranked']}"]
    elif left_out:
        lines = ["**Recommended:** none: every row with figures is of an unfinished run"]
    else:
        lines = ["**Recommended:** none (no row has accuracy, size and latency: train and evaluate first)"]
    sets = list(dict.fromkeys(scored_on(r) for r in rows if r.get("top1") is not None))
    if len(sets) == 1 and sets[0][0] is not None:
        lines.append(f"Scored on: {_scored_text(next(r for r in rows if r.get('top1') is not None))}, "
                     f"the same images for every row.")
    if left_out:
        lines.append("Left out of the recommendation (pass --include-unfinished to rank them): "
                     + "; ".join(f"{row_label(r)} ({r['unfinished']})" for r in left_out) + ".")
    return [x for line in lines for x in (line, "")][:-1]  # paragraphs of their own in Markdown


def to_csv(rows: list) -> str:
    buf = io.StringIO()
    keys = [k for k, _, _ in _columns(rows)] + list(EXTRA)
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in keys})
    return buf.getvalue()
