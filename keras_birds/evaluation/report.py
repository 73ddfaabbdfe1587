"""report.json, report.md and PNG plots of one evaluation, and the short terminal table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_birds.evaluation.robustness import markdown_section as robustness_section
from keras_birds.openset.report import markdown_section as open_set_section
from keras_birds.openset.report import terminal_rows as open_set_rows
from keras_birds.run_dir import atomic_save, atomic_write_json, atomic_write_text

MATRIX_MAX_CLASSES = 100  # a confusion matrix beyond this is unreadable: a top-confusions chart instead


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x, fmt="{:,}"):
    return "n/a" if x is None else fmt.format(x)


def terminal_table(report: dict) -> str:
    r = report
    rows = [
        ("model", f"{r['model']} ({r['kind']})"),
        *([("training", r["unfinished"]["note"])] if r.get("unfinished") else []),
        ("data", f"{r['data']} [{r['split']}]"),
        ("images", f"{r['n_images']} of {r['classes_in_split']} species"
                   + (f", {r['n_skipped']} unreadable skipped" if r.get("n_skipped") else "")),
        ("top-1", _pct(r["top1"]) + (" (flip TTA: averaged with the mirror image)" if r.get("tta_flip") else "")),
        ("top-5", _pct(r["top5"])),
        ("macro top-1", _pct(r["macro_top1"])),
        ("ECE", _num(r["ece"], "{:.3f}")),
        ("params", _num(r["params"])),
        ("size", _num(r["size_mb"], "{:.2f} MB")),
        ("latency batch 1", "n/a" if r["latency_ms_b1_median"] is None else
         f"{r['latency_ms_b1_median']:.2f} ms median, {r['latency_ms_b1_p90']:.2f} ms p90 "
         f"({r['latency']['latency_ms_b1_runs']} runs)"),
        ("throughput", "n/a" if r["throughput_img_s"] is None else
         f"{r['throughput_img_s']:.1f} img/s (batch {r['latency']['throughput_batch_size']})"),
        ("device", r["device"] + (" (flip TTA: 2 passes per image)" if r.get("tta_flip") else "")),
    ]
    if r.get("robustness"):
        rob = r["robustness"]
        rows.insert(4 if r.get("unfinished") else 3, ("corrupted top-1", f"{_pct(rob['mean_corruption_top1'])} mean of {len(rob['corruptions'])} "
                                           f"corruptions x {len(rob['severities'])} severities, relative drop "
                                           f"{_pct(rob['relative_drop'])}"))
    if r.get("open_set"):
        rows += open_set_rows(r["open_set"])
    for c in r.get("called_out", []):
        rows.append((c["class"], f"{c['correct']}/{c['n']} correct; {c['note']}"))
    rows.append(("report", str(Path(r["report_dir"]) / "report.md")))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


# -- plots -------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: np.ndarray, class_names, path):
    plt = _plt()
    n = len(class_names)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    side = min(4 + 0.22 * n, 26)
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    font = max(3, min(9, 300 // max(n, 1)))
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=font)
    ax.set_yticks(range(n), class_names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (rows normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def plot_top_confusions(pairs: list, path, top: int = 25):
    plt = _plt()
    pairs = pairs[:top]
    fig, ax = plt.subplots(figsize=(9, 1 + 0.32 * max(len(pairs), 1)))
    labels = [f"{p['true']} -> {p['predicted']}" for p in pairs][::-1]
    ax.barh(range(len(pairs)), [p["count"] for p in pairs][::-1], color="tab:red")
    ax.set_yticks(range(len(pairs)), labels, fontsize=8)
    ax.set_xlabel("images")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Most confused species (true -> predicted)")
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def plot_reliability(cal: dict, path):
    plt = _plt()
    bins = cal["bins"]
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = bins[0]["upper"] - bins[0]["lower"]
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=[3, 1], sharex=True)
    full = [b for b in bins if b["count"]]
    ax.bar([(b["lower"] + b["upper"]) / 2 for b in full], [b["accuracy"] for b in full], width=width * 0.95,
           color="tab:blue", edgecolor="black", label="accuracy")
    ax.plot([b["confidence"] for b in full], [b["accuracy"] for b in full], "o", color="tab:orange",
            label="mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability diagram (ECE {cal['ece']:.3f})")
    ax.legend(loc="lower right")
    axc.bar(centers, [b["count"] for b in bins], width=width * 0.95, color="tab:grey")
    axc.set_xlabel("confidence (top-1 probability)")
    axc.set_ylabel("images")
    axc.set_xlim(0, 1)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


# -- markdown ----------------------------------------------------------------------------------
def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict, plots: dict) -> str:
    r = report
    out = [f"# Evaluation of `{r['model']}` ({r['kind']}) on {r['split']}", "",
           f"Data `{r['data']}`, split `{r['split']}`: {r['n_images']} images of {r['classes_in_split']} "
           f"species (model: {r['n_classes']} classes, labels from {r['labels_from'] or 'the data (unverified)'}).", ""]
    if r.get("unfinished"):
        out += [f"**Training {r['unfinished']['note']}** (no model.keras): the figures of its best epoch so far.", ""]
    out += [_md_table(["metric", "value"], [
        ("top-1", _pct(r["top1"])), ("top-5", _pct(r["top5"])), ("macro top-1 (classes in split)", _pct(r["macro_top1"])),
        ("expected calibration error", _num(r["ece"], "{:.4f}")), ("parameters", _num(r["params"])),
        ("size on disk", _num(r["size_mb"], "{:.2f} MB")),
        ("latency, batch 1, median", _num(r["latency_ms_b1_median"], "{:.2f} ms")),
        ("latency, batch 1, p90", _num(r["latency_ms_b1_p90"], "{:.2f} ms")),
        ("throughput", _num(r["throughput_img_s"], "{:.1f} img/s")
         + (f" (batch {r['latency']['throughput_batch_size']})" if r["throughput_img_s"] else "")),
        ("device", r["device"]), ("input size", f"{r['image_size']}px"),
        ("flip test-time augmentation", "yes: each image averaged with its mirror (latency: both passes)"
         if r.get("tta_flip") else "no"),
    ]), ""]
    if r.get("robustness"):
        out += robustness_section(r["robustness"])
    if r.get("open_set"):
        out += open_set_section(r["open_set"])
    if r.get("called_out"):
        out += ["## Species with images of another size", "",
                _md_table(["species", "images", "correct", "top-1", "note"],
                          [(c["class"], c["n"], c["correct"], _pct(c["top1"]), c["note"]) for c in r["called_out"]]), ""]
    out += ["## Plots", ""] + [f"![{name}]({Path(p).name})" for name, p in plots.items()] + [""]
    if r["most_confused"]:
        out += ["## Most confused species", "",
                _md_table(["true", "predicted as", "images", "share of true class"],
                          [(p["true"], p["predicted"], p["count"], _pct(p["fraction_of_true"])) for p in r["most_confused"][:15]]), ""]
    cal = r["calibration"]
    out += ["## Calibration", "", f"ECE {cal['ece']:.4f} over {cal['n_bins']} equal-width bins.", "",
            _md_table(["confidence", "images", "accuracy", "mean confidence"],
                      [(f"{b['lower']:.2f}-{b['upper']:.2f}", b["count"], _num(b["accuracy"], "{:.3f}"),
                        _num(b["confidence"], "{:.3f}")) for b in cal["bins"] if b["count"]]), ""]
    rows = sorted(r["per_class"], key=lambda c: (c["top1"] is None, c["top1"] if c["top1"] is not None else 0, c["class"]))
    out += ["## Per class (worst first)", "",
            _md_table(["species", "images", "top-1", "top-5", "mean confidence", "most confused with"],
                      [(c["class"], c["n"], _pct(c["top1"]), _pct(c.get("top5")), _num(c["mean_confidence"], "{:.3f}"),
                        f"{c['most_confused_with']} ({c['most_confused_count']})" if c["most_confused_with"] else "")
                       for c in rows]), ""]
    if r.get("skipped_files"):
        out += ["## Unreadable files (skipped)", ""] + [f"- `{s['path']}`: {s['reason']}" for s in r["skipped_files"]] + [""]
    return "\n".join(out)


def write_report(report: dict, out_dir) -> dict:
    """Write report.json, report.md and the plots into out_dir; returns {name: path} of the files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [c["class"] for c in report["per_class"]]
    plots = {}
    cm = np.asarray(report["confusion_matrix"])
    if len(names) <= MATRIX_MAX_CLASSES:
        plots["confusion matrix"] = out_dir / "confusion_matrix.png"
        plot_confusion_matrix(cm, names, plots["confusion matrix"])
    else:
        plots["top confusions"] = out_dir / "top_confusions.png"
        plot_top_confusions(report["most_confused"], plots["top confusions"])
    plots["reliability diagram"] = out_dir / "reliability.png"
    plot_reliability(report["calibration"], plots["reliability diagram"])
    files = {"report_json": str(out_dir / "report.json"), "report_md": str(out_dir / "report.md"),
             "plots": [str(p) for p in plots.values()] + list(report.get("robustness", {}).get("plots", {}).values())}
    report["files"] = files
    atomic_write_json(out_dir / "report.json", report_json(report))
    atomic_write_text(out_dir / "report.md", markdown(report, plots))
    return files


def report_json(report: dict) -> dict:
    """What report.json holds, and `eval --json` prints: every figure of the evaluation."""
    data = dict(report)
    if len(report["per_class"]) > MATRIX_MAX_CLASSES:
        data.pop("confusion_matrix", None)  # 525 x 525 counts: too big for a report; the pairs are listed
    else:
        data["confusion_matrix"] = np.asarray(report["confusion_matrix"]).tolist()
    return data
