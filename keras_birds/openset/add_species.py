"""add_species(run, new_root) -> a new run directory whose model knows the old species and the new ones.

No training: the backbone is frozen and copied, the head grows by one row per new species
(openset.new_rows: imprinted, or fitted by a probe with the old rows frozen, or every row refitted),
the method with the best top-1 on the valid images of old and new species winning. The old run is
only read. Training images of the old species are used when the old run's data is still where its
recipe.json says; without them the new rows are imprinted.

NEW_RUN holds what a trained run holds (recipe.json, classes.txt, model.keras, summary.json,
state.json) plus data/ (links to the old and new species folders: openset.combined_data) and
added_species.json (what was measured and chosen). classes.txt is sorted, as every run's is: the old
rows keep their weights bit for bit, under the same names, at positions the new names may shift.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_birds import __version__
from keras_birds.console import log as _log
from keras_birds.data.augment import build_augmenter
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import IMAGE_SUFFIXES, SPLITS, folder_source
from keras_birds.errors import UserError
from keras_birds.inference.context import RunContext
from keras_birds.inference.runners import open_runner
from keras_birds.openset import combined_data, new_rows
from keras_birds.openset.outputs import feature_views, head_weights
from keras_birds.openset.rule import UNKNOWN_JSON
from keras_birds.run_dir import RunDir, atomic_save, atomic_write_json
from keras_birds.training.head_init import extract_features

# Ties on valid go to the first: untouched old rows before refitted ones.
PREFERENCE = ("probe", "imprint", "probe_all")
OLD_PER_SPECIES = 20  # old train images per old species that the probes see (birds-dev has 3, BIRDS-525 ~161)


@dataclass
class AddedSpecies:
    out_dir: Path
    report: dict


def new_species(root, known: list) -> dict:
    """{split: SplitIndex} of NEW_ROOT: train/<SPECIES>/ required, valid/ and test/ optional."""
    root = Path(root)
    for folder in sorted((root / "train").iterdir()) if (root / "train").is_dir() else ():
        if folder.is_dir() and not folder.name.startswith(".") and not any(
                f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") for f in folder.iterdir()):
            raise UserError(f"{folder} holds no images: add photos of '{folder.name}' or remove the folder")
    train = folder_source(root, splits=("train",))["train"]
    by_case = {k.casefold(): k for k in known}
    for name in train.class_names:
        if name.casefold() in by_case:
            raise UserError(f"species '{name}' ({root / 'train' / name}) is already one of the run's classes "
                            f"('{by_case[name.casefold()]}'): leave it out of {root}")
    out = {"train": train}
    for split in SPLITS[1:]:
        if (root / split).is_dir() and any((root / split).iterdir()):
            index = folder_source(root, splits=(split,))[split]
            extra = sorted(set(index.class_names) - set(train.class_names))
            if extra:
                raise UserError(f"{root / split} has species with no train folder: {', '.join(extra[:5])}; "
                                f"put their photos under {root / 'train'} too, or remove them")
            position = {n: i for i, n in enumerate(train.class_names)}
            out[split] = dataclasses.replace(index, class_names=train.class_names,
                                             labels=np.asarray([position[index.class_names[c]] for c in index.labels],
                                                               dtype=np.int64))
    return out


def _model(run: RunContext):
    """The run's Keras model; one that does not take the recipe's input size is refused."""
    runner = open_runner(run)
    size = run.recipe().image_size
    if runner.image_size != size:
        raise UserError(f"{runner.path} takes {runner.image_size}x{runner.image_size} images but {run.recipe_json} "
                        f"says image_size {size}: add-species needs a run whose model takes its recipe's input size")
    return runner.model


def _old_data(run: RunContext, log) -> dict:
    """{split: DataSplit} of the old run's own data (its exclude list applied), {} when it is gone."""
    out = {}
    try:
        for split in SPLITS:
            out[split] = run.split_index(split)
            if out[split].index.class_names != run.class_names():
                raise UserError(f"{out[split].data} [{split}] no longer has the classes of {run.classes_txt}")
    except UserError as e:
        log(f"note: the old species' images are not used ({e}); the new rows are imprinted")
        return {}
    return out


