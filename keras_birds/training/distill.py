"""Knowledge distillation: the student matches a teacher's softened probabilities on the same augmented view.

A batch's target is one array, [one-hot labels | teacher probabilities] (N, 2C), so Keras' fit, our
epoch checkpoints and resume stay as they are; the loss and the top-1/top-5 metrics split it.
The teacher is one run directory or several (an ensemble: their probabilities averaged). With
`kd_views` > 0 its outputs are computed once on that many seeded augmented epochs and cycled (epoch e
replays view e mod kd_views: the same order, the same augmentation), so a run is repeatable and the
teacher is not run every epoch; with 0 the teacher runs on every batch (online). Photos of the recipe's
`unlabeled` folder join the train images with an all-zero label half: the teacher's outputs are their only
target (the cross-entropy term is zero for them, and the top-1/top-5 metrics leave them out).
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_birds.errors import UserError
from keras_birds.recipe import RECIPES_DIR
from keras_birds.run_dir import atomic_save, atomic_write_json, file_sha256

TEACHER_JSON = "teacher.json"
CACHE_FILE = "teacher_outputs.npy"  # (views, images, classes) float16, in each view's batch order


# -- teachers --------------------------------------------------------------------------------------------
@dataclass
class Teacher:
    path: Path
    runner: object  # a KerasRunner: probabilities from raw pixels
    image_size: int
    record: dict  # what teacher.json stores about it


def load_teachers(spec: str, class_names: list) -> list:
    """The run directories of `spec` (comma-separated), each checked to know exactly `class_names`."""
    from keras_birds.inference.context import RunContext
    from keras_birds.inference.runners import open_runner

    teachers = []
    for raw in (p.strip() for p in spec.split(",") if p.strip()):
        if not Path(raw).exists():
            raise UserError(_missing_teacher(raw))
        run = RunContext.existing(raw, "set teacher= to the --out folder of a finished `keras-birds train` run")
        classes = run.class_names()
        if classes != list(class_names):
            missing = sorted(set(class_names) - set(classes))[:3]
            raise UserError(f"teacher {run.path} knows {len(classes)} species and the data has {len(class_names)}"
                            f"{' (e.g. it lacks ' + ', '.join(missing) + ')' if missing else ' in another order'}; "
                            f"a teacher must be trained on the same species list (its classes.txt)")
        weights = run.model_file()
        recipe = run.recipe()
        record = {"path": str(run.path.resolve()), "model": recipe.model, "image_size": recipe.image_size,
                  "classes": len(classes),
                  "classes_sha256": hashlib.sha256("\n".join(classes).encode()).hexdigest(),
                  "weights": weights.name, "weights_sha256": file_sha256(weights), "recipe": recipe.to_dict()}
        # A teacher only answers: through ONNX Runtime where it matches Keras (~3x faster on a CPU).
        teachers.append(Teacher(run.path, open_runner(run).frozen(), recipe.image_size, record))
    if not teachers:
        raise UserError("teacher is empty: name one run directory or several, comma-separated")
    return teachers


def _missing_teacher(path: str) -> str:
    """The teacher's folder is not there: say it is the teacher, how to train it (the shipped recipe of its
    name, if one), or how to name another."""
    name = Path(path).name
    recipe = f"recipes/{name}.py" if (RECIPES_DIR / f"{name}.py").is_file() else "RECIPE"
    return (f"teacher run {path} does not exist: train the teacher first (keras-birds train {recipe} --out {path}, "
            f"with the same --data) or name a finished run with --set teacher=RUN_DIR")


def teacher_probs(teachers: list, pixels) -> np.ndarray:
    """Mean teacher probabilities (N, C) float32 on a batch of pixels 0-255 (N, S, S, 3), numpy or torch,
    resized (bilinear) to each teacher's own input size."""
    x = keras.ops.convert_to_tensor(pixels, "float32")
    out = None
    for t in teachers:
        xt = x if int(x.shape[1]) == t.image_size else keras.ops.image.resize(x, (t.image_size, t.image_size))
        p = t.runner.predict(keras.ops.convert_to_numpy(xt)).astype("float32")
        out = p if out is None else out + p
    return out / len(teachers)


