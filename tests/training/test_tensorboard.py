"""RUN/tensorboard/: TensorBoard's own loader reads back metrics.csv's values; a resume repeats nothing; off is off."""
import csv
import dataclasses

import numpy as np
import pytest
from PIL import Image

from keras_birds.recipe import Augment, Recipe
from keras_birds.training import tensorboard as board
from keras_birds.training.tensorboard import EventLog, TensorBoardLogger
from keras_birds.training.train import train

EPOCH_TAGS = {f"epoch/{k}" for k in ("loss", "top1", "top5", "val_loss", "val_top1", "val_top5", "lr", "phase",
                                     "seconds")}


def tiny_recipe(data, **kw):
    return Recipe(**{**dict(model="resnet18", weights="none", data=str(data), image_size=32, batch_size=2,
                            epochs=(1, 1), lr=(1e-2, 1e-3), workers=1, dropout=0.0,
                            augment=Augment(False, 0, 0, 0, 0, 0)), **kw})


def read_board(run_path):
    """{tag: [(step, value)]} as TensorBoard's EventAccumulator serves it (orphaned data purged), all points kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def csv_rows(run_path):
    with open(run_path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_epochs_match_metrics_csv(scalars, rows):
    """Every metrics.csv column at its epoch, equal as float32 (TensorBoard's scalar type), no epoch twice."""
    assert EPOCH_TAGS <= set(scalars), sorted(scalars)
    for tag in EPOCH_TAGS:
        column = tag.split("/", 1)[1]
        assert [step for step, _ in scalars[tag]] == [int(r["epoch"]) for r in rows], tag
        assert [value for _, value in scalars[tag]] == [float(np.float32(float(r[column]))) for r in rows], tag


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """3 species told apart by colour, 4 train and 2 valid images each: 6 steps an epoch at batch 2."""
    root, rng = tmp_path_factory.mktemp("tb"), np.random.default_rng(0)
    for split, n in (("train", 4), ("valid", 2), ("test", 1)):
        for c, colour in enumerate([(220, 40, 40), (40, 200, 60), (50, 70, 230)]):
            (root / split / f"SPECIES {c}").mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(colour) + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / f"SPECIES {c}" / f"{i}.jpg")
    return root


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def killed_then_resumed(data, tmp_path_factory):
    """Epochs 1-2, killed after 4 batches of epoch 2 (its step points written, the epoch not), then resumed."""
    out = tmp_path_factory.mktemp("runs") / "resumed"
    original = TensorBoardLogger.on_train_batch_end

    def dies_in_epoch_2(self, batch, logs=None):
        original(self, batch, logs)
        if self._epoch == 1 and batch == 3:
            raise Killed()

    with pytest.MonkeyPatch.context() as mp, pytest.raises(Killed):
        mp.setattr(TensorBoardLogger, "on_train_batch_end", dies_in_epoch_2)
        train(tiny_recipe(data), out, verbose=0, log=lambda *_: None)
    before = read_board(out)
    run = train(None, out, resume=True, verbose=0, log=lambda *_: None)
    return run.path, before


def test_epoch_scalars_equal_metrics_csv_and_a_resume_repeats_nothing(killed_then_resumed):
    path, before = killed_then_resumed
    # the killed session: epoch 1 and the step points of epoch 2's first 4 batches (steps 7-10)
    assert [s for s, _ in before["epoch/val_top1"]] == [1]
    assert [s for s, _ in before["step/loss"]] == list(range(1, 11))
    rows = csv_rows(path)
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["phase"] for r in rows] == ["1", "2"]
    assert sorted(p.name for p in (path / "tensorboard").iterdir()) == [  # one file per session, in session order
        "events.out.tfevents.000001.keras_birds", "events.out.tfevents.000002.keras_birds"]

    scalars = read_board(path)
    assert_epochs_match_metrics_csv(scalars, rows)
    assert {"step/loss", "step/top1", "step/top5", "step/lr"} <= set(scalars)
    # every batch of 2 epochs x 6 steps, once: the killed session's points of epoch 2 are dropped
    assert [s for s, _ in scalars["step/loss"]] == list(range(1, 13))
    lrs = [v for _, v in scalars["step/lr"]]
    assert max(lrs[:6]) == pytest.approx(1e-2, rel=1e-3) and max(lrs[6:]) == pytest.approx(1e-3, rel=1e-3)


def test_a_changed_value_fails_the_comparison(killed_then_resumed):
    path, _ = killed_then_resumed
    rows = csv_rows(path)
    rows[1]["val_top1"] = str(float(rows[1]["val_top1"]) + 0.01)
    with pytest.raises(AssertionError):
        assert_epochs_match_metrics_csv(read_board(path), rows)
    with pytest.raises(AssertionError):  # missing events fail too
        assert_epochs_match_metrics_csv({}, csv_rows(path))


def test_off_writes_no_folder(data, tmp_path):
    run = train(tiny_recipe(data, epochs=(1, 0), tensorboard=False), tmp_path / "off", verbose=0, log=lambda *_: None)
    assert run.metrics_csv.is_file() and not (run.path / "tensorboard").exists()


def test_a_run_resumed_without_events_gets_its_earlier_epochs(tmp_path, monkeypatch):
    """An older run (no tensorboard/): its resumed session first writes the finished epochs from metrics."""
    class Run:
        path = tmp_path

        def read_metrics(self):
            return [{"epoch": 1, "phase": 1, "val_top1": 0.5}, {"epoch": 2, "phase": 2, "val_top1": 0.25},
                    {"epoch": 3, "phase": 2, "val_top1": 0.75}]  # epoch 3 not committed in state.json

    with board.training_board(Run(), Recipe(), done=2, steps_per_epoch=5) as b:
        assert len(b.callbacks(schedule=None)) == 1
    assert read_board(tmp_path)["epoch/val_top1"] == [(1, 0.5), (2, 0.25)]


def test_a_failing_write_warns_once_and_training_goes_on(tmp_path):
    said = []
    events = EventLog(tmp_path / "tensorboard", said.append)
    events._file.close()  # every later write raises ValueError
    for step in (1, 2):
        events.scalars(step, {"epoch/loss": 1.0})
    assert len(said) == 1 and said[0].startswith("warning: TensorBoard events cannot be written")
    blocked = tmp_path / "file"
    blocked.write_text("")
    EventLog(blocked / "tensorboard", said.append).scalars(1, {"a": 1.0})  # the folder cannot be made
    assert len(said) == 2


def test_a_recipe_without_the_field_loads_and_the_field_round_trips():
    d = dataclasses.asdict(Recipe(tensorboard=False))
    assert Recipe.from_dict(d).tensorboard is False
    del d["tensorboard"]  # a recipe.json written before the field
    assert Recipe.from_dict(d).tensorboard is True
