"""`keras-birds clean`: audit every split of a data set before training; no data file is modified.

Per split, one decode pass of our own (the training loader's decoder) finds unreadable, truncated
and non-image files and hashes every image (pixel md5, dHash); then cleanvision's Imagelab runs
over the files that decode: exact and near duplicates, odd size, odd aspect ratio, blurry, dark,
light, low information, grayscale. Across splits, the hashes find what cleanvision cannot see from
inside one split: the same picture in two splits (leakage) or under two species (label conflict).

Each finished split is cached in OUT/.cache/<split>.json, keyed by its files' names, sizes and
modification times and the audit settings, so an interrupted audit run again redoes only the
splits it had not finished, and a second run over unchanged data only re-reads the caches.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keras_birds.cleaning import similar
from keras_birds.cleaning.issues import CLEANVISION_TYPES, ISSUE_TYPES, OPTIONAL_EXCLUDES, AuditResult, Finding
from keras_birds.cleaning.report import write_report
from keras_birds.cores import usable_cores
from keras_birds.data.images import BadImage, open_rgb
from keras_birds.data.sources import SPLITS, absolute_source, load_source, named_source
from keras_birds.errors import UserError
from keras_birds.run_dir import atomic_write_json

CACHE_VERSION = 1


def default_out_dir(data: str) -> Path:
    data = absolute_source(data)
    if named_source(data):  # hf:ID, tfds:NAME[:VERSION] or tfds:/absolute/folder
        where = data.split(":", 1)[1]
        name = Path(where).name if os.path.isabs(where) else where.replace("/", "__").replace(":", "@")
    else:
        name = Path(data).name
    return Path("clean") / name


def parse_exclude_also(value) -> tuple:
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    unknown = [n for n in names if n not in OPTIONAL_EXCLUDES]
    if unknown:
        raise UserError(f"--exclude-also: unknown issue type(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(OPTIONAL_EXCLUDES)} (unreadable files, leakage, label conflicts and "
                        f"exact duplicates are always excluded)")
    return tuple(dict.fromkeys(names))


# -- one split ------------------------------------------------------------------------------------
def scan_file(path: str) -> dict:
    """Decode one file as training would; hash what decodes."""
    try:
        rgb = open_rgb(path)
    except BadImage as e:
        return {"error": str(e)[:300]}
    pixels = np.asarray(rgb, dtype=np.uint8)
    md5 = hashlib.md5(f"{rgb.width}x{rgb.height}:".encode() + pixels.tobytes()).hexdigest()
    return {"width": rgb.width, "height": rgb.height, "md5": md5, **similar.hashes(rgb)}


def run_cleanvision(paths: list, jobs: int) -> dict:
    """cleanvision's default checks over `paths` (all decodable): flagged files and duplicate sets."""
    from cleanvision import Imagelab

    from keras_birds.cleaning.cv_dataset import CleanvisionFiles, from_key, to_key

    keys = [to_key(p) for p in paths]
    lab = Imagelab(filepaths=keys, verbose=False)
    # Imagelab takes no dataset object of its own making: swap in ours (cleanvision is pinned to 0.3.7).
    lab._dataset = CleanvisionFiles(filepaths=keys, verbose=False)
    lab.find_issues(n_jobs=jobs, verbose=False)
    flagged = []
    for issue in CLEANVISION_TYPES[2:]:
        column = f"is_{issue}_issue"
        if column in lab.issues:
            rows = lab.issues[lab.issues[column].astype(bool)]
            flagged += [[from_key(str(p)), issue, float(s)] for p, s in rows[f"{issue}_score"].items()]
    sets = {kind: [sorted(from_key(str(p)) for p in s) for s in lab.info.get(kind, {}).get("sets", [])]
            for kind in CLEANVISION_TYPES[:2]}
    return {"flagged": flagged, "sets": sets}


def _settings() -> dict:
    import cleanvision

    return {"version": CACHE_VERSION, "cleanvision": cleanvision.__version__,
            "near_bits": similar.NEAR_BITS, "prefilter_bits": similar.PREFILTER_BITS}