# -- loss and metrics ------------------------------------------------------------------------------------
class KDLoss(keras.losses.Loss):
    """kd_alpha * T^2 * KL(teacher_T || student_T) + (1 - kd_alpha) * cross-entropy(labels, student).

    The model outputs probabilities: log p is a logit up to a constant, so softmax(log p / T) is the
    softened distribution (Hinton et al. 2015); T^2 keeps the KD gradients' scale as T changes.
    """

    def __init__(self, n_classes: int, temperature: float, alpha: float, label_smoothing: float = 0.0,
                 name="kd_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_classes, self.temperature, self.alpha, self.label_smoothing = n_classes, temperature, alpha, label_smoothing

    def call(self, y_true, y_pred):
        ops, c, t = keras.ops, self.n_classes, self.temperature
        labels, teacher = y_true[:, :c], y_true[:, c:]
        if self.label_smoothing:
            labels = labels * (1 - self.label_smoothing) + self.label_smoothing / c
        log_student = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        ce = -ops.sum(labels * log_student, axis=-1)
        log_s_t = ops.log_softmax(log_student / t, axis=-1)
        log_t_t = ops.log_softmax(ops.log(ops.clip(teacher, 1e-7, 1.0)) / t, axis=-1)
        kl = ops.sum(ops.exp(log_t_t) * (log_t_t - log_s_t), axis=-1)
        return self.alpha * t * t * kl + (1 - self.alpha) * ce

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "temperature": self.temperature,
                "alpha": self.alpha, "label_smoothing": self.label_smoothing}


class _LabelledMean(keras.metrics.MeanMetricWrapper):
    """A metric on the label half of the target, over the rows that have a label (unlabeled photos have none)."""

    def __init__(self, fn, name, n_classes: int):
        super().__init__(fn, name=name)
        self.n_classes = n_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        labelled = keras.ops.sum(y_true[:, :self.n_classes], axis=-1)
        return super().update_state(y_true, y_pred, labelled if sample_weight is None else labelled * sample_weight)


def label_metrics(n_classes: int) -> list:
    """top1/top5 on the label half of the target."""
    k = min(5, n_classes)

    def top1(y_true, y_pred):
        return keras.metrics.categorical_accuracy(y_true[:, :n_classes], y_pred)

    def top5(y_true, y_pred):
        return keras.metrics.top_k_categorical_accuracy(y_true[:, :n_classes], y_pred, k=k)

    return [_LabelledMean(top1, "top1", n_classes), _LabelledMean(top5, "top5", n_classes)]


# -- the train loader ------------------------------------------------------------------------------------
class DistillLoader(keras.utils.PyDataset):
    """Batches (augmented pixels, [one-hot | teacher probabilities]) of a train BatchLoader `base`.

    Epoch e shows view v = e mod views (views > 0) or v = e (online): its own seeded order and the
    augmentation keyed (v, batch), so a cached view replays exactly the images the teacher saw.
    """

    def __init__(self, base, teachers: list, *, views: int, seed: int, first_epoch: int = 0, cache=None):
        super().__init__(workers=base.workers, use_multiprocessing=False, max_queue_size=base.max_queue_size)
        self.base, self.teachers, self.views, self.seed = base, teachers, views, seed
        self.epoch = first_epoch
        self.cache = cache  # (views, images, classes) or None: online
        self._lock = threading.Lock()  # one teacher forward at a time across loader threads
        self._order = None

    def __len__(self):
        return len(self.base)

    def view(self, epoch=None) -> int:
        epoch = self.epoch if epoch is None else epoch
        return epoch % self.views if self.views else epoch

    def order(self, view: int) -> np.ndarray:
        drawn = self._order  # (view, permutation): drawn once per view, not once per batch
        if drawn is None or drawn[0] != view:
            drawn = self._order = (view, np.random.default_rng([self.seed, view]).permutation(len(self.base.index)))
        return drawn[1]

    def view_batch(self, view: int, i: int):
        """(augmented pixels, int labels, slice into the view's order) of batch i of `view`."""
        bs = self.base.batch_size
        images, labels = self.base.load_positions(self.order(view)[i * bs:(i + 1) * bs])
        if not len(images):
            raise UserError(f"no readable image in train batch {i} (see the skipped files)")
        rows = slice(i * bs, i * bs + len(labels))
        if self.base.augmenter is None:  # augmentation off: the plain pixels
            return self.base.pixels(images), labels, rows
        return self.base.augmenter(images, key=(view, i)), labels, rows

    def __getitem__(self, i):
        v = self.view()
        x, labels, rows = self.view_batch(v, i)
        if self.cache is not None:
            probs = np.asarray(self.cache[v, rows], dtype="float32")
        else:
            with self._lock:
                probs = teacher_probs(self.teachers, x)
        onehot = np.eye(self.base.num_classes, dtype="float32")[np.maximum(labels, 0)] * (labels >= 0)[:, None]
        y = np.concatenate([onehot, probs], axis=1)
        if self.base.as_tensors:
            import torch

            return x, torch.from_numpy(y)
        return x, y

    def on_epoch_end(self):
        self.epoch += 1


