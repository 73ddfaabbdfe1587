"""The study's sections, in the study's order, from collected data (collect.py, dataset.py).

Each builder takes plain data and returns one section (blocks.py); a piece that is absent becomes a
"not measured" block with the command that would measure it. Figures are drawn here (plots.py).
"""
from __future__ import annotations

from pathlib import Path

from keras_birds.comparison.table import COLUMNS, OPTIONAL, SPLIT_HEADERS, TOLERANCE_POINTS
from keras_birds.reporting import plots
from keras_birds.reporting.blocks import cell, figure, not_measured, num, p, pct, section, table
from keras_birds.reporting.collect import measured
from keras_birds.reporting.sections_eval import (calibration_section, export_section, per_class_section,
                                                 robustness_section)


def _glance_row(r: dict) -> tuple:
    """A run's headline figures: its eval top-1 and its int8 file's size, gate and latency (export.json)."""
    e, x = r["main_eval"], r["export"]
    int8 = next((f for f in x.get("files", []) if f.get("quantize") == "int8"), None) if measured(x) else None
    top1 = cell(e.get("top1"), "pct") if measured(e) else "not measured"
    split = e.get("split", "") if measured(e) else ""
    if int8 is None:
        return (r["label"], r.get("model") or "", num(r.get("image_size"), "{} px"), split, top1, "not measured", "",
                "", r["path"])
    return (r["label"], r.get("model") or "", num(r.get("image_size"), "{} px"), split, top1,
            cell(int8.get("size_mb"), "{:.2f}"), "passed" if int8.get("verified") else "FAILED",
            cell(int8.get("latency_ms_b1_median"), "{:.1f}"), r["path"])


def summary_section(study: dict) -> dict:
    runs, comp = study["runs"], study["comparison"]
    rec = comp.get("recommended") if measured(comp) else None
    blocks = [{"kind": "lead", "text": f"Recommended: {rec['why']}."} if rec else
              not_measured("no recommendation: " + (comp["why"] if not measured(comp) else comp.get("not_ranked") or
                                                     "the comparison has no row with accuracy, size and latency")),
              *_unfinished_blocks(runs),
              table(["run", "model", "input", "eval split", "top-1 (Keras)", "int8 MB", "int8 gate", "int8 latency ms",
                     "run directory"], [_glance_row(r) for r in runs]),
              p(f"{len(runs)} run(s); generated {study['created']} by `keras-birds report` from the files the "
                "toolkit wrote (each section names them under \"from:\"). Nothing was retrained or re-evaluated "
                "for this page. Top-1: the run's own model on its eval split (Per species); int8: "
                "RUN_DIR/export/export.json (Export for phones).")]
    sources = [comp.get("source")] + [r["main_eval"].get("source") for r in runs] + [
        r["export"].get("source") for r in runs]
    return section("summary", "At a glance", blocks, sources)


def _unfinished_blocks(runs: list) -> list:
    return [p(f"{r['label']}: training {r['unfinished']['note']} (no model.keras): its figures are of its best epoch "
              f"so far, and compare leaves it out of the recommendation unless --include-unfinished.")
            for r in runs if r.get("unfinished")]


def data_section(overview: dict) -> dict:
    if not measured(overview):
        return section("data", "Data", [not_measured(overview["why"])])
    o = overview
    per = o["per_species"]
    rows = [(s, num(n), f"{per[s]['min']} / {per[s]['median']} / {per[s]['max']}", per[s]["species_without_images"])
            for s, n in o["per_split"].items()]
    blocks = [p(f"{len(o['species'])} species in `{o['root']}` (the runs' data, from recipe.json), "
                f"{sum(o['per_split'].values()):,} images."),
              table(["split", "images", "per species min / median / max", "species without images"], rows)]
    if o["sizes"]:
        blocks.append(figure("data_image_sizes", plots.image_sizes(o["sizes"]),
                             f"Image size and aspect ratio of {len(o['sizes']):,} of the {o['sized_of']:,} images "
                             f"(evenly spaced; headers only)" + (f"; {o['unreadable_headers']} unreadable"
                                                                 if o["unreadable_headers"] else "") + "."))
    thumbs = [{"caption": name, "images": [{"data": t, "label": Path(path).name}]}
              for name, path in o["samples"] if (t := plots.thumbnail(path))]
    if thumbs:
        blocks += [p(f"One image of each of {len(thumbs)} species, evenly spaced over the list:"),
                   {"kind": "thumbs", "style": "samples", "items": thumbs}]
    return section("data", "Data", blocks, [o["root"]])


