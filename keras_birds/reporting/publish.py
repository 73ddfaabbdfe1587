"""The report folder as one unit: report.md, report.html and figures/ of one study, never of two.

A report is written into a pending folder beside OUT (.OUT.pending-<pid>), then swapped in: OUT renamed
away (.OUT.old-<pid>), the pending folder renamed to OUT, the old one removed. A `report` killed at any
point leaves OUT as it was or whole and new; what a dead process left beside it is swept by the next one
(an old page it had renamed away is put back when OUT is missing).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.run_dir import process_alive

REPORT_ENTRIES = ("report.md", "report.html", "figures")  # what a report folder holds; nothing else is replaced


def _beside(out_dir: Path, kind: str, pid: int) -> Path:
    return out_dir.parent / f".{out_dir.name}.{kind}-{pid}"


def sweep(out_dir: Path):
    """Remove the pending and old folders of dead `report` processes beside out_dir."""
    if not out_dir.parent.is_dir():
        return
    prefix = f".{out_dir.name}."
    for path in out_dir.parent.iterdir():
        kind, _, pid = path.name[len(prefix):].rpartition("-")
        if not path.name.startswith(prefix) or kind not in ("pending", "old") or not pid.isdigit():
            continue
        if process_alive(int(pid)):
            continue  # another report writing now
        if kind == "old" and not out_dir.exists():
            os.rename(path, out_dir)  # died between its two renames: the old page comes back
        else:
            shutil.rmtree(path, ignore_errors=True)


def check_replaceable(out_dir: Path):
    """Refuse an --out folder holding more than a report: the swap replaces the whole folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: pass a folder for report.html and report.md")
    other = sorted(p.name for p in out_dir.iterdir() if p.name not in REPORT_ENTRIES) if out_dir.is_dir() else []
    if other:
        raise UserError(f"--out {out_dir} holds files that are not a report ({', '.join(other[:3])}"
                        f"{', ...' if len(other) > 3 else ''}): pass a new folder, or an earlier report's")


def pending(out_dir: Path) -> Path:
    """An empty folder beside out_dir (same file system, so the swap is two renames) to write the report into."""
    sweep(out_dir)
    folder = _beside(out_dir, "pending", os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def swap_in(folder: Path, out_dir: Path):
    """Make the finished pending folder out_dir, and remove the report it replaces."""
    old = _beside(out_dir, "old", os.getpid())
    if out_dir.exists():
        os.rename(out_dir, old)
    os.rename(folder, out_dir)
    shutil.rmtree(old, ignore_errors=True)
