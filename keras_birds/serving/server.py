"""Run the API on uvicorn: one process, or `workers` processes sharing one listening socket.

The socket is bound here first, so a busy port is a one-line error and `--port 0` (any free port) prints
the port it got. Each worker loads the model once and gives its runtime cores / workers threads.
On SIGTERM (or Ctrl+C) uvicorn stops accepting, lets every accepted request finish (up to
`drain_seconds`), then the app's lifespan stops the batcher; with workers, the supervisor passes the
signal to each of them.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from dataclasses import asdict

from keras_birds.cores import usable_cores
from keras_birds.errors import UserError
from keras_birds.serving.app import Settings, create_app
from keras_birds.serving.model import open_served
from keras_birds.serving.uploads import Limits

ENV = "KERAS_BIRDS_SERVE"  # the workers' settings (uvicorn starts them by import string)
DRAIN_SECONDS = 30


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); pass another --port or --host") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def app_from_env():
    """A worker's app (uvicorn factory), from the settings the parent left in the environment."""
    job = json.loads(os.environ[ENV])
    settings = Settings(**{**job["settings"], "limits": Limits(**job["settings"]["limits"])})
    return create_app(open_served(job["model"], job["threads"]), settings)


def serve(model, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, settings: Settings = Settings(),
          log=print, before_keras=lambda: None, threads: int | None = None):
    import uvicorn

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    threads = threads or max(1, usable_cores() // workers)
    served = open_served(model, threads, log, before_keras)  # a bad MODEL fails here, before any worker starts
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    log(f"serving {served.info['file']} ({served.info['kind']}, {served.info['n_species']} species, {served.id[:19]}) "
        f"on http://{shown}:{sock.getsockname()[1]} with {workers} worker(s) x {threads} thread(s); "
        f"POST /v1/classify, GET /v1/model, /healthz, /readyz, /metrics")
    common = dict(log_level="info", access_log=False, timeout_graceful_shutdown=DRAIN_SECONDS, lifespan="on")
    if workers == 1:
        try:
            uvicorn.Server(uvicorn.Config(create_app(served, settings), **common)).run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl+C: uvicorn has drained and stopped by then
            pass
        return
    del served  # each worker opens its own
    metrics_dir = tempfile.mkdtemp(prefix="keras-birds-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before the workers start: they sum into it
    os.environ[ENV] = json.dumps({"model": str(model), "threads": threads, "settings": asdict(settings)})
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("keras_birds.serving.server:app_from_env", factory=True, workers=workers, **common)
    try:
        Multiprocess(config, sockets=[sock]).run()  # what uvicorn.run does with workers, on our socket
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
