"""train(recipe) -> RunDir: the two-phase fine-tuning run, resumable at any finished epoch."""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from keras_birds.data.augment import build_augmenter
from keras_birds.data.loader import BatchLoader, SkippedFiles
from keras_birds.data.sources import exclusion_summary, load_source, read_exclude_entries
from keras_birds.errors import UserError
from keras_birds.models.build import build_classifier, classifier_options
from keras_birds.recipe import Recipe
from keras_birds.run_dir import LOCK_HELD_ENV, RunDir, atomic_save, atomic_write_json, writer_lock
from keras_birds.training import distill, distributed
from keras_birds.training.callbacks import EpochCheckpoint, restore_optimizer_state
from keras_birds.training.head_init import init_head_from_class_means, init_head_from_probe
from keras_birds.training.phases import setup_phase
from keras_birds.training.precision import resolve_precision, training_precision
from keras_birds.training.schedule import two_phase_plan
from keras_birds.training.tensorboard import training_board


def train(recipe: Recipe | None, out, *, resume=False, overwrite=False, verbose=1, log=print, devices=1) -> RunDir:
    """`devices` > 1: data-parallel on JAX (keras.distribution.DataParallel); torch's come from torchrun."""
    parallel = distributed.data_parallel(devices)
    run = RunDir(out)
    run.check_can_start(resume, overwrite)  # before the lock: it writes nothing into a folder that is not ours
    with _one_writer(run), parallel.scope() if parallel else contextlib.nullcontext():  # the model is built replicated
        return _start(recipe, run, resume=resume, overwrite=overwrite, verbose=verbose, log=log)


def _one_writer(run: RunDir):
    """The run's writer lock; under `train --devices N` its launcher holds it for the whole torchrun job,
    under a torchrun of your own rank 0 (the rank that writes) takes it."""
    if os.environ.get(LOCK_HELD_ENV) == os.path.abspath(run.path) or not distributed.is_main():
        return contextlib.nullcontext()
    return writer_lock(run.path)


def _start(recipe: Recipe | None, run: RunDir, *, resume, overwrite, verbose, log) -> RunDir:
    distributed.init()  # joins torchrun's process group; nothing happens in a single process
    if not distributed.is_main():  # rank 0 alone logs and shows progress
        verbose, log = 0, (lambda *args, **kwargs: None)
    if resume:
        recipe = Recipe.from_dict(run.read_recipe())
        state = run.read_state()
        trained_on = state.get("world_size", 1)
        if state.get("epochs_done") and trained_on != distributed.replicas():
            # The global batch (batch_size x devices) sets the steps per epoch, so the LR schedule's position
            # and the saved optimizer step would not match.
            raise UserError(f"{run.path} was trained on {trained_on} device(s) and this resume has "
                            f"{distributed.replicas()}; resume it with --devices {trained_on}")
        if state["epochs_done"] >= sum(recipe.epochs) and run.model_keras.exists():
            log(f"{run.path}: all {sum(recipe.epochs)} epochs already done")
            return run
    else:
        # Relative paths mean "from the working directory of this command": stored absolute, the run's
        # eval/export/compare work from any folder. A resumed run keeps what it stored (old runs: relative).
        recipe = recipe.with_absolute_paths()
        state = {"epochs_done": 0}  # the folder was checked free by train(), before minutes of loading
    with training_precision(recipe.precision):
        return _train(recipe, run, state, resume=resume, overwrite=overwrite, verbose=verbose, log=log)


@dataclass(frozen=True)
class _Data:
    index: dict  # split -> index, exclusions applied
    classes: list
    excluded: dict  # {path: reason} read from recipe.exclude
    left_out: dict  # exclusion_summary: excluded_by_split, excluded_by_reason


def _load_data(recipe: Recipe, run: RunDir, resume: bool, progress: bool) -> _Data:
    excluded = read_exclude_entries(recipe.exclude, recorded_in=run.recipe_json if resume else None)  # {path: reason}
    full_index = load_source(recipe.data, progress=progress)
    index = {s: idx.without(set(excluded)) for s, idx in full_index.items()} if excluded else full_index
    classes = index["train"].class_names
    if resume and run.read_classes() != classes:
        raise UserError(f"data {recipe.data} no longer has the class list this run was trained on ({run.classes_txt})")
    return _Data(index, classes, excluded, exclusion_summary(full_index, excluded))


