"""Distillation (training/distill.py) on birds-mini: the KD loss pulls the student to the teacher, a cached
teacher replays exactly the online one, and a run records its teacher or refuses one that does not fit."""
import csv
import hashlib
import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.data.augment import build_augmenter
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import load_source
from keras_birds.errors import UserError
from keras_birds.recipe import Augment
from keras_birds.training import distill


def _kl(p, q):
    return float(np.mean(np.sum(p * (np.log(p + 1e-7) - np.log(q + 1e-7)), axis=1)))


def test_kd_loss_moves_the_students_outputs_toward_the_teachers(birds_mini):
    x, y = BatchLoader(load_source(str(birds_mini))["train"], 16, 75).load_batch(0)
    x = x.reshape(len(x), -1).astype("float32") / 255.0
    n = 25
    teacher = keras.ops.convert_to_numpy(keras.ops.softmax(np.random.default_rng(0).normal(0, 3, (len(x), n))))
    target = np.concatenate([np.eye(n, dtype="float32")[y], teacher.astype("float32")], axis=1)
    keras.utils.set_random_seed(0)
    student = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(n, activation="softmax")])
    loss = distill.KDLoss(n, temperature=2.0, alpha=1.0)
    student.compile(keras.optimizers.Adam(1e-2), loss=loss, metrics=distill.label_metrics(n))
    before = _kl(teacher, keras.ops.convert_to_numpy(student(x)))
    student.fit(x, target, batch_size=75, epochs=40, verbose=0)
    after = _kl(teacher, keras.ops.convert_to_numpy(student(x)))
    assert after < 0.5 * before, (before, after)
    # alpha 0 is plain cross-entropy on the labels: the teacher half is ignored
    p = keras.ops.convert_to_numpy(student(x))
    ce = float(keras.ops.convert_to_numpy(distill.KDLoss(n, 2.0, 0.0)(target, p)))
    np.testing.assert_allclose(ce, np.mean(-np.log(p[np.arange(len(y)), y])), rtol=1e-4)


def test_cached_and_online_teacher_give_the_same_loss_for_the_same_seed(birds_mini, trained_tiny_run):
    """Epochs 0 and 1 of a 2-view cache show exactly the batches (order, augmentation) the online teacher
    sees, and the targets match: the loss of a fixed student is the same either way."""
    index = load_source(str(birds_mini))["train"]
    teachers = distill.load_teachers(str(trained_tiny_run.path), index.class_names)
    assert teachers[0].image_size == 96  # the student below sees 64 px: the teacher gets them resized

    def loader(views):
        base = BatchLoader(index, 64, 32, augmenter=build_augmenter(Augment(), seed=3), workers=1)
        return distill.DistillLoader(base, teachers, views=views, seed=3)

    cached, online = loader(2), loader(0)
    cached.cache = distill.build_cache(cached, log=lambda *_: None)
    student = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(25, activation="softmax")])
    kd = distill.KDLoss(25, temperature=4.0, alpha=0.9)
    for _ in range(2):
        for i in range(len(cached)):
            (xc, yc), (xo, yo) = cached[i], online[i]
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(xc), keras.ops.convert_to_numpy(xo))
            np.testing.assert_allclose(yc, yo, atol=2e-3)  # the cache holds float16
            pred = student(xc)
            assert abs(float(keras.ops.convert_to_numpy(kd(yc, pred) - kd(yo, pred)))) < 1e-3
        cached.on_epoch_end()
        online.on_epoch_end()
    assert cached.view() == 0 and online.view() == 2  # the cache cycles; the online teacher sees new views


