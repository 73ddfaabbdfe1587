"""The open-set figures as text: eval's report.md section and terminal rows, calibrate-unknown's table.

No model code here, so evaluation/report.py stays import-light.
"""
from __future__ import annotations


def format_figures(figures: dict) -> str:
    """One line per score: AUROC, threshold, known accepted and unknown rejected (what both commands print)."""
    lines = [f"{'score':22s} {'AUROC':>6s} {'threshold':>10s} {'known kept':>10s} {'unknown rejected':>16s}"]
    for name, f in figures.items():
        lines.append(f"{name + ('' if f['deployable'] else ' *'):22s} {f['auroc']:6.3f} {f['threshold']:10.4g} "
                     f"{100 * f['known_accepted']:9.1f}% {100 * f['unknown_rejected']:15.1f}%")
    lines.append("* needs the Keras model's logits or features: reported, not storable (an exported file gives "
                 "probabilities only)")
    return "\n".join(lines)


def markdown_section(open_set: dict) -> list:
    """report.md lines of eval --unknown."""
    o = open_set
    out = ["## Unknown species (open set)", "",
           f"{o['n_known']} images of the model's species against {o['n_unknown']} of other species "
           f"({o['unknown_images']}). Threshold: the one that accepts {100 * o['accept']:.0f}% of these known "
           f"images; unknown rejected = the share of other species' images below it.", "",
           "| score | AUROC | threshold | known accepted | unknown rejected |", "|---|---|---|---|---|"]
    out += [f"| {name}{'' if f['deployable'] else ' *'} | {f['auroc']:.3f} | {f['threshold']:.4g} | "
            f"{100 * f['known_accepted']:.1f}% | {100 * f['unknown_rejected']:.1f}% |" for name, f in o["scores"].items()]
    out += ["", "\\* from the Keras model's logits or features: not available to an app running an exported file.", ""]
    if o.get("stored_rule"):
        r = o["stored_rule"]
        out += [f"Stored rule ({r['from']}): {r['score']} >= {r['threshold']:.4g} accepts {100 * r['known_accepted']:.1f}% "
                f"of the known images and rejects {100 * r['unknown_rejected']:.1f}% of the unknown ones.", ""]
    return out


def terminal_rows(open_set: dict) -> list:
    """(label, value) rows of the terminal table: the best AUROC, max probability's, and the stored rule."""
    o, figures = open_set, open_set["scores"]
    best, msp = o["best_auroc"], figures.get("max_probability")
    rows = [("unknown AUROC", f"{figures[best]['auroc']:.3f} ({best}); max probability {msp['auroc']:.3f}, "
                              f"rejects {100 * msp['unknown_rejected']:.1f}% of {o['n_unknown']} unknown at "
                              f"{100 * o['accept']:.0f}% known kept")]
    if o.get("stored_rule"):
        r = o["stored_rule"]
        rows.append(("stored unknown rule", f"{r['score']} >= {r['threshold']:.4g}: {100 * r['known_accepted']:.1f}% "
                                            f"known kept, {100 * r['unknown_rejected']:.1f}% unknown rejected"))
    return rows
