"""Where a command's words go: results on stdout, progress and log lines on stderr.

So `--json` output, or a table piped to a file, holds the results alone, whichever verb printed it.
"""
from __future__ import annotations

import contextlib
import os
import sys


def log(msg):
    """A progress or log line: stderr, flushed (looked up per call, so test runners capturing it see it)."""
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to stdout (C libraries included) to stderr, e.g. while --json waits."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
