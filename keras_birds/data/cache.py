"""Decode a split once into a memory-mapped uint8 array that later epochs and later runs read instead of JPEGs.

One entry per split and image size, ROOT/<key>/ (ROOT: $KERAS_BIRDS_CACHE/arrays, default
~/.cache/keras_birds/arrays):
  images.npy   (N, S, S, 3) uint8; row i is index.paths[i], zeros where that file is unreadable
  labels.npy   (N,) int64
  files.json   format, split, image size, the files, the unreadable ones with their reason; written last
The key hashes every file's path, size, mtime and label, the image size and FORMAT: a file added, removed
or modified, or another size, gives another key, so the entry is rebuilt. An entry is built in a hidden
folder beside it and renamed into place whole, so a killed build never leaves an entry that looks complete.
Reading an entry is no decode at all: the rows come from the page cache (or disk), a few ms a batch.
Nothing is evicted (BIRDS-525's train split at 224 px is 12.7 GB): delete the folder to reclaim the space.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from keras_birds.data.images import BadImage, load_rgb
from keras_birds.data.sources import SplitIndex, default_cache_dir
from keras_birds.errors import UserError
from keras_birds.run_dir import process_alive

FORMAT = 1  # bump when the layout or the decoding changes: old entries then no longer match
_CHUNK = 256  # rows decoded per round of the thread pool: bounds the decoded images held in memory


def cache_root(cache) -> Path:
    """The folder of array entries: cache=True -> the default one, else cache names a folder."""
    return default_cache_dir() / "arrays" if cache is True else Path(cache)


def cache_key(index: SplitIndex, image_size: int) -> str:
    h = hashlib.sha256(f"keras_birds arrays v{FORMAT}\n{image_size}\n".encode())
    for path, label in zip(index.paths, index.labels.tolist()):
        try:
            st = os.stat(path)
            stamp = f"{st.st_size} {st.st_mtime_ns}"
        except OSError:  # gone since it was listed: it will be skipped as unreadable
            stamp = "missing"
        h.update(f"{os.path.abspath(path)}\0{stamp}\0{label}\n".encode("utf-8", "surrogateescape"))
    return f"{index.split}-{image_size}px-{h.hexdigest()[:32]}"


class CachedSplit:
    """The decoded pixels of one split, row for row with its SplitIndex."""

    def __init__(self, folder: Path, index: SplitIndex, images: np.ndarray, skipped: dict):
        self.folder, self.paths, self.labels = folder, index.paths, index.labels
        self.images = images  # np.memmap, read-only
        self.skipped = skipped  # row -> reason

    def take(self, positions, record):
        """(uint8 images, int labels) of the readable rows among positions, in order; record(path, reason)
        for each unreadable one, as the decoding loader does."""
        rows = []
        for j in positions:
            j = int(j)
            if j in self.skipped:
                record(self.paths[j], self.skipped[j])
            else:
                rows.append(j)
        return self.images[rows], self.labels[rows]


def open_cached(index: SplitIndex, image_size: int, root, workers: int = 1, progress: bool = True) -> CachedSplit:
    """The entry for this split at this size: reused when complete and current, else built first."""
    root = Path(root)
    folder = root / cache_key(index, image_size)
    entry = _open(folder, index, image_size)
    if entry is None:
        _build(folder, index, image_size, workers, progress)
        entry = _open(folder, index, image_size)
    if entry is None:
        raise UserError(f"image cache {folder} could not be read back after building it")
    return entry


def _open(folder: Path, index: SplitIndex, image_size: int):
    """A CachedSplit when folder holds a complete entry for exactly this split, else None."""
    try:
        meta = json.loads((folder / "files.json").read_text())
        images = np.load(folder / "images.npy", mmap_mode="r")
        labels = np.load(folder / "labels.npy")
        skipped = {int(r["row"]): str(r["reason"]) for r in meta["skipped"]}
    except (OSError, ValueError, KeyError, TypeError):  # missing, half-written or not ours
        return None
    if (meta.get("format") != FORMAT or meta.get("image_size") != image_size
            or meta.get("files") != [os.path.abspath(p) for p in index.paths]
            or images.shape != (len(index), image_size, image_size, 3) or images.dtype != np.uint8
            or not np.array_equal(labels, index.labels)):
        return None
    return CachedSplit(folder, index, images, skipped)


def _decode(path, size):
    try:
        return load_rgb(path, size), None
    except BadImage as e:
        return None, str(e)


def _build(folder: Path, index: SplitIndex, image_size: int, workers: int, progress: bool):
    from tqdm import tqdm

    root = folder.parent
    root.mkdir(parents=True, exist_ok=True)
    n, row_bytes = len(index), image_size * image_size * 3
    _remove_abandoned(root, folder.name)
    need, free = n * row_bytes, shutil.disk_usage(root).free
    if need > free:
        raise UserError(f"the image cache for split '{index.split}' needs {need / 1e9:.1f} GB; {root} has "
                        f"{free / 1e9:.1f} GB free (set KERAS_BIRDS_CACHE to a bigger disk, or drop cache=true)")
    tmp = Path(tempfile.mkdtemp(prefix=f".building-{folder.name}-{os.getpid()}-", dir=root))
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(n, image_size, image_size, 3))
        skipped = []
        bar = tqdm(total=n, unit="img", desc=f"caching {index.split} at {image_size}px", file=sys.stderr,
                   disable=not progress, mininterval=1.0)
        with ThreadPoolExecutor(max(1, workers)) as pool, bar:
            for start in range(0, n, _CHUNK):
                paths = index.paths[start:start + _CHUNK]
                for i, (pixels, reason) in enumerate(pool.map(_decode, paths, [image_size] * len(paths))):
                    if pixels is None:
                        skipped.append({"row": start + i, "path": os.path.abspath(paths[i]), "reason": reason})
                    else:
                        images[start + i] = pixels
                bar.update(len(paths))
        images.flush()
        del images
        np.save(tmp / "labels.npy", np.asarray(index.labels, dtype=np.int64))
        meta = {"format": FORMAT, "split": index.split, "image_size": image_size,
                "files": [os.path.abspath(p) for p in index.paths], "skipped": skipped}
        (tmp / "files.json").write_text(json.dumps(meta))
        for name in ("images.npy", "labels.npy", "files.json"):  # on disk before the name says "complete"
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        if _open(folder, index, image_size) is None:  # not raced by another process's finished build
            shutil.rmtree(folder, ignore_errors=True)  # a stale or damaged entry under this key
            try:
                os.replace(tmp, folder)
            except OSError:
                if _open(folder, index, image_size) is None:  # raced by another build: theirs is as good
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_abandoned(root: Path, name: str):
    """Delete half-built entries of this key whose building process is gone (killed mid-build)."""
    for tmp in root.glob(f".building-{name}-*"):
        try:
            pid = int(tmp.name[len(f".building-{name}-"):].split("-")[0])
            alive = process_alive(pid)
        except (ValueError, OSError):
            continue  # not ours to judge: leave it
        if not alive:
            shutil.rmtree(tmp, ignore_errors=True)