def _split_key(split: str, root: Path, paths: list) -> str:
    stats = []
    for p in paths:
        st = os.stat(p)
        stats.append([os.path.relpath(p, root), st.st_size, st.st_mtime_ns])
    blob = json.dumps([_settings(), split, stats], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def audit_split(split: str, paths: list, root: Path, cache_dir: Path, jobs: int, progress: bool, log) -> tuple:
    """(cache record, seconds spent, True if read from the cache) of one split."""
    cache_file = cache_dir / f"{split}.json"
    key = _split_key(split, root, paths)
    if cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text())
            if cached.get("key") == key:
                log(f"{split}: {len(paths)} files, unchanged since the last audit (cached in {cache_file})")
                return cached, 0.0, True
        except (OSError, ValueError):
            pass  # unreadable cache: audit again
    from tqdm.auto import tqdm

    started = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # Pillow decodes and resizes outside the GIL
        scans = list(tqdm(pool.map(scan_file, paths), total=len(paths), desc=f"audit {split}", unit="img",
                          file=sys.stderr, disable=not progress))
    records = {os.path.relpath(p, root): s for p, s in zip(paths, scans)}
    readable = [p for p, s in zip(paths, scans) if "error" not in s]
    if readable:
        import contextlib
        import io

        # cleanvision draws its own bars (hashes, scores); -q silences them too.
        with contextlib.redirect_stderr(io.StringIO()) if not progress else contextlib.nullcontext():
            # Worker processes cost more to start than a small split takes to check alone.
            cv = run_cleanvision(readable, jobs if len(readable) >= 200 else 1)
    else:
        cv = {"flagged": [], "sets": {k: [] for k in CLEANVISION_TYPES[:2]}}
    rel = lambda p: os.path.relpath(p, root)  # noqa: E731
    cv = {"flagged": [[rel(p), issue, s] for p, issue, s in cv["flagged"]],
          "sets": {k: [[rel(p) for p in s] for s in v] for k, v in cv["sets"].items()}}
    seconds = time.time() - started
    record = {"key": key, "split": split, "files": records, "cleanvision": cv, "seconds": round(seconds, 2)}
    atomic_write_json(cache_file, record)
    return record, seconds, False


# -- the whole data set ---------------------------------------------------------------------------
def _check_out(out: Path, root: Path):
    out_abs, root_abs = os.path.abspath(out), os.path.abspath(root)
    if out_abs == root_abs or out_abs.startswith(root_abs + os.sep):
        raise UserError(f"--out {out} is inside the data folder {root}: choose a folder outside it "
                        f"(clean never writes into the data set)")
    if out.is_dir() and any(out.iterdir()) and not ((out / ".cache").is_dir() or (out / "report.md").is_file()):
        raise UserError(f"--out {out} already holds files that are not a keras-birds clean report; choose another folder")


def audit(data: str, out=None, exclude_also=(), jobs=None, progress=True, log=print) -> AuditResult:
    """Audit all splits of `data` (a Kaggle-layout folder or hf:<id>) and write the report to `out`."""
    index = load_source(data, strict=False)  # species missing from a split: a finding here, refused by train
    data = absolute_source(data)  # reports name it from any directory
    root = Path(os.path.abspath(os.path.commonpath([os.path.abspath(index[s].paths[0]) for s in SPLITS])))
    out = Path(out) if out else default_out_dir(data)
    _check_out(out, root)
    jobs = max(1, int(jobs or usable_cores()))
    species_of, records, timing = {}, {}, {"audited_images": 0, "audit_seconds": 0.0, "cached_splits": []}
    for split in SPLITS:
        idx = index[split]
        paths = [os.path.abspath(p) for p in idx.paths]
        for p, label in zip(paths, idx.labels):
            species_of[p] = (split, idx.class_names[label])
        records[split], seconds, cached = audit_split(split, paths, root, out / ".cache", jobs, progress, log)
        if cached:
            timing["cached_splits"].append(split)
        else:
            timing["audited_images"] += len(paths)
            timing["audit_seconds"] += seconds
    started = time.time()
    findings = collect_findings(records, root, species_of)
    timing["cross_split_seconds"] = round(time.time() - started, 2)
    timing["audit_seconds"] = round(timing["audit_seconds"], 2)
    timing["jobs"] = jobs
    if timing["audited_images"]:
        timing["images_per_second"] = round(timing["audited_images"] / max(timing["audit_seconds"], 1e-9), 1)
    result = AuditResult(data=data, root=root, out=out, images={s: len(index[s]) for s in SPLITS},
                         findings=findings, excluded=decide_exclusions(findings, exclude_also, root),
                         exclude_also=tuple(exclude_also), timing=timing, species_of=species_of,
                         species_missing=missing_species(index))
    write_report(result)
    return result


def missing_species(index: dict) -> dict:
    """{species: [splits without any of its images]} for each species some split lacks."""
    names = index[SPLITS[0]].class_names  # the same list in every split (load_source strict=False)
    counts = {s: np.bincount(index[s].labels, minlength=len(names)) for s in SPLITS}
    gaps = {name: [s for s in SPLITS if counts[s][ci] == 0] for ci, name in enumerate(names)}
    return {name: splits for name, splits in gaps.items() if splits}


