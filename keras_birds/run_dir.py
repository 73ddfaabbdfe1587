"""The run directory: the contract between training and everything after it.

    RUN/
      recipe.json          the resolved recipe (enough to reproduce or resume the run)
      classes.txt          class names, one per line, in label order
      epochs/epoch_NNN.weights.h5   weights after every finished epoch (1-based, across both phases)
      best.weights.h5      weights of the epoch with the best validation top-1
      metrics.csv, metrics.json     one row per finished epoch: loss, top-1, top-5, LR, validation
      optimizer.npz        optimizer state after the last finished epoch (for --resume)
      state.json           resume state; written last in each epoch: an epoch counts once it is here
      skipped.json         files that could not be decoded, with the reason
      model.keras          the full model with the best weights, written when training ends
      summary.json         best epoch, its validation figures, wall time, excluded/skipped counts
      eval/<model file>-<split>/   `keras-birds eval` reports (report.json, report.md, PNGs)
      export/              `keras-birds export`: the .tflite/.onnx files, labels.txt, export.json
      unknown.json         `calibrate-unknown`'s rule (score, threshold) that predict and export apply
      teacher.json, teacher_outputs.npy   a distilled run's teachers and their cached outputs
      added_species.json, data/, exclude.txt   a run made by `add-species`: what it did, its linked data
      .lock                the pid of the process writing the run (flock-ed while it lives; see writer_lock)

Everything is written to a temporary name and renamed, so a killed run never leaves half a file.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

from keras_birds.errors import UserError


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks (weights and exported models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists: folders named after a dead writer's pid are abandoned work."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_abandoned(parent: Path, prefix: str):
    """Delete the folders <prefix><pid> in `parent` whose writer is gone (or whose suffix is no pid): work a
    killed process left half done."""
    for old in Path(parent).glob(f"{prefix}*"):
        pid = old.name[len(prefix):]
        if old.is_dir() and (not pid.isdigit() or not process_alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)


LOCK_FILE = ".lock"
# Set by `train --devices N` to the run it holds the lock of: its torchrun workers write under that lock.
LOCK_HELD_ENV = "KERAS_BIRDS_RUN_LOCKED"


@contextlib.contextmanager
def writer_lock(path):
    """Hold RUN/.lock while the block writes the run: a second writer (a `train --resume` or `--overwrite`
    beside a live one) gets a one-line UserError naming the first. The lock is an flock on the file, which
    the kernel drops when its process dies: a killed writer's lock is free at once (the file, naming a dead
    pid, is taken over). Folders made for the lock alone are removed again when nothing was written."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    fd = None
    try:
        fd = _take_lock(path / LOCK_FILE)
        yield fd
    finally:
        if fd is not None:  # refused: the file is the other writer's
            with contextlib.suppress(OSError):
                (path / LOCK_FILE).unlink()
            os.close(fd)
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):  # not empty: the run was written after all
                folder.rmdir()


def _take_lock(lock: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, lock)
            if os.path.samestat(os.fstat(fd), os.stat(lock)):  # not unlinked by its releasing holder meanwhile
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _flock(fd: int, lock: Path):
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    except OSError as e:  # a file system without flock (some network mounts): judge by the pid written
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if not (holder.isdigit() and int(holder) != os.getpid() and process_alive(int(holder))):
            return  # no writer, or a dead one: swept
    raise UserError(f"{lock.parent} is being written by process {holder} (another keras-birds train); wait for "
                    f"it to end or stop it first")