def test_unlabeled_photos_are_trained_on_the_teachers_outputs_alone(birds_mini, trained_tiny_run, tmp_path):
    index = load_source(str(birds_mini))["train"]
    photos = tmp_path / "field photos" / "day 1"  # any layout: found recursively
    photos.mkdir(parents=True)
    for i, src in enumerate(sorted((birds_mini / "valid").rglob("*.jpg"))[:7]):
        (photos / f"{i}.jpg").write_bytes(src.read_bytes())
    teachers = distill.load_teachers(str(trained_tiny_run.path), index.class_names)
    base = distill.with_unlabeled(BatchLoader(index, 64, 16, workers=1), str(tmp_path / "field photos"))
    assert len(base.index) == len(index) + 7 and (base.index.labels < 0).sum() == 7
    loader = distill.DistillLoader(base, teachers, views=0, seed=0)
    ys = np.concatenate([loader[i][1] for i in range(len(loader))])
    unlabeled = ys[:, :25].sum(1) == 0
    assert unlabeled.sum() == 7 and np.allclose(ys[:, 25:].sum(1), 1, atol=1e-3)  # a teacher target on every row
    # Cross-entropy is 0 on an unlabeled row: its loss at alpha 0 is 0, at alpha 1 the KD term alone
    p = np.full((len(ys), 25), 1 / 25, "float32")
    per_row = keras.ops.convert_to_numpy(distill.KDLoss(25, 4.0, 0.0, reduction=None)(ys, p))
    assert np.allclose(per_row[unlabeled], 0) and (per_row[~unlabeled] > 1).all()
    # The top-1 metric counts the labelled rows only
    top1 = distill.label_metrics(25)[0]
    top1.update_state(ys, ys[:, :25] + 0.5 * ys[:, 25:])  # right on every labelled row
    assert float(top1.result()) == 1.0
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no image"):
        distill.with_unlabeled(base, str(tmp_path / "empty"))


def test_distilled_run_records_its_teacher_and_a_mismatched_teacher_exits_2(birds_mini, trained_tiny_run, tmp_path):
    teacher = trained_tiny_run.path
    out = tmp_path / "student"
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, src in enumerate(sorted((birds_mini / "test").rglob("*.jpg"))[:5]):
        (photos / f"{i}.jpg").write_bytes(src.read_bytes())
    # The shipped recipe's shape, small: a head epoch, then an all-layers epoch on the teacher's targets.
    args = ["train", "recipes/distill_lite0.py", "--data", str(birds_mini), "--set", "image_size=64",
            "--set", "probe_views=0", "--set", f"teacher={teacher}", "--set", "kd_views=2", "--set", "epochs=1,1",
            "--quiet"]
    result = CliRunner().invoke(main, args + ["--set", f"unlabeled={photos}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "teacher.json").read_text())
    (t,) = record["teachers"]
    weights = teacher / t["weights"]
    assert t["path"] == str(teacher.resolve()) and t["classes"] == 25 and t["model"] == "efficientnet_lite0"
    assert t["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (record["kd_views"], record["kd_alpha"], record["kd_temperature"]) == (2, 0.9, 4.0)
    assert np.load(out / "teacher_outputs.npy").shape == (2, 75 + 5, 25)  # the 5 unlabeled photos too
    assert (record["unlabeled"]["folder"], record["unlabeled"]["images"]) == (str(photos), 5)
    assert [row["phase"] for row in csv.DictReader((out / "metrics.csv").open())] == ["1", "2"]
    assert (out / "model.keras").is_file()

    # 20 of the 25 species: the teacher's class list does not fit
    fewer = tmp_path / "fewer"
    for split in ("train", "valid", "test"):
        for species in sorted(p.name for p in (birds_mini / split).iterdir())[:20]:
            (fewer / split).mkdir(parents=True, exist_ok=True)
            (fewer / split / species).symlink_to(birds_mini / split / species)
    bad = CliRunner().invoke(main, args[:3] + [str(fewer)] + args[4:] + ["--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2, bad.output
    assert f"teacher {teacher} knows 25 species and the data has 20" in bad.output
    assert not (tmp_path / "bad").exists()  # refused before the run folder was claimed

    # unlabeled photos need a teacher to label them
    fewshot = ["train", "recipes/effnet_lite0_fewshot.py"] + args[2:6]
    alone = CliRunner().invoke(main, fewshot + ["--set", f"unlabeled={photos}", "--out", str(tmp_path / "alone")])
    assert alone.exit_code == 2 and "needs a teacher" in alone.output, alone.output
