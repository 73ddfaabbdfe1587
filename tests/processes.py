"""Processes seen through /proc: their parents, and each known by its pid and its start time. pid_max is 32768 on
the CI machine and the suite's two workers start many processes and threads, so a dead process' pid can soon
belong to another one: a test that checks or kills a pid it saw earlier must check that start time too."""
import os
import signal
from pathlib import Path


def _stat(pid: int) -> list | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when there is no such pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parents() -> dict:
    """{pid: parent pid} of every process now in /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(int(stat.parent.name))
        if fields:  # else gone meanwhile
            found[int(stat.parent.name)] = int(fields[1])
    return found


def started(pid: int) -> str | None:
    """The process' start time (clock ticks since boot: stat's field 22), None when it is gone."""
    fields = _stat(pid)
    return fields[19] if fields else None


def running(pid: int, since: str | None = None) -> bool:
    """The process is there and not a zombie (exited, not yet reaped); with `since` (its started()), it is
    still the same process, not a later one that got the pid."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in "ZX" and (since is None or fields[19] == since)


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "(gone)"


def kill_if_running(known: dict, sig=signal.SIGKILL) -> None:
    """Send `sig` to each {pid: started} that is still that process."""
    for pid, since in known.items():
        if since is not None and running(pid, since):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