def atomic_write_bytes(path, data: bytes):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path, text: str):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def atomic_save(path, save_fn):
    """Call save_fn(tmp_path) then rename; tmp keeps the suffix Keras checks (.weights.h5 / .keras)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    suffix = ".weights.h5" if name.endswith(".weights.h5") else path.suffix
    tmp = path.with_name(f".{name[: len(name) - len(suffix)]}.partial{suffix}")
    save_fn(str(tmp))
    os.replace(tmp, path)


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    recipe_json = property(lambda self: self.path / "recipe.json")
    classes_txt = property(lambda self: self.path / "classes.txt")
    epochs_dir = property(lambda self: self.path / "epochs")
    best_weights = property(lambda self: self.path / "best.weights.h5")
    metrics_csv = property(lambda self: self.path / "metrics.csv")
    metrics_json = property(lambda self: self.path / "metrics.json")
    optimizer_state = property(lambda self: self.path / "optimizer.npz")
    state_json = property(lambda self: self.path / "state.json")
    skipped_json = property(lambda self: self.path / "skipped.json")
    model_keras = property(lambda self: self.path / "model.keras")
    summary_json = property(lambda self: self.path / "summary.json")
    eval_dir = property(lambda self: self.path / "eval")

    def epoch_weights(self, epoch: int) -> Path:
        return self.epochs_dir / f"epoch_{epoch:03d}.weights.h5"

    def is_run(self) -> bool:
        return self.recipe_json.is_file()

    @classmethod
    def existing(cls, path, hint: str) -> "RunDir":
        """The run directory at `path`, or a one-line UserError; `hint` says what to pass instead."""
        run = cls(path)
        if not run.path.is_dir():
            raise UserError(f"run directory {run.path} does not exist")
        if not run.is_run():
            raise UserError(f"{run.path} is not a keras-birds run directory (no recipe.json); {hint}")
        return run

    # -- creating ---------------------------------------------------------------------------
    def check_free(self, overwrite: bool):
        """Refuse a folder that already holds files, unless overwriting a run; writes nothing."""
        if self.path.exists() and any(p.name != LOCK_FILE for p in self.path.iterdir()):
            if not overwrite:
                what = "a run" if self.is_run() else "other files"
                raise UserError(
                    f"out directory {self.path} already holds {what}; pass --resume {self.path} to "
                    f"continue it, --overwrite to replace it, or choose another --out"
                )
            if not self.is_run():
                raise UserError(f"--overwrite refused: {self.path} holds files that are not a keras-birds run")

    def prepare(self, recipe_dict: dict, overwrite: bool):
        """Claim the folder for a new run (replacing an old run only when overwriting)."""
        self.check_free(overwrite)
        for old in self.path.iterdir() if self.path.exists() else ():
            if old.name == LOCK_FILE:  # the writer's lock stays held
                continue
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.recipe_json, recipe_dict)

    def write_classes(self, names):
        atomic_write_text(self.classes_txt, "".join(f"{n}\n" for n in names))

    # -- reading ----------------------------------------------------------------------------
    def _need(self, path: Path, what: str) -> Path:
        if not path.exists():
            raise UserError(f"{self.path} is not a finished keras-birds run: {path.name} missing ({what})")
        return path

    def check_resumable(self):
        """A --resume folder that is not there, or is not a run: one line, before anything is written in it."""
        if not self.path.is_dir():
            raise UserError(f"--resume {self.path}: no such folder; pass the --out folder of an earlier "
                            f"`keras-birds train` (default runs/<recipe name>)")
        self.read_recipe()

    def check_can_start(self, resume: bool, overwrite: bool):
        """What `train` checks before it takes the writer lock: a run to resume, or a free (or overwritable) folder."""
        if resume:
            self.check_resumable()
        else:
            self.check_free(overwrite)

    def epochs_progress(self) -> tuple:
        """(epochs finished (state.json), epochs asked for (recipe.json) or None): an unreadable file counts
        as no epoch finished / an unknown total."""
        try:
            done = int(self.read_state().get("epochs_done") or 0)
        except (OSError, ValueError, AttributeError):
            done = 0
        try:
            total = sum(int(e) for e in json.loads(self.recipe_json.read_text())["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            total = None
        return done, total

    def read_recipe(self) -> dict:
        self._need(self.recipe_json, "run `keras-birds train` first")
        return json.loads(self.recipe_json.read_text())

    def read_classes(self) -> list:
        return self._need(self.classes_txt, "class names").read_text().splitlines()

    def read_state(self) -> dict:
        return json.loads(self.state_json.read_text()) if self.state_json.exists() else {"epochs_done": 0}

    def read_metrics(self) -> list:
        return json.loads(self.metrics_json.read_text()) if self.metrics_json.exists() else []

    def write_metrics(self, rows: list):
        atomic_write_json(self.metrics_json, rows)
        if rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(self.metrics_csv, buf.getvalue())
