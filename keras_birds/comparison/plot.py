"""The Pareto plot of a comparison: accuracy against batch-1 latency, marker area ~ size in MB."""
from __future__ import annotations

from keras_birds.comparison.table import pick, row_label
from keras_birds.run_dir import atomic_save


def _pareto_front(rows: list) -> list:
    """Rows no other row beats on both accuracy (higher) and latency (lower), by latency."""
    front = [r for r in rows if not any(o["top1"] >= r["top1"] and o["latency_ms"] <= r["latency_ms"]
                                        and (o["top1"] > r["top1"] or o["latency_ms"] < r["latency_ms"])
                                        for o in rows)]
    return sorted(front, key=lambda r: r["latency_ms"])


def plot_pareto(rows: list, path, split: str = "test", include_unfinished: bool = False) -> bool:
    """Write the plot to `path` (PNG), the recommended row circled (table.pick). Without accuracy figures
    (build-only rows) it plots size against latency instead. Returns False when no row has a latency to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in rows if r.get("latency_ms") is not None and r.get("size_mb") is not None]
    if not timed:
        return False
    with_acc = [r for r in timed if r.get("top1") is not None]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    biggest = max(r["size_mb"] for r in timed) or 1.0
    area = lambda r: 40 + 900 * r["size_mb"] / biggest  # noqa: E731
    if with_acc:
        for i, r in enumerate(sorted(with_acc, key=lambda r: r["latency_ms"])):
            ax.scatter(r["latency_ms"], 100 * r["top1"], s=area(r), alpha=0.55, edgecolors="black")
            # Alternate above/below so neighbours at one accuracy do not print over each other.
            ax.annotate(f"{row_label(r)}\n{r['size_mb']:.1f} MB", (r["latency_ms"], 100 * r["top1"]),
                        textcoords="offset points", xytext=(8, 8 if i % 2 == 0 else -22), fontsize=7)
        front = _pareto_front(with_acc)
        ax.plot([r["latency_ms"] for r in front], [100 * r["top1"] for r in front], "k--", lw=1,
                label="Pareto front")
        rec = pick(with_acc, include_unfinished)["recommended"]
        if rec:
            r = rec["row"]
            ax.scatter(r["latency_ms"], 100 * r["top1"], s=area(r) * 1.6, facecolors="none", edgecolors="red",
                       linewidths=2, label=f"recommended: {row_label(r)}")
        ax.set_ylabel(f"{split} top-1 (%)")
        ax.set_title("Accuracy vs batch-1 latency (marker area ~ size in MB)")
        ax.margins(x=0.15, y=0.2)
        ax.legend(loc="best", fontsize=8)
    else:
        for r in timed:
            ax.scatter(r["latency_ms"], r["size_mb"], s=area(r), alpha=0.55, edgecolors="black")
            ax.annotate(row_label(r), (r["latency_ms"], r["size_mb"]), textcoords="offset points", xytext=(8, 4),
                        fontsize=8)
        ax.set_ylabel("size (MB)")
        ax.set_title("Size vs batch-1 latency (no accuracy: random-init builds)")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, median (ms, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return True
