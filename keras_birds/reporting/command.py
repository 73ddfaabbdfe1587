"""The `keras-birds report` command: parse arguments, call the workflow (study.py). Added to the main
group by keras_birds/cli.py. It reads files only, so it imports neither TensorFlow nor a model."""
from __future__ import annotations

import click


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--clean", "clean_dir", type=click.Path(file_okay=False),
              help="A `keras-birds clean --out` folder: adds its audit (counts per issue, exclusions, thumbnail sheets).")
@click.option("--comparison", type=click.Path(),
              help="A `keras-birds compare --out` folder or its comparison.json [default: the first comparison/ "
                   "folder whose rows all name these runs: ./comparison, beside the runs, or one folder above them].")
@click.option("--out", type=click.Path(file_okay=False), default="report", show_default=True,
              help="Folder for report.html, report.md and figures/ (report.md's images), replaced as one: it holds "
                   "nothing else.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr (what is not measured is still listed).")
def report(run_dirs, clean_dir, comparison, out, quiet):
    """The study of RUN_DIRS as one page: report.html (self-contained: plots and thumbnails inline, no
    network needed) and report.md.

    Data overview (species, images per split, image sizes, samples), the cleaning audit (--clean),
    training curves per run (loss, top-1, LR, best epoch), the comparison table and Pareto plot,
    per-species accuracy and the most-confused pairs with thumbnails, the reliability diagram, export
    sizes, gate and latency per format (RUN_DIR/export/export.json), robustness and open-set figures,
    and the recommendation. Every figure is read from a file the toolkit wrote, and the page names it;
    nothing is retrained or re-evaluated. A piece a run lacks is marked "not measured".

    \b
      keras-birds compare runs/effnet_lite0 runs/effnet_lite2 --exported --out comparison
      keras-birds report runs/effnet_lite0 runs/effnet_lite2 --clean clean/birds-dev --out report
    """
    from keras_birds.reporting.study import write_report

    result = write_report(list(run_dirs), clean=clean_dir, comparison=comparison, out=out,
                          log=None if quiet else lambda msg: click.echo(msg, err=True))
    for title, why in result.not_measured:
        click.echo(f"  {title}: {why}", err=True)
    click.echo(str(result.html))
