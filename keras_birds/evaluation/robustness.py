"""`eval --corruptions`: top-1 on deterministic corrupted copies of a split, in the ImageNet-C manner.

The split is decoded once; each corruption x severity corrupts it on the fly in fixed chunks of
CHUNK images, each chunk with its own seeded stream (the same at every severity, so severities differ
in strength only, and the copies do not depend on --batch-size or the model). Any model eval opens
(run dir, .keras, .tflite, .onnx) sees the same corrupted pixels, as uint8 like a photo file.

Figures: top-1 per corruption and severity, the mean corruption top-1 (over all of them), and the
relative drop against clean, (clean - mean) / clean. Written into the eval report and robustness.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from keras_birds.data import corruptions as C
from keras_birds.data.loader import BatchLoader
from keras_birds.run_dir import atomic_save, atomic_write_json

CHUNK = 32  # images corrupted together: part of what makes a copy, so fixed
SEED = 0  # the corrupted copies are fixed, as ImageNet-C's files are
SAMPLE_SEVERITIES = (1, 3, 5)  # columns of the sample strip


def decode_split(index, image_size: int, batch_size: int = 64):
    """(uint8 images (N, S, S, 3), data labels) of a split, decoded once; unreadable files left out."""
    loader = BatchLoader(index, image_size, batch_size, workers=1)
    images, labels = [], []
    for i in range(len(loader)):
        positions = loader.order[i * batch_size:(i + 1) * batch_size]
        if all(index.paths[j] in loader.skipped.files for j in positions):
            continue  # a wholly unreadable batch borrows a later image: not twice (as predict_split)
        x, y = loader.load_batch(i)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def corruption_top1(predict, images, labels, names, severities, seed: int = SEED, progress=True) -> dict:
    """{name: {severity: top-1}} of predict(uint8 batch) -> probs on each corrupted copy of images."""
    from tqdm.auto import tqdm

    table = {}
    bar = tqdm(total=len(names) * len(severities) * len(images), desc="corruptions", unit="img",
               file=sys.stderr, disable=not progress)
    for name in names:
        table[name] = {}
        for severity in severities:
            correct = 0
            for k, start in enumerate(range(0, len(images), CHUNK)):
                chunk = C.corrupt(images[start:start + CHUNK], name, severity, seed, key=(k,))
                correct += int((predict(chunk).argmax(1) == labels[start:start + CHUNK]).sum())
                bar.update(len(chunk))
            table[name][severity] = correct / len(images)
    bar.close()
    return table


def summarize(clean_top1: float, table: dict, seed: int = SEED) -> dict:
    """The robustness figures of a {name: {severity: top-1}} table against clean top-1."""
    names = list(table)
    severities = sorted({s for row in table.values() for s in row})
    values = np.array([[table[n][s] for s in severities] for n in names])
    mean = float(values.mean())
    return {
        "clean_top1": clean_top1, "mean_corruption_top1": mean,
        "relative_drop": (clean_top1 - mean) / clean_top1 if clean_top1 else None,
        "corruptions": names, "severities": severities, "seed": seed,
        "top1": {n: {str(s): table[n][s] for s in severities} for n in names},
        "by_corruption": {n: float(v) for n, v in zip(names, values.mean(1))},
        "by_severity": {str(s): float(v) for s, v in zip(severities, values.mean(0))},
    }


def evaluate_corruptions(predict, index, image_size: int, data_to_model, clean_top1: float, names, severities,
                         out_dir, model_file, data: str, progress=True) -> dict:
    """Decode the split once, score every corrupted copy and write the PNGs and robustness.json."""
    images, data_labels = decode_split(index, image_size)
    table = corruption_top1(predict, images, data_to_model[data_labels], names, severities, progress=progress)
    result = summarize(clean_top1, table)
    out_dir = Path(out_dir)
    plots = {"corruption heat map": out_dir / "corruptions.png", "corruption samples": out_dir / "corruption_samples.png"}
    plot_heatmap(result, plots["corruption heat map"])
    plot_samples(images[0], names, plots["corruption samples"])
    result["plots"] = {k: str(v) for k, v in plots.items()}
    result.update(model_file=str(Path(model_file).resolve()), model_stamp=_stamp(model_file), data=data_location(data),
                  split=index.split, n_images=int(len(images)))
    atomic_write_json(out_dir / "robustness.json", result)
    return result


def data_location(data: str) -> str:
    from keras_birds.data.sources import named_source

    return data if named_source(data) else str(Path(data).resolve())


def _stamp(path) -> list:
    st = Path(path).stat()
    return [st.st_size, st.st_mtime_ns]


def stored(report: dict, folder=None) -> dict | None:
    """The robustness.json an earlier `eval --corruptions` left in `folder` (default: beside this eval report),
    if it is of this very model file (same path, size and modification time), split and data: compare's
    robustness column. A plain eval rewrites report.json but leaves robustness.json, so the figure outlives it."""
    try:
        result = json.loads((Path(folder or report["report_dir"]) / "robustness.json").read_text())
        stamp = _stamp(report["model_file"])
    except (OSError, ValueError):
        return None
    same = (result.get("model_file"), result.get("model_stamp"), result.get("split"), result.get("data")) == (
        str(Path(report["model_file"]).resolve()), stamp, report["split"], data_location(report["data"]))
    return result if same else None


# -- plots and Markdown ----------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heatmap(result: dict, path):
    plt = _plt()
    names, sevs = result["corruptions"], result["severities"]
    values = np.array([[result["top1"][n][str(s)] for s in sevs] for n in names]) * 100
    fig, ax = plt.subplots(figsize=(2.2 + 0.9 * len(sevs), 1.4 + 0.45 * len(names)))
    im = ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    for i in range(len(names)):
        for j in range(len(sevs)):
            ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(sevs)), [str(s) for s in sevs])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("severity")
    ax.set_title(f"top-1 % under corruption (clean {100 * result['clean_top1']:.1f}%, "
                 f"mean {100 * result['mean_corruption_top1']:.1f}%)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def plot_samples(image, names, path, severities=SAMPLE_SEVERITIES):
    """One image under each corruption: a row per corruption, clean then the given severities."""
    plt = _plt()
    side = image.shape[0]
    rows = [np.concatenate([image] + [C.corrupt(image[None], n, s, SEED, key=(0,))[0] for s in severities], 1)
            for n in names]
    fig, ax = plt.subplots(figsize=(1.6 * (1 + len(severities)) + 1.4, 1.6 * len(names)))
    ax.imshow(np.concatenate(rows, 0))
    ax.set_xticks([side * (k + 0.5) for k in range(1 + len(severities))],
                  ["clean"] + [f"severity {s}" for s in severities])
    ax.set_yticks([side * (k + 0.5) for k in range(len(names))], names)
    ax.tick_params(length=0)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def markdown_section(result: dict) -> list:
    """Lines of report.md's robustness section."""
    sevs = result["severities"]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    head = "| corruption | " + " | ".join(f"severity {s}" for s in sevs) + " | mean |"
    lines = ["## Robustness to corrupted photos", "",
             f"Top-1 on deterministic corrupted copies of the split (seed {result['seed']}): clean "
             f"{pct(result['clean_top1'])}, mean over {len(result['corruptions'])} corruptions x {len(sevs)} "
             f"severities {pct(result['mean_corruption_top1'])}, relative drop "
             f"{'n/a' if result['relative_drop'] is None else pct(result['relative_drop'])}.", "",
             head, "|" + "---|" * (len(sevs) + 2)]
    for n in result["corruptions"]:
        lines.append(f"| {n} | " + " | ".join(pct(result["top1"][n][str(s)]) for s in sevs)
                     + f" | {pct(result['by_corruption'][n])} |")
    lines.append("| mean | " + " | ".join(pct(result["by_severity"][str(s)]) for s in sevs)
                 + f" | {pct(result['mean_corruption_top1'])} |")
    lines += [""] + [f"![{k}]({Path(p).name})" for k, p in result.get("plots", {}).items()]
    lines += ["", "Corruptions: " + "; ".join(C.CORRUPTIONS[n].doc.rstrip(".") for n in result["corruptions"]) + ".", ""]
    return lines
