"""Write a BIRDS-525-shaped data set of real JPEGs for benchmarks: augmented copies of the bird photos in
../shared/data, in Kaggle's layout ROOT/{train,valid,test}/<SPECIES>/*.jpg.

    .venv/bin/python tools/make_synthetic_birds.py /tmp/birds-synth --species 525 --per-species 160

Each file is a random crop (60-100% of the area, aspect 3:4-4:3), maybe mirrored, with +-10% brightness,
contrast and saturation, resized to --size, blended with a crop of another random source photo (--mix,
default 35% of it) and JPEG-encoded (quality 90): decoding costs what a Kaggle image costs, and no file is
a byte copy of a source. The blend keeps copies of one source apart: without it ~1 pair in 130 of the same
source's crops is within clean's near-duplicate distance (256-bit dHash, 32 bits), so a 90k set, with
~140 crops per source, would hold ~50,000 accidental near copies; with it ~1 in 5,000.
--faults then plants duplicates, near duplicates, leaks, label conflicts and unreadable files in fixed
proportions and lists them in ROOT/planted.json (tools/plant_faults.py), for clean's recall.
The species of the source folders keep their names;
species beyond them are "SYNTH <n>" (n from 1 up, the species' rank) made from the source species
cycled. train gets --per-species images a species, valid and test --eval-per-species each
(default min(5, N): BIRDS-525 has 5). Deterministic for a --seed; files that exist are kept, so a
killed run resumes (each file is written under a temporary name, then renamed).
Needs only numpy, Pillow and tqdm (no Keras), so it runs on a machine without the package.
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

SPLITS = ("train", "valid", "test")
SUFFIXES = {".jpg", ".jpeg", ".png"}
DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def source_species(source: Path) -> dict:
    """{species name: [image paths]} over every Kaggle-layout data set under source (any depth)."""
    found = {}
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in SUFFIXES and path.parent.parent.name in SPLITS and path.is_file():
            found.setdefault(path.parent.name, []).append(path)
    if not found:
        raise SystemExit(f"no images in {source} (expected <data set>/{{train,valid,test}}/<SPECIES>/*.jpg)")
    return found


def species_plan(found: dict, n_species: int) -> list:
    """[(output species name, its source image paths)]: the real names first, then SYNTH n."""
    names = sorted(found)
    return [(names[k] if k < len(names) else f"SYNTH {k + 1}", found[names[k % len(names)]])
            for k in range(n_species)]


@lru_cache(maxsize=4096)
def _decoded(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")  # a decoded copy; threads only read it (crop makes new images)


def augmented_copy(src: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    w, h = src.size
    area = w * h * rng.uniform(0.6, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, round(np.sqrt(area * aspect))), min(h, round(np.sqrt(area / aspect)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = src.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhance(img).enhance(rng.uniform(0.9, 1.1))
    return img


def _write_one(job):
    out, src, seed, size, pool, mix = job
    if out.exists():
        return False
    rng = np.random.default_rng(seed)
    img = augmented_copy(_decoded(src), rng, size)
    if mix > 0:
        other = augmented_copy(_decoded(pool[int(rng.integers(len(pool)))]), rng, size)
        img = Image.blend(img, other, mix)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    img.save(tmp, format="JPEG", quality=90)
    os.replace(tmp, out)  # never a half-written JPEG under the final name
    return True


def jobs(root: Path, plan: list, per_split: dict, seed: int, size: int, mix: float = 0.0) -> list:
    out = []
    pool = sorted({p for _, sources in plan for p in sources})
    for k, (name, sources) in enumerate(plan):
        for s, split in enumerate(SPLITS):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_split[split]):
                # Spread a species' splits over its sources; each file has its own seed.
                src = sources[(i + s * per_split["train"]) % len(sources)]
                out.append((folder / f"{i:04d}.jpg", src, [seed, k, s, i], size, pool, mix))
    return out


def make(root, species=525, per_species=160, eval_per_species=None, size=224, seed=0, source=DEFAULT_SOURCE,
         threads=None, progress=True, mix=0.35, faults=False) -> dict:
    """Write the set (existing files kept), then plant faults if asked; returns {"written": n, "kept": n,
    "root": str, "planted": n}."""
    from tqdm import tqdm

    root = Path(root)
    n_eval = min(5, per_species) if eval_per_species is None else eval_per_species
    plan = species_plan(source_species(Path(source)), species)
    todo = jobs(root, plan, {"train": per_species, "valid": n_eval, "test": n_eval}, seed, size, mix)
    threads = threads or len(os.sched_getaffinity(0))
    written = 0
    with ThreadPoolExecutor(threads) as pool, tqdm(total=len(todo), unit="img", desc=f"writing {root}",
                                                    file=sys.stderr, disable=not progress, mininterval=1.0) as bar:
        for done in pool.map(_write_one, todo, chunksize=16):  # Pillow decodes/encodes outside the GIL
            written += done
            bar.update()
    planted = 0
    if faults:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import plant_faults

        planted = len(plant_faults.plant(root, seed))
    return {"root": str(root), "written": written, "kept": len(todo) - written, "planted": planted}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="output folder (Kaggle layout)")
    p.add_argument("--species", type=int, default=525)
    p.add_argument("--per-species", type=int, default=160, help="train images a species (BIRDS-525: ~161)")
    p.add_argument("--eval-per-species", type=int, help="valid and test images a species [default: min(5, N)]")
    p.add_argument("--size", type=int, default=224, help="side of the square JPEGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="folder of Kaggle-layout data sets to copy from")
    p.add_argument("--threads", type=int, help="[default: the usable cores]")
    p.add_argument("--mix", type=float, default=0.35, help="share of a second random photo blended in (0-0.5)")
    p.add_argument("--faults", action="store_true", help="plant faults for clean and list them in ROOT/planted.json")
    a = p.parse_args(argv)
    if a.species < 1 or a.per_species < 1 or a.size < 8 or not 0 <= a.mix <= 0.5:
        p.error("--species and --per-species must be >= 1, --size >= 8, --mix 0-0.5")
    r = make(a.root, a.species, a.per_species, a.eval_per_species, a.size, a.seed, a.source, a.threads,
             mix=a.mix, faults=a.faults)
    print(f"{r['root']}: {r['written']} JPEGs written, {r['kept']} already there"
          + (f", {r['planted']} planted faults" if a.faults else ""))


if __name__ == "__main__":
    main()
