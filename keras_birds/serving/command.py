"""The `keras-birds serve` command, added to the main group by keras_birds/cli.py."""
from __future__ import annotations

import click

_BEFORE = [lambda: None]  # the CLI's quiet TensorFlow import, needed only to serve a Keras model


@click.command("serve")
@click.argument("model", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 to take requests from other machines (put TLS in front).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port; 0 picks a free one (printed).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes sharing the port, each with the model and cores/workers runtime threads.")
@click.option("--threads", type=int, default=None,
              help="Runtime threads per worker for the model [default: the usable cores / --workers].")
@click.option("--max-batch", type=int, default=32, show_default=True, help="Images per model call at most.")
@click.option("--max-wait-ms", type=float, default=0.0, show_default=True,
              help="How long a batch that is not full may wait for more requests once the model is free. Requests "
                   "that queued while the model ran are batched anyway; a wait pays only where a bigger batch is "
                   "cheaper per image (ONNX float, GPUs), not for the int8 .tflite on a CPU.")
@click.option("--max-queue", type=int, default=512, show_default=True,
              help="Images waiting beyond which requests get 503 (retry later) instead of waiting longer.")
@click.option("--max-upload-mb", type=float, default=20.0, show_default=True, help="Bytes per request at most.")
@click.option("--max-images", type=int, default=32, show_default=True, help="Images per request at most.")
@click.option("--max-megapixels", type=float, default=40.0, show_default=True,
              help="Pixels an image may claim (from its header, before decoding) at most.")
@click.option("--top-k", type=int, default=5, show_default=True, help="Species listed per image unless ?top_k= says.")
def serve(model, host, port, workers, threads, max_batch, max_wait_ms, max_queue, max_upload_mb, max_images, max_megapixels,
          top_k):
    """Answer HTTP requests with MODEL: a run directory (its gate-passing int8 .tflite first), an export
    folder, or a .tflite/.onnx/.keras file. Ctrl+C or SIGTERM lets accepted requests finish, then stops.

    \b
      keras-birds serve runs/effnet_lite0                          http://127.0.0.1:8000
      curl -H 'Content-Type: image/jpeg' --data-binary @bird.jpg http://127.0.0.1:8000/v1/classify
      curl -F a=@bird1.jpg -F b=@bird2.jpg 'http://127.0.0.1:8000/v1/classify?top_k=3'
      curl http://127.0.0.1:8000/v1/model                          species, unknown rule, export gate

    Answers are predict's (same decoding, same unknown rule) with the model's sha256; requests that
    arrive together share one model call. Bad input gets a 4xx with a one-line JSON error. Scaling it
    (several workers or machines): docs/commands/serve.md.
    """
    from keras_birds.errors import UserError
    from keras_birds.serving.app import Settings
    from keras_birds.serving.server import serve as run_server
    from keras_birds.serving.uploads import Limits

    for name, value in (("--threads", threads or 1), ("--max-batch", max_batch), ("--max-images", max_images), ("--top-k", top_k)):
        if value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    if max_queue < max(max_batch, max_images):
        raise UserError(f"--max-queue ({max_queue}) must hold at least one full batch and one full request "
                        f"(--max-batch {max_batch}, --max-images {max_images})")
    if max_wait_ms < 0 or max_upload_mb <= 0 or max_megapixels <= 0:
        raise UserError("--max-wait-ms must be >= 0, --max-upload-mb and --max-megapixels > 0")
    limits = Limits(int(max_upload_mb * 1024 * 1024), max_images, int(max_megapixels * 1e6))
    settings = Settings(max_batch, max_wait_ms, max_queue, top_k, limits)
    run_server(model, host, port, workers, settings, log=lambda msg: click.echo(msg, err=True),
               before_keras=_BEFORE[0], threads=threads)


def add_serve_command(group: click.Group, before=None):
    """Add `serve` to `group`; `before()` runs first when the model may be a Keras one."""
    if before is not None:
        _BEFORE[0] = before
    group.add_command(serve)
