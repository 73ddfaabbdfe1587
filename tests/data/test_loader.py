"""BatchLoader: shapes, labels, shuffling, augmentation, and bad files skipped without a crash."""
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_birds.data.augment import build_augmenter
from keras_birds.data.images import load_rgb
from keras_birds.data.loader import BatchLoader, SkippedFiles
from keras_birds.data.sources import SplitIndex, folder_source
from keras_birds.errors import UserError
from keras_birds.recipe import Augment

S = 32


@pytest.fixture
def train_index(small_dataset):
    return folder_source(small_dataset)["train"]  # 3 classes x 4 images


def _all_batches(loader):
    xs, ys = zip(*(loader[i] for i in range(len(loader))))
    return list(xs), list(ys)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _fingerprints(x):
    """One number per image that identifies it (the images are random noise)."""
    return [round(float(v), 3) for v in x.reshape(len(x), -1).mean(1)]


def test_shapes_dtypes_and_one_hot_labels(train_index):
    loader = BatchLoader(train_index, S, batch_size=5, workers=1)
    assert len(loader) == 3  # 12 images in batches of 5
    xs, ys = _all_batches(loader)
    assert [len(x) for x in xs] == [5, 5, 2]
    for x, y in zip(xs, ys):
        assert x.shape[1:] == (S, S, 3) and x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 255 and x.max() > 1  # pixels, not 0-1
        assert y.shape == (len(x), 3) and y.dtype == np.float32
        assert np.array_equal(y.sum(1), np.ones(len(x)))
        assert set(np.unique(y)) <= {0.0, 1.0}
    # unshuffled: batches follow the index order, labels are the index's labels
    labels = np.concatenate([y.argmax(1) for y in ys])
    assert labels.tolist() == train_index.labels.tolist()
    # and the pixels are those of the files, in that order
    x_all = np.concatenate(xs)
    for k in (0, 7, 11):
        assert np.array_equal(x_all[k], load_rgb(train_index.paths[k], S).astype(np.float32))


def test_resizes_to_the_requested_size(train_index):
    x, _ = BatchLoader(train_index, 48, batch_size=4, workers=1)[0]
    assert x.shape == (4, 48, 48, 3)


def test_unaugmented_loader_is_deterministic(train_index):
    a = BatchLoader(train_index, S, batch_size=4, workers=1)
    b = BatchLoader(train_index, S, batch_size=4, workers=1)
    for i in range(len(a)):
        xa, ya = a[i]
        xb, yb = b[i]
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        assert np.array_equal(xa, a[i][0])  # same batch read twice
    a.on_epoch_end()
    assert np.array_equal(a[0][0], b[0][0])  # no shuffle: epochs do not change the order


def test_shuffle_changes_order_between_epochs_and_covers_every_image_once(tmp_path, make_dataset):
    root = make_dataset(tmp_path, 4, {"train": 6}, size=8, separable=False)
    index = folder_source(root, splits=("train",))["train"]  # 24 images
    loader = BatchLoader(index, 8, batch_size=5, shuffle=True, workers=1, seed=3)
    reference = {fp: label for fp, label in zip(
        _fingerprints(np.stack([load_rgb(p, 8) for p in index.paths]).astype(np.float32)), index.labels)}
    assert len(reference) == len(index)  # fingerprints are unique

    orders = []
    for epoch in range(3):
        xs, ys = _all_batches(loader)
        fps = [fp for x in xs for fp in _fingerprints(x)]
        labels = [int(l) for y in ys for l in y.argmax(1)]
        assert sorted(fps) == sorted(reference)  # every image exactly once
        assert labels == [reference[fp] for fp in fps]  # each image keeps its own label
        orders.append(fps)
        loader.on_epoch_end()
    assert orders[0] != orders[1] != orders[2]
    assert orders[0] != sorted(orders[0], key=list(reference).index)  # not the file order either


def test_shuffle_is_reproducible_from_the_seed(train_index):
    a = BatchLoader(train_index, S, batch_size=4, shuffle=True, workers=1, seed=7)
    b = BatchLoader(train_index, S, batch_size=4, shuffle=True, workers=1, seed=7)
    assert np.array_equal(a.order, b.order)
    a.on_epoch_end(), b.on_epoch_end()
    assert np.array_equal(a.order, b.order)


def test_augmentation_changes_training_pixels(train_index):
    plain = BatchLoader(train_index, S, batch_size=12, workers=1)
    aug = BatchLoader(train_index, S, batch_size=12, workers=1, augmenter=build_augmenter(Augment(), seed=0))
    x0, y0 = plain[0]
    x1, y1 = aug[0]
    aug.on_epoch_end()
    x2, _ = aug[0]
    x1, x2 = _numpy(x1), _numpy(x2)  # a torch tensor on the training device (torch backend)
    assert x1.shape == x0.shape and x1.dtype == np.float32
    assert np.array_equal(y1, y0)  # labels untouched
    assert x1.min() >= 0 and x1.max() <= 255
    changed = [not np.allclose(a, b, atol=1) for a, b in zip(x1, x0)]
    assert sum(changed) >= 10  # nearly every image is warped
    assert not np.allclose(x1, x2)  # and differently in every epoch


def test_augmenter_off_when_every_step_is_off():
    off = Augment(flip=False, perspective=0, rotation=0, translate=0, zoom=0, shear=0)
    assert build_augmenter(off) is None
    only_flip = build_augmenter(Augment(perspective=0, rotation=0, translate=0, zoom=0, shear=0))
    assert only_flip.steps == ("flip",)


