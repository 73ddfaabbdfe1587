"""Sections from eval and export files: per-class accuracy and confusions, calibration, export, robustness.

Per-class figures, confusions and calibration come from each run's eval report of its own Keras model
(collect.main_eval: the comparison's split, else test, else valid); thumbnails of a confused pair show
one image of each species from the data set (the eval report names species, not the images it missed).
"""
from __future__ import annotations

from keras_birds.reporting import plots
from keras_birds.reporting.blocks import cell, details, figure, not_measured, num, p, pct, section, table
from keras_birds.reporting.collect import measured

SHOWN_CLASSES = 20  # worst species in the open table; the rest folded
PAIRS_PER_RUN = 6  # most-confused pairs with thumbnails, per run


def _with_eval(runs: list) -> list:
    return [r for r in runs if measured(r["main_eval"])]


def _absent(runs: list) -> list:
    out = []
    for r in runs:
        if not measured(r["main_eval"]):
            out.append(not_measured(f"{r['label']}: {r['main_eval']['why']}"))
    return out


def per_class_section(runs: list, overview: dict) -> dict:
    have = _with_eval(runs)
    blocks = _absent(runs)
    if not have:
        return section("per-class", "Per species", blocks)
    by_run = [{c["class"]: c for c in r["main_eval"].get("per_class") or []} for r in have]
    species = sorted({name for d in by_run for name in d})

    def mean_top1(name):
        values = [d[name]["top1"] for d in by_run if name in d and d[name].get("top1") is not None]
        return sum(values) / len(values) if values else 2.0  # no images: last

    weak = sorted((s for s in species if mean_top1(s) < 1), key=lambda s: (mean_top1(s), s))
    headers = ["species"] + [f"{r['label']} ({r['main_eval']['split']})" for r in have]
    rows = [[s] + [_correct(d.get(s)) for d in by_run] for s in weak]
    blocks.insert(0, p(f"Top-1 per species (images correct / images) on each run's eval split; {len(weak)} of "
                       f"{len(species)} species are below 100% in at least one run, worst first."))
    if rows:
        blocks.append(table(headers, rows[:SHOWN_CLASSES]))
    if len(rows) > SHOWN_CLASSES:
        blocks.append(details(f"the other {len(rows) - SHOWN_CLASSES} species below 100%",
                              [table(headers, rows[SHOWN_CLASSES:])]))
    blocks += _confused_pairs(have, overview)
    return section("per-class", "Per species", blocks, [r["main_eval"]["source"] for r in have])


def _correct(c) -> str:
    if not c or not c.get("n"):
        return "-"
    return f"{c['correct']}/{c['n']} ({pct(c['top1'], 0)})"


def _confused_pairs(runs: list, overview: dict) -> list:
    image_of = overview.get("image_of", {}) if measured(overview) else {}
    cache = {}

    def thumb(species):
        if species not in cache:
            path = image_of.get(species)
            cache[species] = plots.thumbnail(path) if path else None
        return cache[species]

    blocks = [p("Most-confused pairs (true -> predicted), with one image of each species from the data set"
                + ("" if image_of else " (not shown: the data set is not measured)") + ":")]
    for r in runs:
        pairs = (r["main_eval"].get("most_confused") or [])[:PAIRS_PER_RUN]
        if not pairs:
            blocks.append(p(f"{r['label']}: no confusion on {r['main_eval']['split']}."))
            continue
        items = []
        for pair in pairs:
            images = [{"data": t, "label": f"{pair[role]} ({role})"} for role, t in
                      (("true", thumb(pair["true"])), ("predicted", thumb(pair["predicted"]))) if t]
            items.append({"caption": f"{pair['true']} -> {pair['predicted']}: {pair['count']} image(s), "
                                     f"{pct(pair.get('fraction_of_true'), 0)} of its class", "images": images})
        blocks += [p(f"{r['label']} ({r['main_eval']['split']}):"), {"kind": "thumbs", "items": items}]
    return blocks


def calibration_section(runs: list) -> dict:
    have = [r for r in _with_eval(runs) if r["main_eval"].get("calibration")]
    blocks = _absent(runs)
    if not have:
        return section("calibration", "Calibration", blocks)
    curves = [(r["label"], r["main_eval"]["calibration"]) for r in have]
    rows = [(r["label"], r["main_eval"]["split"], cell(r["main_eval"]["calibration"]["ece"], "{:.3f}"),
             r["main_eval"]["calibration"].get("n_bins", "")) for r in have]
    blocks = [table(["run", "split", "expected calibration error", "bins"], rows),
              figure("reliability", plots.reliability(curves),
                     "Reliability diagram: accuracy against mean confidence per confidence bin (bins with images)."),
              ] + blocks
    return section("calibration", "Calibration", blocks, [r["main_eval"]["source"] for r in have])


