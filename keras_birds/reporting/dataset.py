"""The data set's overview (species, images per split, image sizes, samples) and the `clean` audit, as plain data.

The overview reads the data folder the runs name in recipe.json: file lists and image headers only (PIL
reads a header without decoding the pixels), over at most MAX_SIZED images, evenly spaced, so a
BIRDS-525-sized folder takes seconds. A Hub data set or a folder that has moved is "not measured".
"""
from __future__ import annotations

from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.reporting.collect import load_json, missing

MAX_SIZED = 2000  # image headers read for the size and aspect histograms
SAMPLE_SPECIES = 16  # sample images on the page, one per species, evenly spaced over the species


def data_overview(data) -> dict:
    from keras_birds.data.sources import SPLITS, folder_source, named_source

    if not data:
        return missing("the runs' recipe.json names no data")
    if named_source(data):
        return missing(f"{data} is a Hub or TFDS data set: pass its local folder copy to train to see it here")
    try:
        index = folder_source(data, strict=False)  # clean's view: species missing from a split are shown, not fatal
    except UserError as e:
        return missing(str(e))
    species = index[SPLITS[0]].class_names
    per_split = {s: len(index[s]) for s in SPLITS}
    per_species = {s: _per_species(index[s]) for s in SPLITS}
    paths = [p for s in SPLITS for p in index[s].paths]
    step = max(1, len(paths) // MAX_SIZED)
    sizes, unreadable = _image_sizes(paths[::step][:MAX_SIZED])
    first = {}  # species -> one image: a sample, and the thumbnail of that species in a confused pair
    for s in SPLITS:
        for path, label in zip(index[s].paths, index[s].labels):
            first.setdefault(species[int(label)], path)
    samples = [(species[i], first[species[i]]) for i in spread(len(species), SAMPLE_SPECIES) if species[i] in first]
    return {"root": str(Path(data).resolve()), "species": species, "per_split": per_split,
            "per_species": per_species, "sizes": sizes, "sized_of": len(paths), "unreadable_headers": unreadable,
            "samples": samples, "image_of": first}


def spread(n: int, k: int) -> list:
    """k positions of 0..n-1 evenly spaced from the first to the last (all n when n <= k)."""
    if n <= k or k < 2:
        return list(range(min(n, k)))
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def _per_species(split_index) -> dict:
    counts = [0] * len(split_index.class_names)
    for label in split_index.labels:
        counts[int(label)] += 1
    present = sorted(c for c in counts if c) or [0]
    return {"min": present[0], "median": present[len(present) // 2], "max": present[-1],
            "species_without_images": sum(1 for c in counts if not c)}


def _image_sizes(paths) -> tuple:
    from PIL import Image, UnidentifiedImageError

    sizes, bad = [], 0
    for p in paths:
        try:
            with Image.open(p) as img:
                sizes.append(img.size)
        except (OSError, UnidentifiedImageError, ValueError):
            bad += 1
    return sizes, bad


def clean_audit(folder) -> dict:
    """What `keras-birds clean --out DIR` wrote: audit.json (+ report.md and the thumbnail sheets).
    Asked for by name (--clean), so a folder without an audit is the user's error, not "not measured"."""
    folder = Path(folder)
    audit, why = load_json(folder / "audit.json")
    if not isinstance(audit, dict) or "issues" not in audit:
        raise UserError(f"--clean {folder}: {why or 'audit.json is not a keras-birds audit'} "
                        f"(write one with `keras-birds clean --data ROOT --out {folder}`)")
    sheets = {issue: str(folder / rel) for issue, rel in (audit.get("sheets") or {}).items() if (folder / rel).is_file()}
    report_md = folder / "report.md"
    return dict(audit, sheets=sheets, source=str(folder / "audit.json"),
                report_md=str(report_md) if report_md.is_file() else None)