def test_flip_only_augmentation_mirrors_or_keeps(train_index):
    flip = build_augmenter(Augment(perspective=0, rotation=0, translate=0, zoom=0, shear=0), seed=1)
    x0, _ = BatchLoader(train_index, S, batch_size=12, workers=1)[0]
    x1 = _numpy(BatchLoader(train_index, S, batch_size=12, workers=1, augmenter=flip)[0][0])
    mirrored = [np.allclose(a, b[:, ::-1], atol=1e-3) for a, b in zip(x1, x0)]
    kept = [np.allclose(a, b, atol=1e-3) for a, b in zip(x1, x0)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert any(mirrored)


# -- bad files -----------------------------------------------------------------------------------
def _index_with(tmp_path, files):
    """A one-class SplitIndex over named files: 'good', 'text', 'empty', 'cut'."""
    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, kind in enumerate(files):
        path = folder / f"{i:02d}_{kind}.jpg"
        if kind == "good":
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
        elif kind == "text":
            path.write_text("not an image")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "cut":
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
            path.write_bytes(path.read_bytes()[:300])
        paths.append(str(path))
    labels = np.arange(len(files), dtype=np.int64) % 2
    return SplitIndex("train", ["A", "B"], paths, labels)


def test_bad_files_are_skipped_and_recorded(tmp_path):
    index = _index_with(tmp_path, ["good", "text", "good", "empty", "cut", "good"])
    skipped = SkippedFiles()
    loader = BatchLoader(index, 16, batch_size=3, workers=1, skipped=skipped)
    x0, y0 = loader[0]
    x1, y1 = loader[1]
    assert x0.shape == (2, 16, 16, 3) and y0.shape == (2, 2)  # batch shrinks, no crash
    assert x1.shape == (1, 16, 16, 3)
    # the survivors keep their own labels (files 0, 2 -> labels 0, 0; file 5 -> label 1)
    assert y0.argmax(1).tolist() == [0, 0] and y1.argmax(1).tolist() == [1]
    assert np.array_equal(x1[0], load_rgb(index.paths[5], 16).astype(np.float32))
    recorded = {Path(r["path"]).name: r["reason"] for r in loader.skipped.as_list()}
    assert loader.skipped is skipped
    assert set(recorded) == {"01_text.jpg", "03_empty.jpg", "04_cut.jpg"}
    assert "UnidentifiedImageError" in recorded["01_text.jpg"]
    assert "UnidentifiedImageError" in recorded["03_empty.jpg"]
    assert "truncated" in recorded["04_cut.jpg"].lower()
    # reading again records each file once
    loader[0], loader[1]
    assert len(loader.skipped.as_list()) == 3


def test_a_batch_of_only_bad_files_borrows_a_good_one(tmp_path):
    index = _index_with(tmp_path, ["text", "empty", "good", "good"])
    loader = BatchLoader(index, 16, batch_size=2, workers=1)
    x, y = loader[0]
    assert x.shape == (1, 16, 16, 3)
    assert np.array_equal(x[0], load_rgb(index.paths[2], 16).astype(np.float32))
    assert y.argmax(1).tolist() == [0]  # file 2's own label
    assert len(loader.skipped.as_list()) == 2


def test_last_batch_of_bad_files_borrows_from_the_start(tmp_path):
    index = _index_with(tmp_path, ["good", "good", "cut", "text"])
    loader = BatchLoader(index, 16, batch_size=2, workers=1)
    x, y = loader[1]
    assert x.shape == (1, 16, 16, 3)
    assert np.array_equal(x[0], load_rgb(index.paths[0], 16).astype(np.float32))


def test_a_split_with_no_readable_image_is_a_user_error(tmp_path):
    index = _index_with(tmp_path, ["text", "empty", "cut"])
    loader = BatchLoader(index, 16, batch_size=2, workers=1)
    with pytest.raises(UserError, match="no readable image in split 'train'"):
        loader[0]


def test_an_empty_split_is_a_user_error():
    empty = SplitIndex("valid", ["A"], [], np.zeros(0, np.int64))
    with pytest.raises(UserError, match="split 'valid' has no images"):
        BatchLoader(empty, 16, batch_size=2)


def test_bad_files_in_a_folder_data_set_go_through_keras_workers(small_dataset):
    """Through PyDataset's threaded iterator (what model.fit uses): bad files skipped, never a crash."""
    folder = small_dataset / "train" / "BLACK SWAN"
    (folder / "zz_text.jpg").write_text("nope")
    (folder / "zz_empty.jpg").write_bytes(b"")
    index = folder_source(small_dataset)["train"]
    assert len(index) == 14
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    loader = BatchLoader(index, 16, batch_size=4, shuffle=True, workers=2, seed=1)
    adapter = PyDatasetAdapter(loader)
    assert adapter.enqueuer is not None  # really the threaded path
    seen, labels = 0, []
    for x, y in adapter.get_numpy_iterator():
        assert x.shape[1:] == (16, 16, 3) and len(x) == len(y)
        seen += len(x)
        labels += y.argmax(1).tolist()
    assert seen == 12
    assert sorted(labels) == [0] * 4 + [1] * 4 + [2] * 4  # the 4 good images of each class
    assert sorted(Path(r["path"]).name for r in loader.skipped.as_list()) == ["zz_empty.jpg", "zz_text.jpg"]