def _claim_run(run: RunDir, recipe: Recipe, classes: list, resume: bool, overwrite: bool) -> None:
    distributed.barrier()  # every rank has checked the out folder before rank 0 claims it
    if not resume and distributed.is_main():  # only once data and model are known good: a failure leaves no half-made run
        run.prepare(recipe.to_dict(), overwrite)
        run.write_classes(classes)
    distributed.barrier()


def _loaders(recipe: Recipe, index: dict, done: int, loader_args: dict):
    """(train loader, this rank's valid loader); the train loader is a plain one (distillation wraps it)."""
    # Each rank augments its own images with its own draws (the same seed would repeat one rank's warps).
    augmenter = build_augmenter(recipe.augment, recipe.seed + done + 7919 * distributed.rank())
    with distributed.main_first():  # rank 0 decodes the train split's array cache; the others then reuse it
        train_loader = distributed.train_loader_class()(index["train"], shuffle=True, augmenter=augmenter,
                                                        as_tensors=True, **loader_args)
    valid_loader = BatchLoader(distributed.strided(index["valid"]), **loader_args)  # this rank's share
    return train_loader, valid_loader


def _init_head(model, recipe: Recipe, train_index, loader_args: dict, n_classes: int, log) -> None:
    """recipe.head_init on a fresh model ("random": the Dense layer's own initialiser, nothing to do)."""
    progress = loader_args["progress"]
    if recipe.head_init == "class_mean":
        init_head_from_class_means(model, BatchLoader(train_index, **loader_args), n_classes, progress=progress)
    elif recipe.head_init == "probe":
        # The plain train images plus recipe.probe_views augmented passes over them.
        views = [BatchLoader(train_index, **loader_args)] + [
            BatchLoader(train_index, augmenter=build_augmenter(recipe.augment, recipe.seed + 1000 + k), **loader_args)
            for k in range(recipe.probe_views)]
        log(f"fitting a linear probe on frozen features of {len(train_index)} train images x {2 * len(views)} views")
        init_head_from_probe(model, views, n_classes, progress=progress)


def _run_phases(model, recipe: Recipe, run: RunDir, loaders, skipped, done: int, n_classes: int, verbose, log, board):
    train_loader, valid_loader = loaders
    for phase in two_phase_plan(recipe.epochs, recipe.lr):
        if done >= phase.end_epoch:
            continue
        schedule = setup_phase(model, recipe, phase, len(train_loader), n_classes)
        if done > phase.first_epoch:  # resuming inside this phase: same LR step, same Adam moments
            restore_optimizer_state(model.optimizer, model.trainable_variables, run.optimizer_state)
        log(f"phase {phase.number}: {'all layers' if phase.train_backbone else 'head only, backbone frozen'}, "
            f"epochs {phase.first_epoch + 1}-{phase.end_epoch}, one-cycle peak LR {phase.peak_lr:g}")
        # Keras appends its own progress bar after our callbacks, so our epoch line printed before the bar's
        # closing newline; a ProgbarLogger of ours, listed first, replaces it and ends the bar first.
        progbar = [keras.callbacks.ProgbarLogger()] if verbose else []
        checkpoint = EpochCheckpoint(run, phase, valid_loader, schedule, skipped, recipe.tta_flip, log)
        # The board's callback comes after the checkpoint: it writes the epoch's committed metrics row.
        model.fit(train_loader, initial_epoch=max(done, phase.first_epoch), epochs=phase.end_epoch, verbose=verbose,
                  callbacks=progbar + [checkpoint] + board.callbacks(schedule))
        done = phase.end_epoch