def _check_out(out_dir: Path, run: RunContext):
    if out_dir.resolve() == run.path.resolve():
        raise UserError(f"--out {out_dir} is the old run itself: add-species never changes the old run")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"--out {out_dir} already exists and is not empty: choose another --out")


def _train_features(model, recipe, old, new, views: int, batch_size: int, progress: bool, old_per_species: int):
    """(new species' train features, their labels 0..n_new-1, and (features, labels with the old classes first,
    per-row weights) of old + new train images, or None without old images).

    The new photos are seen plain, mirrored and in `views` augmented passes (each mirrored too); the old
    images once, plain, at most `old_per_species` of each old species (0: all): they only teach the new rows
    where not to fire, and every forward pass costs. The cap keeps add-species' time and memory flat as the
    old run's data grows (BIRDS-525's 84,635 train images: 32 min of forward passes and a 5 GB probe, uncapped)."""
    size = recipe.image_size
    loaders = [BatchLoader(new["train"], size, batch_size, workers=1)] + [
        BatchLoader(new["train"], size, batch_size, workers=1,
                    augmenter=build_augmenter(recipe.augment, recipe.seed + 1000 + k)) for k in range(views)]
    f_new, y_new = extract_features(model, loaders, flip_too=True, progress=progress)
    if not old:
        return f_new, y_new, None
    n_old = len(old["train"].index.class_names)
    sample = old["train"].index.at_most_per_class(old_per_species, recipe.seed)
    f_old, y_old = extract_features(model, [BatchLoader(sample, size, batch_size, workers=1)], progress=progress)
    # Every train image weighs the same, whatever its number of views.
    weights = np.concatenate([np.ones(len(f_old)), np.full(len(f_new), 1.0 / (2 * len(loaders)))])
    return f_new, y_new, (np.concatenate([f_old, f_new]), np.concatenate([y_old, y_new + n_old]), weights)


def _valid_views(model, recipe, old, new, n_old: int, batch_size: int, progress: bool):
    """([valid features], labels in old-then-new order, is-old mask); None without valid images. Plain images
    only, no flip TTA: the methods are compared, not the final figures, and a pass costs."""
    parts, size = [], recipe.image_size
    if old:
        parts.append((feature_views(model, old["valid"].index, size, False, batch_size,
                                    "features: old species' valid images" if progress else ""), 0))
    if "valid" in new:
        parts.append((feature_views(model, new["valid"], size, False, batch_size,
                                    "features: new species' valid images" if progress else ""), n_old))
    parts = [(p, offset) for p, offset in parts if len(p[1])]
    if not parts:
        return None
    views = [np.concatenate([p[0][v] for p, _ in parts]) for v in range(len(parts[0][0][0]))]
    labels = np.concatenate([p[1] + offset for p, offset in parts])
    return views, labels, labels < n_old


def _candidates(method: str, keep_old_rows: bool, kernel, bias, f_new, y_new, n_new: int, combined) -> dict:
    """{method: (kernel, bias)} of the methods to measure."""
    if method == "auto":
        wanted = [m for m in new_rows.METHODS if not keep_old_rows or m in new_rows.KEEPS_OLD_ROWS]
    else:
        wanted = [method]
    if combined is None and any(m != "imprint" for m in wanted):
        if method != "auto":
            raise UserError(f"--method {method} fits the head on the old species' train images too, and none were found "
                            f"(the old run's data has moved?): use --method imprint")
        wanted = ["imprint"]
    heads = {}
    if "imprint" in wanted:
        reference = None if combined is None else np.average(combined[0], axis=0, weights=combined[2])
        heads["imprint"] = new_rows.imprint(f_new, y_new, n_new, kernel, bias, reference)
    if "probe" in wanted or "probe_all" in wanted:
        f, y, weights = combined
        heads["probe"] = new_rows.probe(f, y, weights, kernel, bias, n_new)
        if "probe_all" in wanted:
            heads["probe_all"] = new_rows.probe(f, y, weights, kernel, bias, n_new, train_old=True, start=heads["probe"])
        if "probe" not in wanted:
            del heads["probe"]
    return heads