def export_section(runs: list) -> dict:
    blocks, sources = [], []
    headers = ["file", "size MB", "x Keras size", "gate", "top-1 (Keras)", "drop pts (95% bound)", "lost / gained",
               "latency ms", "1 thread ms", "device"]
    for r in runs:
        e = r["export"]
        if not measured(e):
            blocks += [p(f"{r['label']}:"), not_measured(e["why"])]
            continue
        k = e.get("keras", {})
        rows = [["Keras model", cell(k.get("size_mb"), "{:.2f}"), "1.00", "-", "", "", "",
                 cell(k.get("latency_ms_b1_median"), "{:.1f}"), "", k.get("device", "")]]
        rows += [_export_row(f) for f in e["files"]]
        blocks += [p(f"{r['label']}: {len(e['files'])} file(s), gate on {e.get('validation_images', '?')} "
                     f"{(e.get('gate') or {}).get('split', 'valid')} images; export "
                     + ("passed" if e.get("passed") else "FAILED") + "."), table(headers, rows)]
        sources.append(e["source"])
    if sources:
        blocks.append(p("Gate: " + str((next(r["export"] for r in runs if measured(r["export"])).get("gate") or {})
                                       .get("quantised", "see export.json"))
                        + ". Latency: batch 1, median, all cores unless '1 thread'."))
    return section("export", "Export for phones", blocks, sources)


def _export_row(f: dict) -> list:
    g = f.get("gate") or {}
    verdict = "passed" if f.get("verified") else ("not verified" if f.get("verified") is None else "FAILED")
    return [f.get("file", ""), cell(f.get("size_mb"), "{:.2f}"), cell(f.get("size_vs_keras"), "{:.2f}"), verdict,
            f"{pct(g.get('top1'))} ({pct(g.get('keras_top1'))})" if g else "",
            f"{num(g.get('top1_drop_points'), '{:.1f}')} ({num(g.get('drop_bound_points'), '{:.1f}')})" if g else "",
            f"{g.get('lost', '')} / {g.get('gained', '')}" if g else "",
            cell(f.get("latency_ms_b1_median"), "{:.1f}"), cell(f.get("latency_ms_b1_1thread_median"), "{:.1f}"),
            f.get("device", "")]


def robustness_section(runs: list) -> dict:
    blocks, sources, rob_rows, open_rows = [], [], [], []
    for r in runs:
        for e in r["evals"]:
            rob = e.get("robustness")
            if rob:
                rob_rows.append((r["label"], e["model_file"], rob.get("split"), cell(rob.get("clean_top1"), "pct"),
                                 cell(rob.get("mean_corruption_top1"), "pct"), cell(rob.get("relative_drop"), "pct")))
                sources.append(rob["source"])
                if rob.get("heatmap"):
                    blocks.append(figure(f"corruptions_{len(rob_rows)}", plots.embed_png(rob["heatmap"], 640),
                                         f"{r['label']}, {e['model_file']} [{rob.get('split')}]: top-1 per corruption "
                                         f"and severity ({rob['heatmap']})."))
            for name, f in ((e.get("open_set") or {}).get("scores") or {}).items():
                open_rows.append((r["label"], e["model_file"], e["split"], name, cell(f.get("auroc"), "{:.3f}"),
                                  cell(f.get("known_accepted"), "pct"), cell(f.get("unknown_rejected"), "pct")))
                sources.append(e["source"])
        if r.get("unknown_rule"):
            u = r["unknown_rule"]
            blocks.append(p(f"{r['label']}: stored unknown rule {u.get('score')} >= {num(u.get('threshold'), '{:.4g}')} "
                            f"({u['source']})."))
            sources.append(u["source"])
    head = [table(["run", "model file", "split", "clean top-1", "mean corrupted top-1", "relative drop"], rob_rows)
            ] if rob_rows else [not_measured("no run has an `eval --corruptions` report (robustness.json)")]
    head += [table(["run", "model file", "split", "score", "AUROC", "known accepted", "unknown rejected"], open_rows)
             ] if open_rows else [not_measured("no run has an `eval --unknown DIR` report (open set)")]
    return section("robustness", "Robustness and unknown species", head + blocks, sources)
