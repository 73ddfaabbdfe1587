"""Where images come from: a Kaggle-layout folder, a Hugging Face Hub data set (hf:) or a TensorFlow
Datasets data set (tfds:, see tfds_source.py) -> one SplitIndex each.

A Hub or TFDS data set is materialised once into the Kaggle folder layout in a cache directory, so
every later stage (loader, clean, eval) reads one kind of source.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_birds.data.layout import SPLIT_ALIASES as HUB_SPLITS  # Hub split names -> ours
from keras_birds.data.layout import class_folder_names
from keras_birds.data.layout import unsafe_char as _unsafe
from keras_birds.data.tfds_source import TFDS_PREFIX, is_local, materialize_tfds
from keras_birds.errors import UserError, brief

SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
NAMED_PREFIXES = ("hf:", TFDS_PREFIX)  # --data values that name a data set rather than a folder


@dataclass
class SplitIndex:
    """The files of one split: paths[i] shows class labels[i] of class_names."""

    split: str
    class_names: list
    paths: list
    labels: np.ndarray

    def __len__(self):
        return len(self.paths)

    def without(self, excluded: set) -> "SplitIndex":
        keep = [i for i, p in enumerate(self.paths) if os.path.abspath(p) not in excluded]
        return SplitIndex(self.split, self.class_names, [self.paths[i] for i in keep], self.labels[keep])

    def at_most_per_class(self, k: int, seed: int = 0) -> "SplitIndex":
        """Up to k images of each class (a seeded random choice, kept in file order); k <= 0: all of them."""
        if k <= 0:
            return self
        rng = np.random.default_rng(seed)
        chosen = [rng.permutation(np.flatnonzero(self.labels == c))[:k] for c in range(len(self.class_names))]
        keep = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, int)
        return SplitIndex(self.split, self.class_names, [self.paths[i] for i in keep], self.labels[keep])


def _list_split(split_dir: Path) -> dict:
    return {
        d.name: sorted(str(f) for f in d.iterdir()
                       if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(split_dir.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }


def image_files_under(root) -> list:
    """Image files under root, sorted, hidden ones skipped, following links to folders (e.g. add-species'
    linked data tree; Path.rglob does not before Python 3.13), each real folder once so a link loop ends."""
    found, seen = [], set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / n for n in names
                  if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES and (Path(folder) / n).is_file()]
    return sorted(found)


def folder_source(root, splits=SPLITS, strict=True) -> dict:
    """Index ROOT/{train,valid,test}/<SPECIES>/* ; every split must have the same class list.

    strict=False (for `clean`, which reports the difference instead): every split is indexed with
    the sorted union of the splits' species, so a label means the same species in every split.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data folder {root} does not exist (expected ROOT/train|valid|test/<SPECIES>/*.jpg)")
    listed = {}
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise UserError(
                f"data folder {root} has no '{split}' split (found: {', '.join(found) or 'nothing'}); "
                f"expected ROOT/{split}/<SPECIES>/*.jpg"
            )
        listed[split] = _list_split(split_dir)
        if not listed[split] or not any(listed[split].values()):
            raise UserError(f"split folder {split_dir} holds no species folders with images")
    reference_split = splits[0]
    classes = sorted(listed[reference_split]) if strict else sorted(set().union(*listed.values()))
    for split in splits[1:] if strict else ():  # lenient: the caller reports the differences
        missing = sorted(set(classes) - set(listed[split]))
        extra = sorted(set(listed[split]) - set(classes))
        if missing or extra:
            raise UserError(
                f"class lists differ between {root / reference_split} and {root / split}: "
                f"missing in {split}: {_short(missing)}; extra in {split}: {_short(extra)}"
            )
    out = {}
    for split in splits:
        paths, labels = [], []
        for ci, name in enumerate(classes):
            files = listed[split].get(name, [])
            paths += files
            labels += [ci] * len(files)
        out[split] = SplitIndex(split, classes, paths, np.asarray(labels, dtype=np.int64))
    return out


def _short(names, n=5):
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def default_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_BIRDS_CACHE", Path.home() / ".cache" / "keras_birds"))


def materialize_hub_dataset(dataset_dict, out_dir, progress=True) -> Path:
    """Write a datasets.DatasetDict (image + ClassLabel columns) into the Kaggle folder layout.

    Each split is written to a temporary folder and renamed when complete, so an interrupted
    download never leaves a half split that looks finished.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    names = {HUB_SPLITS[s]: s for s in dataset_dict if s in HUB_SPLITS}
    missing = [s for s in SPLITS if s not in names]
    if missing:
        raise UserError(f"Hub data set has splits {list(dataset_dict)}; missing {missing} (need train/validation/test)")
    label_lists = {}
    for ours, theirs in names.items():
        ds = dataset_dict[theirs]
        image_col = next((c for c in ("image", "img") if c in ds.column_names), None)
        label_col = next((c for c in ("label", "labels") if c in ds.column_names), None)
        if image_col is None or label_col is None:
            raise UserError(f"Hub split '{theirs}' has columns {ds.column_names}; need an image and a label column")
        feature = ds.features[label_col]
        if not hasattr(feature, "names"):
            raise UserError(f"Hub split '{theirs}': column '{label_col}' is not a ClassLabel with species names")
        label_lists[ours] = list(feature.names)
        final = out_dir / ours
        if final.is_dir():
            continue
        tmp = out_dir / f".{ours}.partial"
        tmp.mkdir(parents=True, exist_ok=True)
        folders = class_folder_names(feature.names)
        for name in folders:
            (tmp / name).mkdir(exist_ok=True)
        for i, row in enumerate(tqdm(ds, desc=f"caching {ours}", disable=not progress)):
            target = tmp / folders[row[label_col]] / f"{i:06d}.jpg"
            if not target.exists():
                img = row[image_col]
                img.convert("RGB").save(target, quality=95)
        os.replace(tmp, final)
    first = label_lists["train"]
    for split, names_ in label_lists.items():
        if names_ != first:
            raise UserError(f"Hub split {split} has a different label list from train")
    return out_dir


def hub_source(dataset_id: str, cache_dir=None, strict=True, progress=True) -> dict:
    """Download a Hub data set once (datasets' own cache), cache it as folders, index it."""
    target = Path(cache_dir or default_cache_dir()) / "hub" / dataset_id.replace("/", "__")
    if not all((target / s).is_dir() for s in SPLITS):
        try:
            import datasets

            if not progress:  # its download bars too: quiet with -q
                datasets.disable_progress_bars()
            dataset_dict = datasets.load_dataset(dataset_id)
        except Exception as e:  # offline, unknown id, auth: all end the same way for the user
            raise UserError(
                f"cannot download Hugging Face data set '{dataset_id}' ({brief(e, 120, with_type=True)}); "
                f"if you are offline pass --data ROOT with a local Kaggle-layout folder"
            ) from e
        materialize_hub_dataset(dataset_dict, target, progress)
    return folder_source(target, strict=strict)


def named_source(data) -> bool:
    """Whether a --data value names a data set (hf:ID, tfds:NAME or tfds:PATH) rather than a Kaggle-layout
    folder: it is not a path as it stands (absolute_source makes it one that works from any folder)."""
    return str(data).startswith(NAMED_PREFIXES)


def absolute_source(data: str) -> str:
    """A --data value that means the same from any working directory: a folder (ROOT or tfds:PATH) made
    absolute (abspath, not resolve: a symlinked folder keeps its name); hf:ID and tfds:NAME as given."""
    rest = data[len(TFDS_PREFIX):]
    if data.startswith(TFDS_PREFIX) and is_local(rest):
        return TFDS_PREFIX + os.path.abspath(os.path.expanduser(rest))
    return data if named_source(data) else os.path.abspath(data)


def load_source(data: str, exclude: set | None = None, strict=True, progress=True) -> dict:
    """Resolve a recipe's `data` field ("hf:<id>", "tfds:<name or path>" or a folder) to {split: SplitIndex};
    strict: see folder_source; progress: the bars of a first download and caching (off for -q)."""
    if data.startswith("hf:"):
        index = hub_source(data[3:], strict=strict, progress=progress)
    elif data.startswith(TFDS_PREFIX):
        tfds_root = default_cache_dir() / "tfds"
        index = folder_source(materialize_tfds(data[len(TFDS_PREFIX):], tfds_root, progress=progress), strict=strict)
    else:
        index = folder_source(data, strict=strict)
    if exclude:
        index = {s: idx.without(exclude) for s, idx in index.items()}
    return index


def format_exclude_line(path: str, comment: str = "") -> str:
    """One exclude-file line: the path, then `  # comment` if any.

    The path is written plain when unambiguous, else as a JSON string literal ("...", with \\uXXXX
    for control characters): when it holds '#', starts or ends with whitespace, starts with '"' or
    holds a control character. parse_exclude_line reads both back; an unquoted path ends at the
    first '#' that starts the line or follows whitespace, so a hand-written `a/dup#2.jpg` works.
    """
    if "#" in path or path != path.strip() or path.startswith('"') or any(map(_unsafe, path)):
        path = "".join(f"\\u{ord(c):04x}" if _unsafe(c) else c for c in json.dumps(path, ensure_ascii=False))
    comment = "".join(" " if _unsafe(c) else c for c in comment).strip()
    return f"{path}  # {comment}" if comment else path


_COMMENT = re.compile(r"(?:^|(?<=\s))#")


def parse_exclude_line(line: str):
    """(path, comment) of one line written by format_exclude_line or by hand; None for a blank or
    comment line. ValueError for a bad quoted path."""
    body = line.strip()
    if body.startswith('"'):
        entry, end = json.JSONDecoder().raw_decode(body)
        rest = body[end:].strip()
        if rest and not rest.startswith("#"):
            raise ValueError(f"unexpected {rest[:30]!r} after the quoted path (only a `# comment` may follow)")
        if not entry:
            raise ValueError("empty quoted path")
        return entry, rest[1:].strip()
    cut = _COMMENT.search(body)
    entry = (body[:cut.start()] if cut else body).strip()
    return (entry, body[cut.end():].strip() if cut else "") if entry else None


def missing_exclude_file(path, recorded_in=None) -> UserError:
    """The one rule for an exclude list that is not there, for train, eval and export alike: an error,
    never a silent "nothing left out" (figures would then count images the run was told to leave out).
    `recorded_in`: the run's recipe.json when the path comes from a run rather than from the user."""
    where = f" (named in {recorded_in})" if recorded_in else ""
    return UserError(f"exclude file {path} does not exist{where}; restore it, or pass --exclude '' "
                     f"to leave no image out")


def read_exclude_entries(path, recorded_in=None) -> dict:
    """{absolute path: comment} of an exclude file (UTF-8): one path per line (see
    format_exclude_line), `# comment` after it (the reason, e.g. from `keras-birds clean`), blank
    lines and whole-line comments allowed. A path that is not a file: missing_exclude_file.

    A relative line is resolved against the exclude file's own folder when that names an existing
    file (what `clean` writes, so its list survives moving to another working directory), else
    against the current directory (lists written by hand). Only existing files can match an indexed
    image, so the two readings never disagree about a file that is left out.
    """
    if not path:
        return {}
    path = Path(path)
    if not path.is_file():
        raise missing_exclude_file(path, recorded_in)
    base = os.path.dirname(os.path.abspath(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"exclude file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            parsed = parse_exclude_line(line)
        except ValueError as e:
            raise UserError(f"exclude file {path} line {number}: {e} (a line starting with '\"' holds a "
                            f"JSON string)") from None
        if parsed is None:
            continue
        entry, comment = parsed
        beside = os.path.abspath(os.path.join(base, entry))
        resolved = beside if os.path.isabs(entry) or os.path.exists(beside) else os.path.abspath(entry)
        out[resolved] = comment
    return out


def read_exclude_file(path, recorded_in=None) -> set:
    """Paths to leave out, one per line (# comments allowed), resolved to absolute paths."""
    return set(read_exclude_entries(path, recorded_in))


def exclude_reason(comment: str) -> str:
    """The reason key of an exclude line's comment: its first word ('leakage: ...' -> 'leakage')."""
    word = comment.replace(",", " ").replace(":", " ").split()
    return word[0] if word else "unstated"


def exclusion_summary(index: dict, entries: dict, splits=("train", "valid")) -> dict:
    """How many files of each split an exclude list leaves out of `index` (before exclusion), and why."""
    left_out, reasons = {}, {}
    for split in splits:
        hits = [entries[a] for a in map(os.path.abspath, index[split].paths) if a in entries]
        left_out[split] = len(hits)
        for comment in hits:
            key = exclude_reason(comment)
            reasons[key] = reasons.get(key, 0) + 1
    return {"excluded_by_split": left_out, "excluded_by_reason": dict(sorted(reasons.items()))}