def collect_findings(records: dict, root: Path, species_of: dict) -> list:
    """Every issue of every file: cleanvision's per split, ours per file and across splits."""
    absolute = lambda rel: os.path.normpath(os.path.join(root, rel))  # noqa: E731
    found = {}  # (file, issue) -> Finding

    def add(path, issue, score, others=(), detail=""):
        split, species = species_of[path]
        f = found.setdefault((path, issue), Finding(path, split, species, issue, float(score)))
        f.score = min(f.score, float(score))
        f.others = sorted(set(f.others) | set(others))
        f.detail = f.detail or detail

    ok = []  # (path, scan) of decodable files, all splits
    for split, record in records.items():
        for rel, scan in record["files"].items():
            path = absolute(rel)
            if "error" in scan:
                add(path, "unreadable", 0.0, detail=scan["error"])
            else:
                ok.append((path, scan))
        for rel, issue, score in record["cleanvision"]["flagged"]:
            path = absolute(rel)
            scan = record["files"].get(rel, {})
            size = f"{scan.get('width')}x{scan.get('height')}" if "width" in scan else ""
            add(path, issue, score, detail=size if issue in ("odd_size", "odd_aspect_ratio") else "")
        for kind, sets in record["cleanvision"]["sets"].items():
            for s in sets:
                members = [absolute(r) for r in s]
                for p in members:
                    add(p, kind, 1.0 / len(members), [m for m in members if m != p])
                for a in members:  # one picture under two species inside a split
                    for b in members:
                        if a < b and species_of[a][1] != species_of[b][1]:
                            _pair(add, a, b, species_of, exact=kind == "exact_duplicates", bits=None)

    paths = [p for p, _ in ok]
    pairs = similar.near_pairs([s["dhash64"] for _, s in ok], [s["dhash256"] for _, s in ok])
    for i, j, bits in pairs:
        a, b = paths[i], paths[j]
        (sa, ka), (sb, kb) = species_of[a], species_of[b]
        exact = ok[i][1]["md5"] == ok[j][1]["md5"]
        if sa == sb and ka == kb:
            # Inside one split and species too: cleanvision's own near-duplicate check missed a JPEG
            # quality-75 copy 1 bit away (tools/plant_faults.py), so the dHash pairs count as well.
            kind = "exact_duplicates" if exact else "near_duplicates"
            add(a, kind, 0.5, [b], "" if exact else f"256-bit dHash {bits} bits apart")
            add(b, kind, 0.5, [a], "" if exact else f"256-bit dHash {bits} bits apart")
            continue
        _pair(add, a, b, species_of, exact=exact, bits=bits)
    order = {t: k for k, t in enumerate(ISSUE_TYPES)}
    return sorted(found.values(), key=lambda f: (order[f.issue], f.score, f.file))


def _pair(add, a, b, species_of, exact: bool, bits):
    """Record leakage and/or a label conflict between files a and b."""
    how = "exact copy" if exact else (f"near copy, 256-bit dHash {bits} bits apart" if bits is not None
                                      else "near copy (cleanvision)")
    score = 0.0 if exact else (bits / 256 if bits is not None else 1 / 256)
    (sa, ka), (sb, kb) = species_of[a], species_of[b]
    if sa != sb:
        add(a, "leakage", score, [b], how)
        add(b, "leakage", score, [a], how)
    if ka != kb:
        add(a, "label_conflict", score, [b], how)
        add(b, "label_conflict", score, [a], how)


def decide_exclusions(findings: list, exclude_also, root: Path) -> dict:
    """{absolute path: [reason, ...]}: what exclude.txt lists.

    Always: unreadable files; both sides of a label conflict (for review); the earlier-split side of
    leakage (train, or valid when the copy is in test), so valid and test stay as published; within a
    split, every copy of an exact duplicate set but the first. With --exclude-also: the named
    reported types (near_duplicates keep the first of each set, like exact ones).
    """
    rel = lambda p: os.path.relpath(p, root)  # noqa: E731
    out = {}

    def add(path, reason):
        out.setdefault(path, []).append(reason)

    rank = {s: k for k, s in enumerate(SPLITS)}
    for f in findings:
        if f.issue == "unreadable":
            add(f.file, f"unreadable: {f.detail}")
        elif f.issue == "label_conflict":
            add(f.file, f"label_conflict (review): {f.detail} under {_species(f.others, rel)}")
        elif f.issue == "leakage":
            later = [o for o in f.others if rank[_split_of(o, root)] > rank[f.split]]
            if later:
                add(f.file, f"leakage: {f.detail} in {', '.join(rel(o) for o in later)}")
        elif f.issue in ("exact_duplicates", "near_duplicates"):
            if f.issue == "exact_duplicates" or f.issue in exclude_also:
                first = min([f.file] + f.others)
                if f.file != first:
                    add(f.file, f"{f.issue}: copy of {rel(first)}")
        elif f.issue in exclude_also:
            add(f.file, f"{f.issue}: score {f.score:.3f}" + (f" ({f.detail})" if f.detail else ""))
    return dict(sorted(out.items()))


def _split_of(path: str, root: Path) -> str:
    return Path(os.path.relpath(path, root)).parts[0]


def _species(paths, rel) -> str:
    return ", ".join(f"{Path(p).parent.name} ({rel(p)})" for p in paths)