def _train(recipe: Recipe, run: RunDir, state: dict, *, resume, overwrite, verbose, log) -> RunDir:
    started = time.time()
    done = state["epochs_done"]
    keras.utils.set_random_seed(recipe.seed + done)
    data = _load_data(recipe, run, resume, progress=bool(verbose))
    if recipe.teacher and distributed.replicas() > 1:
        raise UserError("teacher (distillation) runs in one process for now; drop --devices")
    n_classes = len(data.classes)
    model = build_classifier(recipe.model, n_classes, "none" if done else recipe.weights, **classifier_options(recipe))
    # A teacher that does not fit the data fails here, before the run folder is claimed.
    teachers = distill.load_teachers(recipe.teacher, data.classes) if recipe.teacher else None
    _claim_run(run, recipe, data.classes, resume, overwrite)
    skipped = _skipped_so_far(run, done)
    loader_args = dict(image_size=recipe.image_size, batch_size=recipe.batch_size, workers=recipe.workers,
                       seed=recipe.seed + done, skipped=skipped, cache=recipe.cache, progress=bool(verbose))
    loaders = _loaders(recipe, data.index, done, loader_args)
    if teachers:
        loaders = (distill.prepare(recipe, run, loaders[0], teachers, done, log, bool(verbose)), loaders[1])
    n = distributed.replicas()
    if done:
        model.load_weights(run.epoch_weights(done))
        log(f"resuming {run.path} after epoch {done} of {sum(recipe.epochs)}")
    elif distributed.is_main():  # the other ranks get the head from rank 0 with broadcast_variables: one rank fits it
        # Batches of the global batch size: the augmented views are drawn per batch, so they (and the head)
        # are then those of one device with that batch, whatever --devices.
        _init_head(model, recipe, data.index["train"], dict(loader_args, batch_size=n * recipe.batch_size), n_classes,
                   log)

    distributed.broadcast_variables(model)  # every rank starts from rank 0's weights
    log(_training_line(recipe, run, model, data, skipped, n))
    with training_board(run, recipe, done, len(loaders[0]), log) as board:  # RUN/tensorboard/ (rank 0; recipe)
        _run_phases(model, recipe, run, loaders, skipped, done, n_classes, verbose, log, board)
    if distributed.is_main():  # rank 0 alone writes model.keras and summary.json
        _write_summary(recipe, run, data, skipped, started, log)
    distributed.barrier()
    return run


def _skipped_so_far(run: RunDir, done: int) -> SkippedFiles:
    """A resumed run starts with the files its earlier sessions could not decode (skipped.json)."""
    skipped = SkippedFiles()
    if done and run.skipped_json.exists():
        for entry in json.loads(run.skipped_json.read_text()):
            skipped.add(entry["path"], entry["reason"])
    return skipped


def _training_line(recipe: Recipe, run: RunDir, model, data: _Data, skipped: SkippedFiles, n: int) -> str:
    """The "training ..." line, counting the train images that train: those found unreadable so far (by the
    head's features, the array cache or an earlier session) are counted out, and said."""
    train_paths = set(data.index["train"].paths)
    bad = sum(path in train_paths for path in list(skipped.files))
    return (f"training {recipe.model} ({model.count_params():,} parameters, {resolve_precision(recipe.precision)}) "
            f"on {len(train_paths) - bad} images of {len(data.classes)} species"
            f"{f' ({bad} unreadable skipped)' if bad else ''}; valid {len(data.index['valid'])}; "
            f"{f'{n} devices, global batch {n * recipe.batch_size}; ' if n > 1 else ''}run dir {run.path}")


def _write_summary(recipe: Recipe, run: RunDir, data: _Data, skipped, started: float, log) -> None:
    """model.keras (the best epoch's weights) and summary.json, with the closing log lines."""
    state = run.read_state()
    # A fresh, uncompiled copy: model.keras then holds the best weights without optimizer state.
    with training_precision("float32"):  # model.keras computes in float32 whatever the training precision
        final = build_classifier(recipe.model, len(data.classes), "none", **classifier_options(recipe))
    final.load_weights(run.best_weights)
    atomic_save(run.model_keras, final.save)
    left_out = data.left_out
    summary = {
        "model": recipe.model, "epochs": sum(recipe.epochs), "precision": resolve_precision(recipe.precision),
        "best_epoch": state["best_epoch"],
        "best_val_top1": state["best_val_top1"],
        "best_val_top5": next(r["val_top5"] for r in run.read_metrics() if r["epoch"] == state["best_epoch"]),
        "wall_seconds_this_session": round(time.time() - started, 1),
        "train_images": len(data.index["train"]), "valid_images": len(data.index["valid"]),
        "excluded_files": len(data.excluded),
        "exclude_file": str(Path(recipe.exclude).resolve()) if recipe.exclude else None,
        **left_out,  # excluded_by_split (train/valid files actually left out), excluded_by_reason
        "skipped_files": skipped.as_list(),
    }
    atomic_write_json(run.summary_json, summary)
    if data.excluded:
        log(f"left out {left_out['excluded_by_split']['train']} train and {left_out['excluded_by_split']['valid']} "
            f"valid images listed in {recipe.exclude} ({left_out['excluded_by_reason']})")
    if skipped.files:
        log(f"skipped {len(skipped.files)} unreadable files (listed in {run.skipped_json})")
    log(f"best epoch {state['best_epoch']}: valid top-1 {state['best_val_top1']:.4f}; model saved to {run.model_keras}")