def build_cache(loader: DistillLoader, log=print, progress=False) -> np.ndarray:
    """The teachers' probabilities on every view's batches, (views, images, classes) float16; progress: a
    bar per view on stderr."""
    from tqdm import tqdm

    n, c = len(loader.base.index), loader.base.num_classes
    cache = np.zeros((loader.views, n, c), "float16")
    log(f"computing the teacher's outputs on {loader.views} augmented views of {n} images")
    for v in range(loader.views):
        for i in tqdm(range(len(loader)), desc=f"teacher outputs, view {v + 1}/{loader.views}", unit="batch",
                      file=sys.stderr, disable=not progress, mininterval=1.0):
            x, _, rows = loader.view_batch(v, i)
            cache[v, rows] = teacher_probs(loader.teachers, x)
    return cache


def with_unlabeled(base, folder: str):
    """A train BatchLoader over `base`'s images plus every image under `folder` (label -1), same settings."""
    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import SplitIndex, image_files_under

    photos = image_files_under(folder) if Path(folder).is_dir() else []
    if not photos:
        raise UserError(f"unlabeled={folder}: {'no such folder' if not Path(folder).is_dir() else 'it holds no image'}; "
                        f"point it at a folder of bird photos, or leave it out")
    index = base.index
    index = SplitIndex(index.split, index.class_names, list(index.paths) + [str(p) for p in photos],
                       np.concatenate([index.labels, np.full(len(photos), -1, index.labels.dtype)]))
    return BatchLoader(index, base.image_size, base.batch_size, augmenter=base.augmenter, workers=base.workers,
                       skipped=base.skipped, as_tensors=base.as_tensors)


def _unlabeled_record(folder: str, index):
    if not folder:
        return None
    photos = sorted(index.paths[i] for i in np.flatnonzero(index.labels < 0))
    return {"folder": folder, "images": len(photos), "paths_sha256": hashlib.sha256("\n".join(photos).encode()).hexdigest()}


def prepare(recipe, run, base_loader, teachers: list, first_epoch: int, log=print, progress=False) -> DistillLoader:
    """The distillation train loader of a run (teachers from load_teachers): teacher.json written, the
    cached outputs built (or reused when the run dir already holds them for the same teachers and seeds)."""
    if recipe.unlabeled:
        base_loader = with_unlabeled(base_loader, recipe.unlabeled)
        log(f"unlabeled: {int((base_loader.index.labels < 0).sum())} photos from {recipe.unlabeled}, labelled by the teacher")
    record = {"teachers": [t.record for t in teachers], "kd_temperature": recipe.kd_temperature,
              "kd_alpha": recipe.kd_alpha, "kd_views": recipe.kd_views, "seed": recipe.seed,
              "cache": CACHE_FILE if recipe.kd_views else None,
              "unlabeled": _unlabeled_record(recipe.unlabeled, base_loader.index)}
    path, cache_path = Path(run.path) / TEACHER_JSON, Path(run.path) / CACHE_FILE
    loader = DistillLoader(base_loader, teachers, views=recipe.kd_views, seed=recipe.seed, first_epoch=first_epoch)
    if recipe.kd_views:
        old = json.loads(path.read_text()) if path.exists() else None
        if old == record and cache_path.exists():
            loader.cache = np.load(cache_path, mmap_mode="r")
        else:
            loader.cache = build_cache(loader, log, progress)
            atomic_save(cache_path, lambda p: np.save(p, loader.cache))
    atomic_write_json(path, record)
    names = ", ".join(f"{t.record['model']} ({t.path.name})" for t in teachers)
    log(f"distilling from {names}: T={recipe.kd_temperature:g}, alpha={recipe.kd_alpha:g}, "
        f"{'online teacher' if not recipe.kd_views else f'{recipe.kd_views} cached views'}")
    return loader
