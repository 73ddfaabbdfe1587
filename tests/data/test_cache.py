"""The uint8 array cache of a split (recipe field `cache`) and the `workers` default (usable cores)."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import keras_birds.data.cache as cache_mod
import keras_birds.data.loader as loader_mod
from keras_birds.data.cache import cache_key
from keras_birds.data.loader import BatchLoader, SkippedFiles, usable_workers
from keras_birds.data.sources import folder_source
from keras_birds.errors import UserError
from keras_birds.recipe import Recipe, apply_overrides

S = 32


def _no_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("decoded a file although the cache holds the split")

    monkeypatch.setattr(cache_mod, "load_rgb", boom)
    monkeypatch.setattr(loader_mod, "load_rgb", boom)


def _count_decodes(monkeypatch):
    calls = []
    real = cache_mod.load_rgb
    monkeypatch.setattr(cache_mod, "load_rgb", lambda p, s: calls.append(p) or real(p, s))
    return calls


def _all_batches(loader):
    batches = [loader[i] for i in range(len(loader))]
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def _same_batches(a, b):
    assert len(a) == len(b)
    for i in range(len(a)):
        (xa, ya), (xb, yb) = a[i], b[i]
        assert xa.dtype == xb.dtype and np.array_equal(xa, xb), f"batch {i}"
        assert np.array_equal(ya, yb), f"batch {i}"


@pytest.fixture
def data(make_dataset, tmp_path):
    # 40px files read at 32px: the cache holds the resized pixels, as the loader would make them
    return make_dataset(tmp_path, 3, {"train": 5, "valid": 2}, size=40)


def test_cached_batches_equal_decoded_ones(data, tmp_path):
    index = folder_source(data, splits=("train", "valid"))["train"]
    cached = BatchLoader(index, S, 4, shuffle=True, seed=3, workers=1, cache=tmp_path / "c")
    plain = BatchLoader(index, S, 4, shuffle=True, seed=3, workers=1)
    _same_batches(cached, plain)
    entry = cached.cached.folder
    assert entry.parent == tmp_path / "c" and entry.name == cache_key(index, S)
    images = np.load(entry / "images.npy", mmap_mode="r")
    assert isinstance(images, np.memmap) and images.shape == (15, S, S, 3) and images.dtype == np.uint8
    meta = json.loads((entry / "files.json").read_text())
    assert meta["files"] == [os.path.abspath(p) for p in index.paths] and meta["skipped"] == []
    assert np.array_equal(np.load(entry / "labels.npy"), index.labels)


def test_cached_batches_equal_decoded_ones_on_real_birds(birds_mini, tmp_path):
    index = folder_source(birds_mini)["valid"]
    cached = BatchLoader(index, 96, 16, workers=2, cache=tmp_path / "c")
    _same_batches(cached, BatchLoader(index, 96, 16, workers=1))


def test_fit_batches_as_torch_tensors_hold_the_same_pixels_and_a_cached_loader_reads_in_fits_thread(data, tmp_path):
    import torch

    index = folder_source(data, splits=("train", "valid"))["train"]
    cached = BatchLoader(index, S, 4, shuffle=True, seed=3, workers=2, cache=tmp_path / "c", as_tensors=True)
    plain = BatchLoader(index, S, 4, shuffle=True, seed=3, workers=2)
    for i in range(len(plain)):
        (xt, yt), (x, y) = cached[i], plain[i]
        assert isinstance(xt, torch.Tensor) and xt.dtype == torch.float32
        assert np.array_equal(xt.numpy(), x) and np.array_equal(yt.numpy(), y), f"batch {i}"
    assert cached.workers == 1 and plain.workers == 2  # 1 worker: Keras runs no thread pool for it


def test_true_means_the_default_folder_under_keras_birds_cache(data, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "home-cache"))
    index = folder_source(data, splits=("train", "valid"))["valid"]
    loader = BatchLoader(index, S, 4, workers=1, cache=True)
    assert loader.cached.folder.parent == tmp_path / "home-cache" / "arrays"


def test_a_second_loader_reuses_the_cache_without_decoding(data, tmp_path, monkeypatch):
    index = folder_source(data, splits=("train", "valid"))["train"]
    first = BatchLoader(index, S, 4, workers=1, cache=tmp_path / "c")
    expected = _all_batches(first)
    _no_decoding(monkeypatch)
    again = BatchLoader(folder_source(data, splits=("train", "valid"))["train"], S, 4, workers=2,
                        cache=tmp_path / "c")  # a later run: its own index of the same files
    got = _all_batches(again)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


@pytest.mark.parametrize("change", ["add", "remove", "modify", "touch", "size"])
def test_a_changed_split_is_rebuilt(data, tmp_path, monkeypatch, change):
    root = tmp_path / "c"
    index = folder_source(data, splits=("train", "valid"))["train"]
    old = BatchLoader(index, S, 4, workers=1, cache=root).cached.folder
    folder = data / "train" / "CLASS 01"
    size = S
    if change == "add":
        (folder / "new.jpg").write_bytes((folder / "000.jpg").read_bytes())
    elif change == "remove":
        (folder / "000.jpg").unlink()
    elif change == "modify":  # same name, other pixels
        from PIL import Image

        Image.new("RGB", (40, 40), (255, 0, 0)).save(folder / "001.jpg")
    elif change == "touch":
        st = os.stat(folder / "002.jpg")
        os.utime(folder / "002.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    else:
        size = 48
    calls = _count_decodes(monkeypatch)
    index = folder_source(data, splits=("train", "valid"))["train"]
    cached = BatchLoader(index, size, 4, workers=1, cache=root)
    assert cached.cached.folder != old and len(calls) == len(index)  # decoded again, whole
    _same_batches(cached, BatchLoader(index, size, 4, workers=1))


def _with_bad_file(data):
    (data / "train" / "CLASS 00" / "zz_broken.jpg").write_text("not a jpeg")
    return folder_source(data, splits=("train", "valid"))["train"]


def test_an_unreadable_file_is_skipped_and_listed_when_building_and_when_reusing(data, tmp_path, monkeypatch):
    index = _with_bad_file(data)
    plain = BatchLoader(index, S, 4, workers=1)
    _all_batches(plain)
    expected = plain.skipped.as_list()
    assert [Path(r["path"]).name for r in expected] == ["zz_broken.jpg"]

    building = BatchLoader(index, S, 4, workers=1, cache=tmp_path / "c")
    meta = json.loads((building.cached.folder / "files.json").read_text())
    assert [Path(r["path"]).name for r in meta["skipped"]] == ["zz_broken.jpg"]
    assert "UnidentifiedImageError" in meta["skipped"][0]["reason"]
    _same_batches(building, plain)
    assert building.skipped.as_list() == expected

    _no_decoding(monkeypatch)
    reusing = BatchLoader(index, S, 4, workers=1, cache=tmp_path / "c", skipped=SkippedFiles())
    _all_batches(reusing)
    assert reusing.skipped.as_list() == expected  # same path, same reason: skipped.json stays right


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_build_is_not_taken_as_complete(data, tmp_path, monkeypatch):
    root = tmp_path / "c"
    index = folder_source(data, splits=("train", "valid"))["train"]
    key = cache_key(index, S)
    # What a build killed mid-way leaves: a hidden temp folder of a dead process, half an array in it.
    half = root / f".building-{key}-{_dead_pid()}-x1y2"
    half.mkdir(parents=True)
    (half / "images.npy").write_bytes(b"\x93NUMPY" + b"\0" * 100)
    calls = _count_decodes(monkeypatch)
    loader = BatchLoader(index, S, 4, workers=1, cache=root)
    assert len(calls) == len(index) and loader.cached.folder == root / key
    assert not half.exists()  # cleared away, as its process is gone
    _same_batches(loader, BatchLoader(index, S, 4, workers=1))


@pytest.mark.parametrize("damage", ["no files.json", "short images.npy", "other files"])
def test_a_damaged_entry_is_rebuilt(data, tmp_path, monkeypatch, damage):
    root = tmp_path / "c"
    index = folder_source(data, splits=("train", "valid"))["train"]
    entry = BatchLoader(index, S, 4, workers=1, cache=root).cached.folder
    if damage == "no files.json":
        (entry / "files.json").unlink()
    elif damage == "short images.npy":
        blob = (entry / "images.npy").read_bytes()
        (entry / "images.npy").write_bytes(blob[: len(blob) // 2])
    else:
        meta = json.loads((entry / "files.json").read_text())
        (entry / "files.json").write_text(json.dumps({**meta, "files": meta["files"][::-1]}))
    calls = _count_decodes(monkeypatch)
    loader = BatchLoader(index, S, 4, workers=1, cache=root)
    assert len(calls) == len(index) and loader.cached.folder == entry
    _same_batches(loader, BatchLoader(index, S, 4, workers=1))


def test_workers_zero_means_the_usable_cores():
    cores = len(os.sched_getaffinity(0))
    assert Recipe().workers == 0 and usable_workers(0) == cores and usable_workers(3) == 3
    assert apply_overrides(Recipe(), {"workers": "0"}).workers == 0
    with pytest.raises(UserError, match="workers must be a whole number >= 0"):
        Recipe(workers=-1)


def test_the_cache_field():
    assert Recipe().cache is False
    assert apply_overrides(Recipe(), {"cache": "true"}).cache is True
    with pytest.raises(UserError, match="cache must be true or false"):
        Recipe(cache="yes")
    with pytest.raises(UserError, match="expected true or false"):
        apply_overrides(Recipe(), {"cache": "/some/folder"})


def test_train_with_cache_true(make_dataset, tmp_path, monkeypatch, repo_root):
    from keras_birds.cli import main

    data = make_dataset(tmp_path, 3, {"train": 8, "valid": 2, "test": 2}, size=40)
    (data / "valid" / "CLASS 02" / "zz_broken.jpg").write_text("not a jpeg")
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", str(repo_root / "recipes" / "effnet_lite0.py"), "--data", str(data), "--weights", "none",
            "--image-size", "32", "--epochs", "1,0", "--batch-size", "8", "--set", "cache=true", "--out", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    entries = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "arrays").iterdir())
    assert entries == ["train", "valid"]  # nothing hidden left behind either
    assert json.loads((out / "recipe.json").read_text())["cache"] is True
    skipped = json.loads((out / "skipped.json").read_text())
    assert [Path(r["path"]).name for r in skipped] == ["zz_broken.jpg"]
