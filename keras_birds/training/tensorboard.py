"""Live training curves: RUN/tensorboard/ event files that `tensorboard --logdir runs` shows, runs side by side.

    epoch/<column>   each metrics.csv column of the finished epoch (loss, top1, top5, val_loss, val_top1, val_top5,
                     lr, phase, seconds), at step = the run's 1-based epoch across both phases, as metrics.csv counts;
                     written once the epoch is committed (state.json), so a resumed run never repeats an epoch
    step/<metric>    every ~1/20 epoch: Keras' running means of the epoch so far (loss, top1, top5) and the LR of
                     that step, at step = the global batch step (epochs before x steps per epoch + batch)

Scalars are stored as TensorBoard stores them, float32. Each training session adds one event file; a resumed
session first writes a SessionLog START at its first step, so TensorBoard drops the step points of the epoch the
killed session had begun. Rank 0 alone writes. A failed write warns once; training goes on without the events.

The events go out through tensorboard's record writer and protos alone: its EventFileWriter (and torch's
SummaryWriter) make folders through tensorboard.compat.tf, which imports TensorFlow whenever it is installed.
"""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import keras

from keras_birds.training import distributed

FOLDER = "tensorboard"  # RUN/tensorboard/
STEP_POINTS_PER_EPOCH = 20  # step/* points written per epoch (every batch when an epoch has fewer)
# TensorBoard reads the event files of a folder in name order: one per session, numbered (not named after the
# time, host and pid as EventFileWriter's are), so a run's files are named alike wherever and however it trained.
FILE_PATTERN = re.compile(r"events\.out\.tfevents\.(\d{6})\.keras_birds")


def board_dir(run) -> Path:
    return Path(run.path) / FOLDER


def next_file_name(folder: Path) -> str:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := FILE_PATTERN.fullmatch(p.name))]
    return f"events.out.tfevents.{max(numbers, default=0) + 1:06d}.keras_birds"


class EventLog:
    """One event file of scalars. Never raises: the first failure warns through `log`, later writes are dropped."""

    def __init__(self, folder, log=print):
        self.folder, self.log, self._file, self._records = Path(folder), log, None, None
        self.failed = False
        with self._guard():
            from tensorboard.summary.writer.record_writer import RecordWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self.folder / next_file_name(self.folder), "xb")
            self._records = RecordWriter(self._file)
            self._write(self._event(file_version="brain.Event:2"))

    @staticmethod
    def _event(step=0, **fields):
        from tensorboard.compat.proto import event_pb2

        return event_pb2.Event(wall_time=time.time(), step=int(step), **fields)

    def scalars(self, step: int, values: dict) -> None:
        """{tag: number} at `step`, flushed (the live view sees it at once)."""
        if self._usable():
            with self._guard():
                from tensorboard.compat.proto import summary_pb2

                summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(v))
                                                     for tag, v in values.items()])
                self._write(self._event(step, summary=summary))

    def restart_at(self, step: int) -> None:
        """SessionLog START: readers drop the points at `step` and later that earlier files hold."""
        if self._usable():
            with self._guard():
                from tensorboard.compat.proto import event_pb2

                self._write(self._event(step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None

    def _usable(self) -> bool:
        return self._records is not None and not self.failed

    def _write(self, event) -> None:
        self._records.write(event.SerializeToString())
        self._file.flush()

    @contextlib.contextmanager
    def _guard(self):
        try:
            yield
        except Exception as e:  # a full disk, a lost mount, a broken install: the run matters more than its curves
            if not self.failed:
                self.failed = True
                self.log(f"warning: TensorBoard events cannot be written to {self.folder} ({type(e).__name__}: "
                         f"{e}); training goes on without them")


class TensorBoardLogger(keras.callbacks.Callback):
    """One phase's callback, listed after EpochCheckpoint: it reads the epoch's row back from the run's metrics."""

    def __init__(self, events: EventLog, run, schedule, steps_per_epoch: int):
        super().__init__()
        self.events, self.run, self.schedule, self.steps_per_epoch = events, run, schedule, steps_per_epoch
        self._epoch = 0

    def _steps(self) -> int:
        return int((self.params or {}).get("steps") or self.steps_per_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch  # global and 0-based: fit() runs from initial_epoch

    def on_train_batch_end(self, batch, logs=None):
        steps = self._steps()
        if (batch + 1) % max(1, steps // STEP_POINTS_PER_EPOCH) or self.events.failed:
            return
        values = {f"step/{k}": float(keras.ops.convert_to_numpy(v)) for k, v in (logs or {}).items()}
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))  # this phase's optimizer
        values["step/lr"] = float(keras.ops.convert_to_numpy(self.schedule(max(iterations - 1, 0))))
        self.events.scalars(self._epoch * steps + batch + 1, values)

    def on_epoch_end(self, epoch, logs=None):
        row = next((r for r in self.run.read_metrics() if r["epoch"] == epoch + 1), None)  # EpochCheckpoint's commit
        if row is not None:
            write_epoch(self.events, row)


def write_epoch(events: EventLog, row: dict) -> None:
    events.scalars(row["epoch"], {f"epoch/{k}": v for k, v in row.items()
                                  if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)})


class TrainingBoard:
    """What train() asks per phase: callbacks(schedule) is [] when the board is off (recipe or rank)."""

    def __init__(self, run, events: EventLog | None, steps_per_epoch: int):
        self.run, self.events, self.steps_per_epoch = run, events, steps_per_epoch

    def callbacks(self, schedule) -> list:
        return [TensorBoardLogger(self.events, self.run, schedule, self.steps_per_epoch)] if self.events else []


@contextlib.contextmanager
def training_board(run, recipe, done: int, steps_per_epoch: int, log=print):
    """The session's TensorBoard events (off: recipe.tensorboard false, or not rank 0). `done`: epochs already
    finished; a resumed run's board starts where they end, and one begun without a board (an older run, or one
    that had it off) first gets their rows from metrics.json."""
    if not recipe.tensorboard or not distributed.is_main():
        yield TrainingBoard(run, None, steps_per_epoch)
        return
    folder = board_dir(run)
    had_events = folder.is_dir() and any(p.name.startswith("events.out.tfevents.") for p in folder.iterdir())
    events = EventLog(folder, log)
    try:
        if done:
            events.restart_at(done * steps_per_epoch + 1)
            if not had_events:
                for row in run.read_metrics():
                    if row["epoch"] <= done:
                        write_epoch(events, row)
        yield TrainingBoard(run, events, steps_per_epoch)
    finally:
        events.close()
