"""Known vs unknown species: the open-set figures of eval --unknown, and calibrate-unknown.

    open_set_figures(opened, known, unknown, unknown_dir)       AUROC and rejection rate of every score
    calibrate_unknown(run, unknown_dir)                         pick score + threshold on valid, store them

Figures: AUROC of known vs unknown images, and the share of unknown images rejected at the threshold
that accepts 95% of the known ones. Scores from the output probabilities (scores.DEPLOYABLE) can be
the stored rule; the others (logits, features) are reported for a Keras model only.
calibrate-unknown never sees a test image: the score is picked on the run's valid split and the
unknown DIR's non-test images, the threshold on the valid split alone.
"""
from __future__ import annotations

import os
import time

from keras_birds import __version__
from keras_birds.console import log as _log
from keras_birds.errors import UserError
from keras_birds.inference.context import RunContext
from keras_birds.inference.model import open_model
from keras_birds.openset import rule as rules
from keras_birds.openset.outputs import model_outputs, train_bank
from keras_birds.openset.scores import DEFAULT_ACCEPT, DEPLOYABLE, compare_scores, rates, score
from keras_birds.openset.unknown_images import CALIBRATION, unknown_index

# Train images of each species the class means and the nearest-neighbour bank are taken over, a seeded sample.
MEAN_IMAGES_PER_SPECIES = 50


def _outputs_with_means(opened, index, batch_size: int, bank, progress: str = ""):
    out = model_outputs(opened, index, batch_size, progress)
    if "features" in out and bank is not None:
        out.update(bank)
    return out


def _train_means(opened, progress: str = ""):
    """{"class_means", "train_features"} of the run's train images (the cosine and nearest-neighbour scores),
    for a Keras model of a run; else None."""
    if opened.runner.kind != "keras" or opened.run is None:
        return None
    try:
        train = opened.run.split_index("train").index
    except UserError:
        return None  # the run's data has moved: those scores are left out
    # A sample: BIRDS-525's 84,635 train images would cost ~30 min of forward passes (2-core CPU).
    train = train.at_most_per_class(MEAN_IMAGES_PER_SPECIES, opened.run.recipe().seed)
    return train_bank(opened.runner.model, train, opened.runner.image_size, progress)


def _check_accept(accept: float):
    if not 0.5 <= accept < 1.0:
        raise UserError(f"--accept is the share of known images to keep, in [0.5, 1), got {accept}")


def open_set_figures(opened, known_index, unknown, unknown_dir, batch_size: int = 32,
                     accept: float = DEFAULT_ACCEPT) -> dict:
    """eval --unknown: every score's figures on known_index vs `unknown` (unknown_images.unknown_index), the
    threshold set on these known images (the usual definition), and the stored rule's own known-accepted /
    unknown-rejected rates when there is one."""
    _check_accept(accept)
    means = _train_means(opened)
    known_out = _outputs_with_means(opened, known_index, batch_size, means)
    unknown_out = _outputs_with_means(opened, unknown, batch_size, means)
    figures = compare_scores(known_out, unknown_out, accept)
    stored = rules.stored_rule(opened.runner)
    at_stored = None
    if stored is not None:
        k, u = score(stored.score, known_out), score(stored.score, unknown_out)
        at_stored = {"score": stored.score, "threshold": stored.threshold, "from": stored.source,
                     **rates(k, u, stored.threshold)}
    return {"unknown_images": f"{unknown_dir} [{unknown.split}]", "n_known": int(len(known_out["probs"])),
            "n_unknown": int(len(unknown_out["probs"])), "accept": accept, "scores": figures,
            "best_auroc": max(figures, key=lambda n: figures[n]["auroc"]), "stored_rule": at_stored}


def calibrate_unknown(run_path, unknown_dir, *, score_name: str = "auto", accept: float = DEFAULT_ACCEPT,
                      data=None, exclude=None, batch_size: int = 32, log=_log, progress: bool = True) -> dict:
    """Pick the score (best valid AUROC among scores.DEPLOYABLE, or `score_name`) and the threshold that
    accepts `accept` of the valid known images; write RUN/unknown.json and return it. The --unknown folder
    is stored absolute (what was typed in as_given, as a run stores its data paths)."""
    _check_accept(accept)
    if score_name != "auto" and score_name not in DEPLOYABLE:
        raise UserError(f"--score must be auto or one an app computes from the probabilities: "
                        f"{', '.join(DEPLOYABLE)}; got {score_name!r}")
    started = time.time()
    run = RunContext.existing(run_path, "pass the --out folder of `keras-birds train` or `add-species`")
    opened = open_model(run)
    valid = run.split_index("valid", data, exclude)
    unknown = unknown_index(unknown_dir, CALIBRATION, run.class_names())
    log(f"scoring {len(valid.index)} valid images of {run.path.name} and {len(unknown)} unknown images of {unknown_dir}")
    bar = lambda what: f"scoring {what}" if progress else ""  # noqa: E731  each progress bar's label ("": none)
    means = _train_means(opened, bar("train images (class means)"))
    figures = compare_scores(_outputs_with_means(opened, valid.index, batch_size, means, bar("valid images")),
                             _outputs_with_means(opened, unknown, batch_size, means, bar("unknown images")), accept)
    folder = os.path.abspath(unknown_dir)
    chosen = max(DEPLOYABLE, key=lambda n: figures[n]["auroc"]) if score_name == "auto" else score_name
    payload = rules.rule_payload(
        chosen, figures[chosen]["threshold"], accept_known=accept, unknown=folder,
        **({"as_given": {"unknown": str(unknown_dir)}} if str(unknown_dir) != folder else {}),
        chosen_on={"known": f"{valid.data} [valid], {len(valid.index)} images", "unknown": f"{folder} "
                   f"(all but its test split), {len(unknown)} images", "by": "valid AUROC" if score_name == "auto"
                   else "--score"},
        candidates=figures, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), keras_birds_version=__version__,
        seconds=round(time.time() - started, 1))
    rules.write_run_rule(run.path, payload)
    return payload
