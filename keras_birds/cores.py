"""The CPU cores this process may use: one answer for loader threads, runtime threads and reports."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on: honours taskset/cgroup CPU sets, unlike os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
