"""Batches for Keras: decode (and augment) in worker threads so decoding does not starve training."""
from __future__ import annotations

import math
import threading

import keras
import numpy as np

from keras_birds.cores import usable_cores
from keras_birds.data.cache import cache_root, open_cached
from keras_birds.data.images import BadImage, load_rgb
from keras_birds.data.sources import SplitIndex
from keras_birds.errors import UserError


def usable_workers(workers: int) -> int:
    """Loader threads for a recipe's `workers`: 0 means one per CPU core this process may use."""
    return workers if workers > 0 else usable_cores()


class SkippedFiles:
    """Thread-safe record of files that could not be decoded: path -> reason."""

    def __init__(self):
        self._lock = threading.Lock()
        self.files = {}

    def add(self, path, reason):
        with self._lock:
            self.files[str(path)] = reason

    def as_list(self):
        with self._lock:
            return [{"path": p, "reason": r} for p, r in sorted(self.files.items())]


class BatchLoader(keras.utils.PyDataset):
    """Yields (pixels float32 0-255 (N,S,S,3), one-hot labels) for one split; augmented pixels are a
    torch tensor on the training device on the torch backend (see augment_on_device).

    Threads rather than processes: PIL decoding and resizing release the GIL, and threads share
    the augmentation layers without pickling. Unreadable files are skipped and recorded.
    With `cache`, the split is decoded once into a uint8 array (keras_birds.data.cache) read instead of files.
    """

    def __init__(self, index: SplitIndex, image_size: int, batch_size: int, *, shuffle=False,
                 augmenter=None, workers=0, seed=0, skipped: SkippedFiles | None = None, cache=False,
                 as_tensors=False, progress=True):
        workers = usable_workers(workers)
        # A cached batch without augmentation is one ~1 ms array gather: Keras' thread pool hand-offs would
        # cost more than the work, so fit reads it in its own thread (1 worker = no enqueuer).
        threads = 1 if cache and augmenter is None else max(1, workers)
        super().__init__(workers=threads, use_multiprocessing=False, max_queue_size=max(2, 2 * threads))
        if len(index) == 0:
            raise UserError(f"split '{index.split}' has no images (all excluded?)")
        self.index, self.image_size, self.batch_size = index, image_size, batch_size
        self.shuffle, self.augmenter = shuffle, augmenter
        # as_tensors (for fit on torch): batches as torch tensors, which Keras' torch data adapter passes
        # through as they are; it copies every numpy batch (np.array in convert_to_tensor).
        self.as_tensors = as_tensors and keras.backend.backend() == "torch"
        self.skipped = skipped if skipped is not None else SkippedFiles()
        self.num_classes = len(index.class_names)
        self._rng = np.random.default_rng(seed)
        self.epoch = 0  # epochs ended; keys the augmentation
        self.order = self._rng.permutation(len(index)) if shuffle else np.arange(len(index))
        # cache: False, True (the default folder) or a folder; the pixels then come from a uint8 array
        # (progress: its first build's bar).
        self.cached = open_cached(index, image_size, cache_root(cache), workers, progress) if cache else None

    def __len__(self):
        return math.ceil(len(self.index) / self.batch_size)

    def _decode(self, positions):
        if self.cached is not None:
            return self.cached.take(positions, self.skipped.add)
        images, labels = [], []
        for j in positions:
            path = self.index.paths[j]
            try:
                images.append(load_rgb(path, self.image_size))
                labels.append(self.index.labels[j])
            except BadImage as e:
                self.skipped.add(path, str(e))
        return images, labels

    def load_batch(self, i):
        """Decoded (uint8 images, int labels) of batch i, bad files dropped."""
        start = i * self.batch_size
        images, labels = self._decode(self.order[start:start + self.batch_size])
        nxt = start + self.batch_size
        while not len(images) and nxt < start + len(self.order):  # whole batch unreadable: borrow the next good one
            images, labels = self._decode([self.order[nxt % len(self.order)]])
            nxt += 1
        if not len(images):
            raise UserError(f"no readable image in split '{self.index.split}' (see the skipped files)")
        return (images if isinstance(images, np.ndarray) else np.stack(images)), np.asarray(labels)

    def load_positions(self, positions):
        """Decoded (uint8 images, int labels) of the images at `positions` of the index, bad files dropped."""
        images, labels = self._decode(positions)
        if not isinstance(images, np.ndarray):
            images = np.stack(images) if images else np.zeros((0, self.image_size, self.image_size, 3), "uint8")
        return images, np.asarray(labels, dtype="int64")

    def __getitem__(self, i):
        images, labels = self.load_batch(i)
        y = np.eye(self.num_classes, dtype="float32")[labels]
        if self.augmenter is not None:
            return self.augment_on_device(images, i), y
        if self.as_tensors:
            import torch

            return self.pixels(images), torch.from_numpy(y)
        return self.pixels(images), y

    def pixels(self, images):
        """An unaugmented uint8 batch as fit takes it: float32 pixels 0-255 (a torch tensor with as_tensors)."""
        if self.as_tensors:
            import torch

            return torch.from_numpy(np.ascontiguousarray(images)).float()
        return images.astype("float32")

    def augment_on_device(self, images, i):
        """uint8 batch i -> augmented float32 pixels 0-255: on the torch backend a tensor on the training
        device (uint8 crosses to it, 4x less than float32). Keyed by (epoch, i): reproducible whichever
        worker thread runs it."""
        return self.augmenter(images, key=(self.epoch, i))

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self.order = self._rng.permutation(len(self.index))