def _measure(heads: dict, valid) -> dict:
    """{method: {valid_top1, valid_top1_old, valid_top1_new, valid_images}} (None figures without valid images)."""
    figures = {}
    for name, (kernel, bias) in heads.items():
        if valid is None:
            figures[name] = {"valid_top1": None, "valid_top1_old": None, "valid_top1_new": None, "valid_images": 0}
            continue
        views, labels, is_old = valid
        pick = lambda mask: new_rows.top1(kernel, bias, [v[mask] for v in views], labels[mask])  # noqa: E731
        figures[name] = {"valid_top1": pick(np.ones(len(labels), bool)), "valid_top1_old": pick(is_old),
                         "valid_top1_new": pick(~is_old), "valid_images": int(len(labels))}
    return {k: {m: (None if v != v else v) for m, v in f.items()} for k, f in figures.items()}  # NaN -> None


def _choose(figures: dict) -> str:
    order = [m for m in PREFERENCE if m in figures]
    scored = [m for m in order if figures[m]["valid_top1"] is not None]
    return max(scored, key=lambda m: (figures[m]["valid_top1"], -order.index(m))) if scored else order[0]


def _grown_model(model, recipe, kernel, bias, order):
    """A fresh classifier with `model`'s weights everywhere but the head, which gets (kernel, bias)[order]."""
    from keras_birds.models.build import HEAD, build_classifier, classifier_options

    grown = build_classifier(recipe.model, len(order), "none", **classifier_options(recipe))
    for layer in model.layers:
        if layer.name != HEAD and layer.weights:
            grown.get_layer(layer.name).set_weights(layer.get_weights())
    head = grown.get_layer(HEAD)
    head.kernel.assign(kernel[:, order].astype("float32"))
    head.bias.assign(bias[order].astype("float32"))
    return grown


def default_out(run_path, n_new: int) -> Path:
    path = Path(run_path)
    return path.parent / f"{path.name}_plus{n_new}"