def clean_section(audit) -> dict:
    if audit is None:
        return section("clean", "Cleaning audit", [not_measured(
            "no audit given: run `keras-birds clean --data ROOT --out DIR`, then pass --clean DIR")])
    splits = list(audit.get("images", {}))
    rows = [[issue] + [by_split.get(s, 0) for s in splits] + [sum(by_split.values())]
            for issue, by_split in audit["issues"].items() if sum(by_split.values())]
    ex = audit.get("excluded", {})
    blocks = [p(f"`keras-birds clean` of {audit.get('data')} ({audit.get('created', 'date unknown')}): "
                + ", ".join(f"{s} {n:,}" for s, n in audit.get("images", {}).items()) + " files audited."),
              table(["issue"] + splits + ["total"], rows) if rows else p("No issue of any type was found."),
              p(f"exclude.txt leaves out {audit.get('excluded_files', 0)} files; by reason: "
                + (", ".join(f"{k} {v}" for k, v in ex.get("by_reason", {}).items()) or "none") + ".")]
    missing_species = audit.get("species_missing") or {}
    if missing_species:
        blocks.append(p(f"{len(missing_species)} species lack images in a split: " + "; ".join(
            f"{k} (missing from {', '.join(v['missing_from'])})" for k, v in list(missing_species.items())[:10])))
    for issue, path in audit.get("sheets", {}).items():
        blocks.append(figure(f"clean_{issue}", plots.embed_png(path, 760), f"{issue}: the worst cases ({path})"))
    return section("clean", "Cleaning audit", blocks, [audit["source"], audit.get("report_md")])


def training_section(runs: list) -> dict:
    blocks, sources, rows, curves = [], [], [], []
    for r in runs:
        t = r["training"]
        if not measured(t):
            blocks.append(not_measured(f"{r['label']}: {t['why']}"))
            continue
        best = next((row for row in t["rows"] if row.get("epoch") == t["best_epoch"]), None) or {}
        s = t["summary"]
        rows.append((r["label"], len(t["rows"]), num(t["best_epoch"]), cell(t.get("best_val_top1"), "pct"),
                     cell(best.get("val_top5"), "pct"), cell(best.get("val_loss"), "{:.3f}"),
                     cell(best.get("lr"), "{:.2g}"), num(s.get("train_images")),
                     num(s.get("wall_seconds_this_session"), "{:,.0f} s")))
        curves.append((r["label"], t["rows"], t["best_epoch"]))
        sources += t["sources"]
    if rows:
        blocks = [table(["run", "epochs", "best epoch", "valid top-1", "valid top-5", "valid loss", "LR",
                         "train images", "wall time (last session)"], rows),
                  figure("training_curves", plots.training_curves(curves),
                         "Per-epoch loss, top-1 and learning rate (at the end of the epoch) from each run's "
                         "metrics.json; a run of one epoch (a linear probe) is a single point.")] + blocks
    return section("training", "Training", blocks + _unfinished_blocks(runs), sources)


def comparison_columns(rows: list) -> list:
    """compare's columns (comparison/table.py), less the optional ones no row fills."""
    return [c for c in COLUMNS if c[0] not in OPTIONAL or any(r.get(c[0]) is not None for r in rows)]


def comparison_section(comp: dict) -> dict:
    if not measured(comp):
        return section("comparison", "Accuracy, size and speed", [not_measured(comp["why"])])
    split = comp.get("split") or ""
    columns = comparison_columns(comp["rows"])
    headers = [f"{split} {h}" if k in SPLIT_HEADERS and split else h for k, h, _ in columns]
    rows = [[cell(r.get(k), fmt) for k, _, fmt in columns] for r in comp["rows"]]
    blocks = [p(f"The table of `keras-birds compare` ({comp['source']}), as it wrote it: {len(rows)} rows."),
              table(headers, rows, id="comparison-table")]
    if comp["runs_absent"]:
        blocks.append(not_measured("these runs have no row in it: " + ", ".join(comp["runs_absent"])))
    if comp.get("other_runs"):
        blocks.append(p("It also holds rows of runs not in this report: " + ", ".join(map(str, comp["other_runs"]))
                        + "."))
    if comp.get("pareto"):
        blocks.append(figure("pareto", plots.embed_png(comp["pareto"]),
                             f"Accuracy against batch-1 latency, marker area ~ size ({comp['pareto']})."))
    else:
        blocks.append(not_measured(f"no pareto.png beside {comp['source']}"))
    blocks += [p("Notes of the comparison:")] + [p("- " + n) for n in comp.get("notes", [])]
    return section("comparison", "Accuracy, size and speed", blocks, [comp["source"], comp.get("pareto")])


def recommendation_section(comp: dict) -> dict:
    rule = (f"The rule (the study's): among the models within {TOLERANCE_POINTS:g} point of the best top-1 on the "
            "comparison's split, the smallest and fastest; when size and speed disagree, the smallest of those no "
            "other beats on both.")
    if not measured(comp):
        return section("recommendation", "Recommendation", [p(rule), not_measured(comp["why"])])
    rec = comp.get("recommended")
    blocks = [p(rule), p(f"Pick: {rec['name']} ({rec['format']}). {rec['why']}.") if rec else
              not_measured(comp.get("not_ranked") or "no row has top-1, size and latency (compare --latency-runs 0?)")]
    blocks += [p(f"Left out of the pick: {x['row']} ({x['why']}); `compare --include-unfinished` ranks it.")
               for x in comp.get("left_out") or []]
    return section("recommendation", "Recommendation", blocks, [comp["source"]])


def build_sections(study: dict, overview: dict, audit) -> list:
    runs = study["runs"]
    return [summary_section(study), data_section(overview), clean_section(audit), training_section(runs),
            comparison_section(study["comparison"]), per_class_section(runs, overview), calibration_section(runs),
            export_section(runs), robustness_section(runs), recommendation_section(study["comparison"])]

