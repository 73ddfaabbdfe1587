"""A static server on 127.0.0.1 for a quick look at an exported page (`keras-birds serve-web RUN`).

Only for this machine: it binds the loopback address, serves files under the page's folder and nothing
else, with the MIME types a browser insists on (application/wasm, text/javascript).
"""
from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from keras_birds.errors import UserError

HOST = "127.0.0.1"
TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript",
         ".json": "application/json", ".tflite": "application/octet-stream", ".css": "text/css",
         ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def log_message(self, format, *args):  # noqa: A002 - the base class' name
        pass  # quiet: the command prints the URL, the browser shows the rest

    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def page_folder(path) -> Path:
    """The page's folder from a run directory, its export folder or the page folder itself."""
    path = Path(path)
    for candidate in (path, path / "web", path / "export" / "web"):
        if (candidate / "index.html").is_file() and (candidate / "model.json").is_file():
            return candidate
    raise UserError(f"no exported web page in {path} (looked for index.html and model.json in {path}, {path}/web "
                    f"and {path}/export/web): run `keras-birds export RUN --web` first")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a browser that went away
            super().handle_error(request, client_address)


def make_server(folder, port: int = 0) -> ThreadingHTTPServer:
    """A server for `folder` on 127.0.0.1:`port` (0: any free port), not yet serving."""
    handler = functools.partial(_Handler, directory=str(Path(folder).resolve()))
    try:
        server = _Server((HOST, port), handler)
    except OSError as e:
        raise UserError(f"cannot listen on {HOST}:{port} ({e.strerror or e}); pass another --port") from None
    return server


def url_of(server) -> str:
    return f"http://{HOST}:{server.server_address[1]}/"


class Background:
    """`with Background(folder) as url:` the page served from a thread, stopped on exit (tests, benchmarks)."""

    def __init__(self, folder, port: int = 0):
        self.server = make_server(folder, port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return url_of(self.server)

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(folder, port: int = 8000, echo=print):
    """Serve until Ctrl-C."""
    server = make_server(folder, port)
    echo(f"serving {Path(folder).resolve()} at {url_of(server)} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
