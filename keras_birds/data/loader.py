"""Batches for Keras: decode (and augment) in worker threads so decoding does not starve training."""
from __future__ import annotations

import math
import threading

import keras
import numpy as np

from keras_birds.data.images import BadImage, load_rgb
from keras_birds.data.sources import SplitIndex
from keras_birds.errors import UserError


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
    """Yields (pixels float32 0-255 (N,S,S,3), one-hot labels) for one split.

    Threads rather than processes: PIL decoding and resizing release the GIL, and threads share
    the augmentation layers without pickling. Unreadable files are skipped and recorded.
    """

    def __init__(self, index: SplitIndex, image_size: int, batch_size: int, *, shuffle=False,
                 augmenter=None, workers=2, seed=0, skipped: SkippedFiles | None = None):
        super().__init__(workers=max(1, workers), use_multiprocessing=False,
                         max_queue_size=max(2, 2 * workers))
        if len(index) == 0:
            raise UserError(f"split '{index.split}' has no images (all excluded?)")
        self.index, self.image_size, self.batch_size = index, image_size, batch_size
        self.shuffle, self.augmenter = shuffle, augmenter
        self.skipped = skipped if skipped is not None else SkippedFiles()
        self.num_classes = len(index.class_names)
        self._rng = np.random.default_rng(seed)
        self.order = self._rng.permutation(len(index)) if shuffle else np.arange(len(index))

    def __len__(self):
        return math.ceil(len(self.index) / self.batch_size)

    def _decode(self, positions):
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
        while not images and nxt < start + len(self.order):  # whole batch unreadable: borrow the next good one
            images, labels = self._decode([self.order[nxt % len(self.order)]])
            nxt += 1
        if not images:
            raise UserError(f"no readable image in split '{self.index.split}' (see the skipped files)")
        return np.stack(images), np.asarray(labels)

    def __getitem__(self, i):
        images, labels = self.load_batch(i)
        x = images.astype("float32")
        if self.augmenter is not None:
            x = self.augmenter(x)
        y = np.eye(self.num_classes, dtype="float32")[labels]
        return x, y

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self._rng.permutation(len(self.index))
