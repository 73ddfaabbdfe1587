"""Plant the faults `keras-birds clean` must find into a Kaggle-layout set, in fixed proportions, and list them.

    .venv/bin/python tools/plant_faults.py ROOT            # (make_synthetic_birds.py --faults does this)

Per 1,000 images of the set (at least one of each kind at any size), written after the set's own files:
  exact_duplicates  3   a byte copy of a train image, same species and split
  near_duplicates   3   a train image re-encoded at JPEG quality 75, same species and split
  leakage           3   a valid or test image re-encoded into train of its species
  label_conflict    1   a byte copy of a train image under another species' train folder
  unreadable        2   half of a JPEG's bytes, or text with a .jpg name
Planted files are named planted-NNNN.jpg (clean reads pixels, not names). ROOT/planted.json lists each
one (kind, file, the original it copies) so a benchmark can score clean's recall; it sits beside the
splits, where no loader looks. Deterministic for a seed; planting twice plants nothing more.
"""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "valid", "test")
RATES = {"exact_duplicates": 3, "near_duplicates": 3, "leakage": 3, "label_conflict": 1, "unreadable": 2}
MANIFEST = "planted.json"


def _images(root: Path, split: str) -> list:
    return sorted(p for p in (root / split).glob("*/*.jpg") if not p.name.startswith("planted-"))


def _write(path: Path, data: bytes):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _reencoded(path: Path, quality: int) -> bytes:
    buf = io.BytesIO()
    with Image.open(path) as img:
        img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def counts(n_images: int) -> dict:
    return {kind: max(1, round(rate * n_images / 1000)) for kind, rate in RATES.items()}


def plant(root, seed: int = 0) -> list:
    """Plant the faults once (a second call returns the manifest as it is); returns the manifest rows."""
    root = Path(root)
    manifest = root / MANIFEST
    if manifest.is_file():
        return json.loads(manifest.read_text())
    train = _images(root, "train")
    held_out = _images(root, "valid") + _images(root, "test")
    need = counts(len(train) + len(held_out))
    rng = np.random.default_rng([seed, 525])
    # Distinct originals for every planted file, so no two faults share a picture.
    originals = iter(rng.permutation(len(train)).tolist())
    rows, k = [], 0

    def out_in(folder: Path) -> Path:
        nonlocal k
        k += 1
        return folder / f"planted-{k:04d}.jpg"

    for _ in range(need["exact_duplicates"]):
        src = train[next(originals)]
        rows.append({"kind": "exact_duplicates", "file": out_in(src.parent), "original": src, "data": src.read_bytes()})
    for _ in range(need["near_duplicates"]):
        src = train[next(originals)]
        rows.append({"kind": "near_duplicates", "file": out_in(src.parent), "original": src,
                     "data": _reencoded(src, 75)})
    for i in rng.permutation(len(held_out))[:need["leakage"]].tolist():
        src = held_out[i]
        rows.append({"kind": "leakage", "file": out_in(root / "train" / src.parent.name), "original": src,
                     "data": _reencoded(src, 75)})
    species = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    for _ in range(need["label_conflict"]):
        src = train[next(originals)]
        other = species[(species.index(src.parent.name) + 1 + int(rng.integers(len(species) - 1))) % len(species)]
        rows.append({"kind": "label_conflict", "file": out_in(root / "train" / other), "original": src,
                     "data": src.read_bytes()})
    for u in range(need["unreadable"]):
        src = train[next(originals)]
        data = src.read_bytes()[: src.stat().st_size // 2] if u % 2 == 0 else b"not an image\n"
        rows.append({"kind": "unreadable", "file": out_in(src.parent), "original": None, "data": data})
    for row in rows:
        _write(row["file"], row.pop("data"))
    listed = [{k: (os.path.relpath(v, root) if isinstance(v, Path) else v) for k, v in r.items()} for r in rows]
    _write(manifest, (json.dumps(listed, indent=1) + "\n").encode())  # last: its presence means "planted"
    return listed


def recall(root, issues_csv) -> dict:
    """{kind: [found, planted]}: how many planted files clean's issues.csv lists under their kind."""
    import csv

    root = Path(root)
    listed = set()
    with open(issues_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            listed.add((os.path.normpath(row["file"]), row["issue"]))
    out = {}
    for row in json.loads((root / MANIFEST).read_text()):
        hit = (os.path.normpath(row["file"]), row["kind"]) in listed
        found, total = out.get(row["kind"], [0, 0])
        out[row["kind"]] = [found + hit, total + 1]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="a Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/*.jpg")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rows = plant(a.root, a.seed)
    print(f"{a.root}: {len(rows)} planted files listed in {Path(a.root) / MANIFEST}")


if __name__ == "__main__":
    main()
