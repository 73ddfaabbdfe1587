"""The `keras-birds serve-web` command, added to the main group by keras_birds/cli.py. A static server on
127.0.0.1: it imports neither TensorFlow nor a model. (`export --web` itself is an option of `export`.)"""
from __future__ import annotations

import click


@click.command("serve-web")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
def serve_web(path, port):
    """Serve the web page `export --web` wrote, on 127.0.0.1 only, for a quick look; Ctrl-C stops.

    PATH: a run directory (serves RUN/export/web/), an export folder (EXPORT/web/) or the page's folder.
    The folder is static: any web server or GitHub Pages serves it as it is, and once loaded the page
    needs no network: photos stay on the device.

    \b
      keras-birds serve-web runs/effnet_lite0           then open the printed URL
    """
    from keras_birds.export.web.serve import page_folder, serve

    serve(page_folder(path), port, echo=click.echo)
