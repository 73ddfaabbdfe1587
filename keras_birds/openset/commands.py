"""The `keras-birds add-species` and `calibrate-unknown` commands: parse arguments, call the workflow.

Defined beside their workflows and added to the main group by keras_birds/cli.py
(add_openset_commands), which hands over what every command runs first (TensorFlow imported quietly).
"""
from __future__ import annotations

import click

from keras_birds.errors import UserError

_BEFORE = [lambda: None]  # set by add_openset_commands: runs before each command's workflow


@click.command("add-species")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--data", "new_root", required=True, type=click.Path(file_okay=False),
              help="The new species: NEW_ROOT/train/<SPECIES>/*.jpg (a few photos each); valid/ and test/ optional.")
@click.option("--out", type=click.Path(file_okay=False), help="The new run directory [default: RUN_DIR_plus<N>].")
@click.option("--keep-old-rows", is_flag=True, help="Keep the old species' head rows bit for bit (no refit of them).")
@click.option("--method", default="auto", show_default=True, type=click.Choice(["auto", "imprint", "probe", "probe_all"]),
              help="New head rows: imprinted class means, a probe with the old rows frozen, or all rows refitted; "
                   "auto: the best on the valid images of old and new species.")
@click.option("--views", type=int, help="Augmented passes over the new photos (each also mirrored) for the new rows "
                                       "[default: the recipe's probe_views]; each costs a pass over them.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("--old-images-per-species", "old_per_species", type=int, default=20, show_default=True,
              help="Train images of each old species the probes see, a seeded sample (0: all); they teach the new "
                   "rows where not to fire, and the cap keeps the time and memory flat however big the old data.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def add_species(run_dir, new_root, out, keep_old_rows, method, views, batch_size, old_per_species, quiet):
    """Write a new run whose model knows RUN_DIR's species plus those of --data, without retraining.

    The backbone is frozen; the head gets one row per new species from its few photos, and the old
    rows stay as they are (or are refitted with the new ones, if that measures better on valid). The
    old run is not touched. The new run's data is NEW_RUN/data, links to the old run's data and to
    --data, so eval, export (int8 calibrated on old and new species), compare, predict and
    calibrate-unknown work on it as on any run.

    \b
      keras-birds add-species runs/effnet_lite0_fewshot --data photos/new_species --out runs/plus_new
    """
    _BEFORE[0]()
    from keras_birds.openset.add_species import add_species as run_add_species

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    result = run_add_species(run_dir, new_root, out, keep_old_rows=keep_old_rows, method=method, views=views,
                             batch_size=batch_size, old_per_species=old_per_species,
                             log=lambda msg: click.echo(msg, err=True), progress=not quiet)
    r = result.report
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for name, f in r["candidates"].items():
        figures = (f"valid top-1 {pct(f['valid_top1'])} (old species {pct(f['valid_top1_old'])}, new "
                   f"{pct(f['valid_top1_new'])})" if f["valid_images"] else "no valid images")
        click.echo(f"  {name:10s} {figures}{'   <- chosen' if name == r['method'] else ''}")
    click.echo(f"wrote {result.out_dir}: {r['classes']} species ({len(r['added'])} added, method {r['method']}, "
               f"old rows {'kept' if r['keep_old_rows'] else 'refitted'}) in {r['seconds']:.1f} s")


@click.command("calibrate-unknown")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--unknown", required=True, type=click.Path(file_okay=False),
              help="Images of species the model does not know: DIR/<SPECIES>/*.jpg, or Kaggle layout (then all "
                   "splits but test are used).")
@click.option("--score", "score_name", default="auto", show_default=True,
              type=click.Choice(["auto", "max_probability", "margin", "neg_entropy"]),
              help="The score of the output probabilities; auto: the best valid AUROC.")
@click.option("--accept", type=float, default=0.95, show_default=True, help="Share of known valid images to keep.")
@click.option("--data", help="Where the run's data set is now, if it has moved [default: the recipe's data].")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def calibrate_unknown(run_dir, unknown, score_name, accept, data, batch_size, quiet):
    """Choose RUN_DIR's "unknown" rule and store it in RUN_DIR/unknown.json.

    The score (max probability, margin or entropy of the output probabilities: what an app can compute)
    is the one that best separates the run's valid images from --unknown's; the threshold keeps
    --accept of the valid images. `predict` then applies it by default, and `export` writes it into
    each file's metadata next to the labels. No test image is used.

    \b
      keras-birds calibrate-unknown runs/effnet_lite0_fewshot --unknown photos/other_species
    """
    _BEFORE[0]()
    from keras_birds.openset.calibrate import calibrate_unknown as run_calibrate
    from keras_birds.openset.report import format_figures

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    payload = run_calibrate(run_dir, unknown, score_name=score_name, accept=accept, data=data, batch_size=batch_size,
                            log=lambda msg: click.echo(msg, err=True), progress=not quiet)
    click.echo(format_figures(payload["candidates"]))
    click.echo(f"stored in {run_dir}/unknown.json: {payload['rule']} "
               f"(score chosen by {payload['chosen_on']['by']}; keeps {100 * accept:.0f}% of valid images)")



def add_openset_commands(group: click.Group, before=None):
    """Add the commands to `group`; `before()` runs first in each (the CLI's quiet TensorFlow import)."""
    if before is not None:
        _BEFORE[0] = before
    for command in (add_species, calibrate_unknown):
        group.add_command(command)