def add_species(run_path, new_root, out=None, *, keep_old_rows: bool = False, method: str = "auto",
                views: int | None = None, batch_size: int = 32, old_per_species: int = OLD_PER_SPECIES, log=_log,
                progress: bool = True) -> AddedSpecies:
    """Write a run that knows the old run's species and NEW_ROOT's; see the module docstring. progress: bars on
    stderr over the images each forward pass reads."""
    started = time.time()
    if method not in ("auto",) + new_rows.METHODS:
        raise UserError(f"--method must be auto or one of {', '.join(new_rows.METHODS)}, got {method!r}")
    if keep_old_rows and method not in ("auto",) + new_rows.KEEPS_OLD_ROWS:
        raise UserError(f"--keep-old-rows keeps the old rows as they are; --method {method} refits them")
    if views is not None and views < 0:
        raise UserError(f"--views must be >= 0 (augmented passes over the new photos), got {views}")
    if old_per_species < 0:
        raise UserError(f"--old-images-per-species must be >= 0 (0: all), got {old_per_species}")
    run = RunContext.existing(run_path, "pass the --out folder of a `keras-birds train` run")
    recipe, old_names = run.recipe(), run.class_names()
    new = new_species(new_root, old_names)  # the cheap checks first: the model takes seconds to load
    new_names = new["train"].class_names
    out_dir = Path(out) if out else default_out(run.path, len(new_names))
    _check_out(out_dir, run)
    model = _model(run)
    old = _old_data(run, log)
    keras.utils.set_random_seed(recipe.seed)  # the augmented views and the probes' start: reproducible
    log(f"adding {len(new_names)} species ({len(new['train'])} photos) to the {len(old_names)} of {run.path}")
    views = recipe.probe_views if views is None else views  # as the recipe fitted its own head
    f_new, y_new, combined = _train_features(model, recipe, old, new, views, batch_size, progress, old_per_species)
    kernel, bias = head_weights(model)
    heads = _candidates(method, keep_old_rows, kernel, bias, f_new, y_new, len(new_names), combined)
    figures = _measure(heads, _valid_views(model, recipe, old, new, len(old_names), batch_size, progress))
    chosen = _choose(figures)
    classes = sorted(old_names + new_names)
    position = {n: i for i, n in enumerate(old_names + new_names)}
    grown = _grown_model(model, recipe, *heads[chosen], np.asarray([position[n] for n in classes]))
    old_seen = int((combined[1] < len(old_names)).sum()) if combined else 0  # old train images the probes saw
    report = {"from_run": str(run.path.resolve()), "new_data": str(Path(new_root).resolve()),
              "added": new_names, "old_classes": len(old_names), "classes": len(classes), "method": chosen,
              "keep_old_rows": keep_old_rows or chosen in new_rows.KEEPS_OLD_ROWS, "candidates": figures,
              "old_images_used": bool(old), "old_train_images": old_seen, "new_photo_views": 2 * (1 + views), "chosen_on": "valid top-1, old and new species" if len(figures) > 1 else None,
              "keras_birds_version": __version__}
    _write_run(out_dir, run, recipe, old, new, classes, grown, report, started)
    if (run.path / UNKNOWN_JSON).is_file():
        log(f"note: {run.path / UNKNOWN_JSON} is not carried over (the species list changed): run "
            f"`keras-birds calibrate-unknown {out_dir} --unknown DIR` for the new run")
    return AddedSpecies(out_dir, report)


def _write_run(out_dir: Path, run: RunContext, recipe, old: dict, new: dict, classes: list, model, report: dict,
               started: float):
    """Everything into a hidden sibling folder, renamed to `out_dir` at the end: a failure leaves no half run."""
    final = Path(os.path.abspath(out_dir))
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # The old species' folders as listed before the exclude list (a folder it empties is still linked).
        folders = {s: {**(combined_data.species_folders(run.split_index(s, None, "none").index) if old else {}),
                       **(combined_data.species_folders(new[s]) if s in new else {})} for s in SPLITS}
        exclude = final / "exclude.txt"
        carried = bool(old) and combined_data.carry_exclude_list(recipe.exclude, run.recipe_json, folders,
                                                                 final / "data", tmp / "exclude.txt")
        name = f"{recipe.name or recipe.model}+{len(report['added'])}species"
        grown_recipe = dataclasses.replace(recipe, data=str(final / "data"), exclude=str(exclude) if carried else "",
                                           name=name, as_given={})
        target = RunDir(tmp)
        target.prepare(grown_recipe.to_dict(), overwrite=False)
        combined_data.write_tree(tmp / "data", classes, folders)
        target.write_classes(classes)
        atomic_save(target.model_keras, model.save)
        chosen = report["candidates"][report["method"]]
        report["seconds"] = round(time.time() - started, 1)
        atomic_write_json(target.summary_json, {
            "model": recipe.model, "added_species": len(report["added"]), "from_run": report["from_run"],
            "method": report["method"], "best_val_top1": chosen["valid_top1"], "valid_images": chosen["valid_images"],
            "wall_seconds_this_session": report["seconds"]})
        # A finished run for `train --resume`: there is nothing left to train.
        atomic_write_json(target.state_json, {"epochs_done": sum(recipe.epochs), "best_epoch": None,
                                              "best_val_top1": chosen["valid_top1"]})
        atomic_write_json(tmp / "added_species.json", report)
        if final.exists():
            final.rmdir()  # empty (checked): os.replace needs the name free
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
