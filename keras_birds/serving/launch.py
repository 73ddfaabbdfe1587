"""`with Launched(model, ...) as server:` `keras-birds serve` in a child process on a free 127.0.0.1 port,
ready when the block starts and stopped by SIGTERM (then killed, if it does not drain in time) when it
ends: for tests and tools/bench_serve.py. Every wait is bounded."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

STARTED = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+) ")


class Launched:
    def __init__(self, model, *args, timeout: float = 120.0, env=None):
        self.command = [sys.executable, "-m", "keras_birds.cli", "serve", str(model), "--host", "127.0.0.1",
                        "--port", "0", *map(str, args)]
        self.timeout, self.env = timeout, env
        self.url = None
        self.process: subprocess.Popen | None = None
        self.stderr: list = []  # the server's stderr lines, read by a thread so its pipe never fills

    def __enter__(self) -> "Launched":
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env=self.env)
        found = threading.Event()

        def read():
            for line in self.process.stderr:
                self.stderr.append(line.rstrip("\n"))
                match = STARTED.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()
            found.set()  # the process ended

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        try:
            if not found.wait(self.timeout) or self.url is None:
                raise RuntimeError(f"the server did not start: {self.log()}")
            while not self.ready():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server never became ready: {self.log()}")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self) -> str:
        return " | ".join(self.stderr[-15:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            return resp.read().decode()

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

    def terminate(self):
        """SIGTERM: the server drains and exits by itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, drain_seconds: float = 40.0) -> int | None:
        """SIGTERM, wait for the drain, then kill; the exit code."""
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.process.wait(drain_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
