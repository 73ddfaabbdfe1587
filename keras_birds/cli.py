"""The `keras-birds` command: parses arguments and calls a workflow; nothing else lives here."""
from __future__ import annotations

import sys

import click

from keras_birds import __version__
from keras_birds.errors import UserError
from keras_birds.openset.commands import add_openset_commands
from keras_birds.export.web.command import serve_web as serve_web_command
from keras_birds.catalog_commands import models, recipes
from keras_birds.reporting.command import report as report_command
from keras_birds.quiet_tensorflow import import_tensorflow_quietly as _import_tensorflow_quietly
from keras_birds.serving.command import add_serve_command


class _Group(click.Group):
    """Turns a UserError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-birds")
def main():
    """keras-birds: turn ImageNet-pretrained CNNs into small, accurate bird-species classifiers.

    \b
    Typical session:
      keras-birds models                                   list the architectures
      keras-birds recipes                                  list the shipped recipes
      keras-birds train effnet_lite0_fewshot --data ../shared/data/birds-dev
      keras-birds train --resume runs/effnet_lite0_fewshot           continue a killed run
      keras-birds eval runs/effnet_lite0_fewshot --split test        accuracy, size, latency
      keras-birds export runs/effnet_lite0_fewshot --quantize int8   .tflite/.onnx for the app
      keras-birds predict photo.jpg --model runs/effnet_lite0_fewshot/export/model_int8.tflite
      keras-birds train effnet_lite2_fewshot --data ../shared/data/birds-dev
      keras-birds compare runs/effnet_lite0_fewshot runs/effnet_lite2_fewshot   the study's table
    effnet_lite0 fine-tunes every layer: the recipe for full data sets.
    """


@main.command()
@click.argument("recipe_file", metavar="RECIPE", required=False)
@click.option("--data", help="Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/, hf:<dataset id>, or "
                             "tfds:<name> / tfds:<path> (a TensorFlow Datasets set, or a local TFDS or image folder). "
                             "Relative paths (here and in the recipe) are from the working directory; the run stores "
                             "them absolute.")
@click.option("--weights", help="imagenet | none (random init) | a local KerasHub preset dir or weights file.")
@click.option("--epochs", help="Epochs of the two phases, e.g. 2,10 (head-only warm-up, all layers).")
@click.option("--lr", help="One-cycle peak LR of the two phases, e.g. 1e-2,1e-3.")
@click.option("--batch-size", type=int, help="Images per training step [default: the recipe's batch_size].")
@click.option("--image-size", type=int, help="Side in pixels the images are resized to, >= 32 [default: the recipe's image_size].")
@click.option("--exclude", type=click.Path(dir_okay=False), help="File of image paths to leave out (e.g. from `keras-birds clean`).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any recipe field; repeatable (augment.rotation=10).")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory [default: runs/<recipe name>].")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue a killed run from its last finished epoch.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars (training batches, the head's features, teacher "
                                                    "outputs, data caching); log lines stay.")
@click.option("--devices", type=int, default=1, show_default=True,
              help="Train data-parallel on N devices: torch, N torchrun processes (one GPU each, else CPU, gloo); "
                   "jax, keras.distribution.DataParallel in one process (on a CPU-only machine the host is split "
                   "into N XLA devices); not on tensorflow. --batch-size is per device, so the global batch is N x "
                   "batch size; the recipe's LR is kept for that global batch (not scaled: pass --lr to change "
                   "it). Resume with the same --devices (steps per epoch depend on it).")
def train(recipe_file, data, weights, epochs, lr, batch_size, image_size, exclude, sets, out, resume_dir, overwrite, quiet,
          devices):
    """Fine-tune a classifier from RECIPE and write a run directory.

    RECIPE is a shipped recipe's name (`keras-birds recipes` lists them, e.g. effnet_lite0_fewshot) or a
    recipe file (e.g. one printed by `keras-birds recipes NAME` and edited); a file in this folder wins over
    a shipped recipe of the same name, and train says so.

    Phase 1 trains the head with the backbone frozen, phase 2 all layers, each with a one-cycle LR
    and AdamW. Every epoch's weights are kept and the best validation epoch is picked. The run
    directory holds recipe.json, classes.txt, epochs/, best.weights.h5, metrics.csv/json and
    model.keras. A killed run continues with --resume RUN_DIR.
    """
    from keras_birds.recipe import apply_overrides, load_recipe, parse_sets
    from keras_birds.training import launch

    if devices < 1:
        raise UserError(f"--devices must be a whole number >= 1, got {devices}")
    launch.die_with_agent()  # a torchrun worker of `--devices N`: dies with the agent that started it
    torchrun = devices > 1 and launch.prepare_devices(devices)  # jax: N devices, set before Keras starts
    recipe = None
    if resume_dir:
        if recipe_file or any(v is not None for v in (data, weights, epochs, lr, batch_size, image_size, exclude)) or sets:
            raise UserError("--resume continues a run with its own saved recipe: pass no recipe file or overrides")
    elif not recipe_file:
        raise UserError("missing RECIPE (a shipped recipe's name, e.g. effnet_lite0, or a recipe file), "
                        "or --resume RUN_DIR")
    else:
        overrides = {"data": data, "weights": weights, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                     "image_size": image_size, "exclude": exclude, **parse_sets(sets)}
        recipe = apply_overrides(load_recipe(recipe_file), overrides)
    run_dir = resume_dir or out or f"runs/{recipe.name}"
    if torchrun:  # this process holds the run's lock and waits for the torchrun job; does not return
        launch.run_torchrun_job(devices, run_dir, resume=bool(resume_dir), overwrite=overwrite)
    _import_tensorflow_quietly()
    from keras_birds.training.train import train as run_training

    if recipe is not None:
        from keras_birds.models.build import normalize_weights

        normalize_weights(recipe.weights)  # a mistyped weights path fails before any run directory exists
    with launch.one_line_on_stop(run_dir, devices):  # SIGTERM, Ctrl-C: one line, not a traceback
        run_training(recipe, run_dir, resume=bool(resume_dir), overwrite=overwrite, verbose=0 if quiet else 1,
                     devices=devices)


@main.command("eval")
@click.argument("model", type=click.Path())
@click.option("--split", default="test", show_default=True, help="train | valid | test.")
@click.option("--data", help="Images to evaluate on [default: the run's own data]; required for a bare .tflite/.onnx/.keras file.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("--exclude", help="File of image paths to leave out [default: the run's own exclude list]; 'none' or '' for none.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [default: MODEL_DIR/eval/<model file>-<split>/].")
@click.option("--latency-runs", type=int, default=50, show_default=True, help="Timed batch-1 runs after warm-up; 0 skips timing.")
@click.option("--tta-flip/--no-tta-flip", default=None, help="Average each image with its mirror image [default: the run recipe's tta_flip for the run's own model; off for .tflite/.onnx files, judged in one pass as an app runs them].")
@click.option("--corruptions", metavar="all|NAME,...", help="Also score deterministic corrupted copies of the split (top-1 per corruption and severity, mean, relative drop, heat map, samples): all, or comma-separated fog, rain, low_light, overexposure, colour_cast, defocus_blur, motion_blur, gaussian_noise, jpeg (groups: blur, weather, light, noise).")
@click.option("--severity", metavar="1-5|all", help="Corruption severities: 1 to 5, a comma-separated list, or all [default: all].")
@click.option("--unknown", type=click.Path(file_okay=False), help="Images of species the model does not know (DIR/<SPECIES>/ or DIR/<split>/<SPECIES>/): adds known-vs-unknown AUROC and unknown rejection at 95% known kept.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json's object, every figure, on stdout (all else on stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_(model, split, data, batch_size, exclude, out, latency_runs, tta_flip, corruptions, severity, unknown, as_json, quiet):
    """Accuracy, size and speed of MODEL: a run directory, a .keras, .tflite or .onnx file.

    Top-1/top-5, macro per-class accuracy, most-confused species, calibration (ECE), parameters,
    size on disk, batch-1 latency (median, p90) and batched throughput on this machine. Writes
    report.json, report.md and PNG plots; prints a summary table.

    \b
      keras-birds eval runs/effnet_lite0 --split test
      keras-birds eval export/model_int8.tflite --data ../shared/data/birds-dev --json
      keras-birds eval runs/effnet_lite0 --split valid --corruptions all --severity 3
    """
    import contextlib
    import json

    _import_tensorflow_quietly()
    from keras_birds.console import stdout_to_stderr
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.evaluation.report import report_json, terminal_table

    with stdout_to_stderr() if as_json else contextlib.nullcontext():
        report = evaluate(model, split=split, data=data, batch_size=batch_size, out=out, exclude=exclude,
                          progress=not quiet, latency_runs=latency_runs, tta_flip=tta_flip, corruptions=corruptions,
                          severity=severity, unknown=unknown)
        click.echo(terminal_table(report), err=as_json)
    if as_json:
        click.echo(json.dumps(report_json(report), default=str))


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--tflite", "want_tflite", is_flag=True, help="Write .tflite files (default: both formats).")
@click.option("--onnx", "want_onnx", is_flag=True, help="Write model.onnx (default: both formats).")
@click.option("--quantize", multiple=True, metavar="none|fp16|dynamic|int8",
              help="TFLite variants; repeat or comma-separate, e.g. --quantize none,int8 [default: none; int8 with --web].")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [default: RUN_DIR/export].")
@click.option("--calibration-images", type=int, default=300, show_default=True,
              help="Training images (stratified over species) that calibrate int8.")
@click.option("--data", help="Where the run's data set is now, if it has moved [default: the recipe's data].")
@click.option("--exclude", help="File of image paths to leave out of the gate and the calibration "
                                "[default: the run's own exclude list]; 'none' or '' for none.")
@click.option("--int8-float-convs", type=int, default=None,
              help="int8 keeps this many convolutions, those with the largest quantisation error (LiteRT's "
                   "debugger), in float32; 0: every op int8 [default: the recipe's int8_float_convs, 0 unless set].")
@click.option("--no-verify", is_flag=True, help="Skip the parity gate on the validation split.")
@click.option("--latency-runs", type=int, default=50, show_default=True, help="Timed batch-1 runs per file; 0 skips timing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (int8 calibration).")
@click.option("--web", is_flag=True, help="Also write OUT/web/: a static page that names the birds in photos in the "
                                          "browser, offline once loaded, with the gated .tflite (int8 unless "
                                          "--quantize says otherwise) and LiteRT.js (fetched once from npm, cached).")
@click.option("--serve", is_flag=True, help="With --web: then serve the page on 127.0.0.1 (as `keras-birds serve-web`).")
def export_(run_dir, want_tflite, want_onnx, quantize, out, calibration_images, int8_float_convs, data, exclude,
            no_verify, latency_runs, quiet, web, serve):
    """Export RUN_DIR's model for phones: .tflite (fp32/fp16/dynamic/int8) and .onnx, verified.

    Each file takes a fixed 1xSxSx3 image of raw RGB pixels 0-255 (uint8 for int8), does its own
    preprocessing and outputs class probabilities. Labels travel inside it (TFLite metadata with
    labels.txt as associated file, MediaPipe-ready; ONNX metadata_props) and as labels.txt beside it.

    The gate runs every file on the validation split against the Keras model: a file fails when its
    top-1 drop is above 1 point with 95% confidence (paired bound on the images it lost and gained)
    or above 3 points as observed; a float file also fails if it changes an answer Keras is sure of
    (top-1 margin >= 0.05). A file that
    fails is kept as *.unverified.* and the command exits 1 with the figures. export.json records
    sizes, gate figures and batch-1 latency next to the Keras model's.

    \b
      keras-birds export runs/effnet_lite0 --quantize none,fp16,int8
      keras-birds export runs/effnet_lite0 --tflite --quantize int8 --out app/assets
      keras-birds export runs/effnet_lite0 --web --serve        the model in a web page, on 127.0.0.1
    """
    if serve and not web:
        raise UserError("--serve serves the page --web writes: add --web")
    if web and want_onnx and not want_tflite:
        raise UserError("--web runs a .tflite file in the page: add --tflite (or drop --onnx)")
    if web:  # the page runs on the vendored runtime: fetch it (or fail in one line) before minutes of export
        from keras_birds.export.web.vendor import runtime_files

        runtime_files(log=lambda msg: click.echo(msg, err=True))
    _import_tensorflow_quietly()
    from keras_birds.export.export import export, format_summary

    modes = [q.strip() for item in quantize for q in item.split(",") if q.strip()] or (["int8"] if web else ["none"])
    both = not (want_tflite or want_onnx)
    if quantize and want_onnx and not want_tflite:
        raise UserError("--quantize applies to .tflite files; add --tflite (the .onnx file is always float32)")
    result = export(run_dir, onnx=want_onnx or both, tflite=want_tflite or both, quantize=modes, out=out,
                    calibration_images=calibration_images, verify=not no_verify, data=data, exclude=exclude,
                    latency_runs=latency_runs, log=lambda msg: click.echo(msg, err=True),
                    int8_float_convs=int8_float_convs, progress=not quiet)
    click.echo(format_summary(result))
    if not result.passed:
        click.echo("error: export verification failed; the failing files are kept as *.unverified.*", err=True)
        sys.exit(1)
    if web:
        from keras_birds.export.web.page import build_page

        page = build_page(result.out_dir, log=lambda msg: click.echo(msg, err=True))
        click.echo(page.summary())
        if serve:
            from keras_birds.export.web.serve import serve as serve_page

            serve_page(page.folder, echo=click.echo)


@main.command()
@click.option("--data", required=True, help="Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/ or hf:<dataset id>.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder [default: clean/<data name>].")
@click.option("--exclude-also", metavar="TYPES",
              help="Also list these reported types in exclude.txt, comma-separated: near_duplicates, odd_size, "
                   "odd_aspect_ratio, blurry, dark, light, low_information, grayscale.")
@click.option("--jobs", type=int, help="Parallel decoding workers [default: the usable CPUs].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def clean(data, out, exclude_also, jobs, quiet):
    """Audit every split of a data set and write a review report plus exclude.txt; modifies no data file.

    cleanvision per split (exact/near duplicates, odd size, odd aspect ratio, blurry, dark, light,
    low information, grayscale), plus leakage (one picture in two splits), label conflicts (one
    picture under two species) and unreadable, truncated or non-image files. Writes report.md,
    issues.csv, exclude.txt and a thumbnail sheet per issue type. exclude.txt lists unreadable files,
    both sides of label conflicts, the train side of leakage and extra copies of exact duplicates;
    the rest is reported only, unless --exclude-also names it. Finished splits are cached in
    OUT/.cache, so an interrupted audit run again redoes only the unfinished ones.

    \b
      keras-birds clean --data ../shared/data/birds-dev --out clean/birds-dev
      keras-birds train recipes/effnet_lite0.py --data ../shared/data/birds-dev --exclude clean/birds-dev/exclude.txt
    """
    from keras_birds.cleaning.audit import audit, parse_exclude_also
    from keras_birds.cleaning.report import terminal_summary

    result = audit(data, out, exclude_also=parse_exclude_also(exclude_also), jobs=jobs, progress=not quiet,
                   log=lambda msg: click.echo(msg, err=True))
    click.echo(terminal_summary(result))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--split", default="test", show_default=True, help="train | valid | test: the split every model is evaluated on.")
@click.option("--exported", is_flag=True, help="Also evaluate each run's exported .tflite/.onnx files (RUN_DIR/export/).")
@click.option("--out", type=click.Path(file_okay=False), default="comparison", show_default=True, help="Folder for comparison.md/.csv/.json and pareto.png.")
@click.option("--data", help="Images to evaluate on [default: each run's own data].")
@click.option("--latency-runs", type=int, default=50, show_default=True, help="Timed batch-1 runs per model; 0 skips timing (and the recommendation).")
@click.option("--include-unfinished", is_flag=True, help="Let runs whose training never ended (killed: no model.keras) be recommended too.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def compare(run_dirs, split, exported, out, data, latency_runs, include_unfinished, quiet):
    """The study's table for RUN_DIRS: accuracy, size and speed side by side, and a recommendation.

    Each run is evaluated as `keras-birds eval` does (same images, metrics and timing), one after
    another on this machine. Columns: parameters, float32 weights MB, exported int8 MB, valid top-1
    of the best epoch, top-1/top-5 on --split, batch-1 latency median and throughput with the device
    they ran on. Recommended: the smallest, fastest model within 0.5 point of the best top-1, among
    rows scored on the same images (none when they differ) and, unless --include-unfinished, of runs
    whose training ended. Writes comparison.md, comparison.csv, comparison.json and pareto.png (accuracy vs latency,
    marker area ~ MB).

    \b
      keras-birds compare runs/effnet_lite0 runs/effnet_lite1 runs/effnet_lite2 --split test
      keras-birds compare runs/effnet_lite0 --exported --out comparison/lite0
    """
    _import_tensorflow_quietly()
    from keras_birds.comparison.compare import compare as run_compare

    result = run_compare(list(run_dirs), split=split, exported=exported, out=out, data=data,
                         latency_runs=latency_runs, progress=not quiet, include_unfinished=include_unfinished)
    click.echo(result.files["comparison.md"].read_text(encoding="utf-8"))
    click.echo("wrote " + ", ".join(str(p) for p in result.files.values() if p.exists()))


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", required=True, type=click.Path(), help="A run directory, .keras, .tflite or .onnx file.")
@click.option("--top-k", type=int, default=5, show_default=True, help="How many species to list per image.")
@click.option("--threshold", type=float, default=None, help="Answer 'unknown' when the top probability is below this; 0 always names a species [default: the rule `calibrate-unknown` stored with the model, else 0].")
@click.option("--tta-flip/--no-tta-flip", default=None, help="Average each image with its mirror image [default: the run recipe's tta_flip for the run's own model; off for .tflite/.onnx files, judged in one pass as an app runs them].")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (results and errors) on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def predict(images, model_path, top_k, threshold, tta_flip, batch_size, as_json, quiet):
    """Name the species in IMAGES (files or folders, walked recursively) with MODEL.

    Prints each image's species and probability, and the top-k. Below --threshold (default: the rule
    `calibrate-unknown` stored with the model) the answer is "unknown". Unreadable or missing files are
    reported on stderr (and under "errors" with --json) while the rest are predicted; the exit code is then 1.

    \b
      keras-birds predict photo.jpg --model runs/effnet_lite0
      keras-birds predict photos/ --model runs/effnet_lite0/export/model_int8.tflite --threshold 0.3 --json
    """
    import contextlib
    import json

    _import_tensorflow_quietly()
    from keras_birds.console import stdout_to_stderr
    from keras_birds.prediction.predict import format_text, predict as run_predict

    with stdout_to_stderr() if as_json else contextlib.nullcontext():
        preds = run_predict(list(images), model_path, top_k=top_k, threshold=threshold, batch_size=batch_size,
                            tta_flip=tta_flip, progress=not quiet)
    if as_json:
        click.echo(json.dumps(preds.as_dict(), indent=2))
    else:
        if preds.results:
            click.echo(format_text(preds))
    if preds.tta_flip and not quiet:
        click.echo("note: flip TTA: each image averaged with its mirror image (2 passes; --no-tta-flip for one)",
                   err=True)
    for line in preds.warnings:
        click.echo(f"warning: {line}", err=True)
    for e in preds.errors:
        click.echo(f"warning: {e['path']}: {e['error']}", err=True)
    if preds.errors:
        sys.exit(1)


add_openset_commands(main, before=_import_tensorflow_quietly)  # add-species, calibrate-unknown: openset/commands.py
main.add_command(recipes), main.add_command(models)  # catalog_commands.py (listings, no TensorFlow)
main.add_command(report_command)  # report: reporting/command.py (reads files; no TensorFlow)
main.add_command(serve_web_command)  # serve-web: export/web/command.py (a static server; no TensorFlow)
add_serve_command(main, before=_import_tensorflow_quietly)  # serve: serving/command.py (the HTTP API)

if __name__ == "__main__":
    main()
