"""The report's figures as image bytes: matplotlib plots (PNG) and downscaled photos (JPEG).

Everything is returned as bytes, not written: the HTML inlines them, the Markdown writer saves them.
Plots are palette PNGs (256 colours: a third of the bytes, no visible loss on line art) and photos
small JPEGs, which keeps the page of 5 runs of 525 species within a few MB.
"""
from __future__ import annotations

import io

THUMB_PX = 112  # side of a confused-pair / sample thumbnail
EMBED_MAX_PX = 900  # a toolkit PNG wider than this is downscaled before it is inlined


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _palette_png(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").quantize(256).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _figure_png(fig, tight: bool = False) -> bytes:
    from PIL import Image

    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, facecolor="white", bbox_inches="tight" if tight else None)
    plt.close(fig)
    buf.seek(0)
    return _palette_png(Image.open(buf))


def training_curves(runs: list) -> bytes:
    """Loss, top-1 and LR per epoch of every run, one colour each: validation solid, train dashed, the
    epoch each run keeps starred. `runs`: (label, metrics rows, best epoch). One figure for all runs:
    the recipes side by side, and one matplotlib layout instead of one per run (seconds each on 2 cores)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.26, top=0.9, wspace=0.22)  # tight_layout costs seconds
    panels = (("loss", "val_loss", "loss", 1), ("top1", "val_top1", "top-1 (%)", 100), ("lr", None, "learning rate", 1))
    for k, (label, rows, best) in enumerate(runs):
        colour = f"C{k % 10}"
        epochs = [r["epoch"] for r in rows]
        for ax, (train_key, valid_key, _, scale) in zip(axes, panels):
            for key, style in ((train_key, "--"), (valid_key, "-")):
                values = [r.get(key) for r in rows] if key else []
                if values and all(isinstance(v, (int, float)) for v in values):
                    ax.plot(epochs, [scale * v for v in values], style, marker="o", ms=3, lw=1.2, color=colour,
                            label=label if (key == valid_key or valid_key is None) and ax is axes[0] else None)
                    if best in epochs and (key == valid_key or valid_key is None):
                        ax.plot([best], [scale * values[epochs.index(best)]], "*", ms=13, color=colour, mec="black")
    for ax, (_, _, name, _) in zip(axes, panels):
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[2].set_yscale("log")
    fig.legend(loc="lower center", ncol=min(len(runs), 5), fontsize=8, frameon=False,
               title="solid: validation, dashed: train, star: the epoch the run keeps", title_fontsize=8)
    return _figure_png(fig)


def image_sizes(sizes: list) -> bytes:
    """Histograms of sqrt(width x height) and of the aspect ratio width / height."""
    import numpy as np

    plt = _plt()
    wh = np.asarray(sizes, float).reshape(-1, 2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 2.6))
    a.hist(np.sqrt(wh[:, 0] * wh[:, 1]), bins=30, color="tab:blue")
    a.set_xlabel("image size: sqrt(width x height), px")
    b.hist(wh[:, 0] / wh[:, 1], bins=30, color="tab:green")
    b.set_xlabel("aspect ratio width / height")
    for ax in (a, b):
        ax.set_ylabel("images")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _figure_png(fig)


def reliability(curves: list) -> bytes:
    """One line per (label, calibration of report.json): accuracy against mean confidence per bin."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    for label, cal in curves:
        full = [b for b in cal["bins"] if b.get("count")]
        ax.plot([b["confidence"] for b in full], [b["accuracy"] for b in full], "o-", ms=3, lw=1.2,
                label=f"{label} (ECE {cal['ece']:.3f})")
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    # Below the axes: curves can run anywhere in them (under-confident above the diagonal, over- below).
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    return _figure_png(fig, tight=True)


def embed_png(path, max_px: int = EMBED_MAX_PX) -> bytes:
    """A toolkit-written PNG (Pareto plot, heat map, audit sheet), downscaled to max_px wide, palette PNG."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.width > max_px:
            img = img.resize((max_px, max(1, round(img.height * max_px / img.width))), Image.LANCZOS)
        return _palette_png(img)


def thumbnail(path, side: int = THUMB_PX) -> bytes | None:
    """A photo as a JPEG at most side x side, or None when it cannot be read (the page then says so)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, much faster
            img = img.convert("RGB")
            img.thumbnail((side, side), Image.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=80, optimize=True)
            return buf.getvalue()
    except (OSError, UnidentifiedImageError, ValueError):
        return None
