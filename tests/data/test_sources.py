"""Image sources: Kaggle-layout folders, exclude lists, and Hub data sets (no network)."""
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from keras_birds.data import sources
from keras_birds.data.sources import (
    folder_source,
    hub_source,
    load_source,
    materialize_hub_dataset,
    read_exclude_file,
)
from keras_birds.errors import UserError

NAMES = ["BLACK SWAN", "MANDRIN DUCK", "PARAKETT  AUKLET"]


# -- folders -----------------------------------------------------------------------------------
def test_class_names_are_sorted_folder_names_and_labels_match_paths(tmp_path, make_dataset):
    # Written in non-sorted order; names with spaces/hyphens kept verbatim.
    names = ["ZEBRA DOVE", "BLACK-THROATED SPARROW", "ALBATROSS", "MANDRIN DUCK"]
    root = make_dataset(tmp_path, names, {"train": 3, "valid": 2, "test": 1}, size=16)
    index = folder_source(root)
    assert set(index) == {"train", "valid", "test"}
    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        idx = index[split]
        assert idx.split == split
        assert idx.class_names == sorted(names)
        assert len(idx) == len(idx.paths) == len(idx.labels) == n * len(names)
        assert idx.labels.dtype == np.int64
        for path, label in zip(idx.paths, idx.labels):
            p = Path(path)
            assert p.parent.parent == root / split
            assert p.parent.name == idx.class_names[label]
        assert np.bincount(idx.labels).tolist() == [n] * len(names)


def test_hidden_and_non_image_files_are_not_indexed(small_dataset):
    folder = small_dataset / "train" / NAMES[0]
    (folder / ".DS_Store").write_bytes(b"junk")
    (folder / "notes.txt").write_text("not an image")
    (small_dataset / "train" / ".cache").mkdir()
    (folder / "UPPER.JPG").write_bytes((folder / "000.jpg").read_bytes())
    idx = folder_source(small_dataset)["train"]
    names = {Path(p).name for p in idx.paths if Path(p).parent == folder}
    assert names == {"000.jpg", "001.jpg", "002.jpg", "003.jpg", "UPPER.JPG"}
    assert idx.class_names == NAMES


def test_differing_class_lists_name_missing_and_extra(small_dataset):
    shutil.rmtree(small_dataset / "valid" / "MANDRIN DUCK")
    extra = small_dataset / "valid" / "ROBIN"
    extra.mkdir()
    shutil.copy(small_dataset / "valid" / NAMES[0] / "000.jpg", extra / "000.jpg")
    with pytest.raises(UserError) as e:
        folder_source(small_dataset)
    msg = str(e.value)
    assert "missing in valid: MANDRIN DUCK" in msg
    assert "extra in valid: ROBIN" in msg


def test_class_missing_from_test_split_only(small_dataset):
    shutil.rmtree(small_dataset / "test" / "BLACK SWAN")
    with pytest.raises(UserError, match="missing in test: BLACK SWAN; extra in test: none"):
        folder_source(small_dataset)


def test_missing_root_is_a_user_error_with_the_path(tmp_path):
    missing = tmp_path / "no such folder"
    with pytest.raises(UserError, match="does not exist") as e:
        folder_source(missing)
    assert str(missing) in str(e.value)


def test_missing_split_is_a_user_error_with_the_path(small_dataset):
    shutil.rmtree(small_dataset / "valid")
    with pytest.raises(UserError) as e:
        folder_source(small_dataset)
    assert str(small_dataset) in str(e.value)
    assert "'valid'" in str(e.value)
    assert "found: test, train" in str(e.value)


@pytest.mark.parametrize("how", ["no class folders", "empty class folders", "only non-images"])
def test_empty_split_is_a_user_error_with_the_path(small_dataset, how):
    test_dir = small_dataset / "test"
    shutil.rmtree(test_dir)
    test_dir.mkdir()
    if how != "no class folders":
        for name in NAMES:
            (test_dir / name).mkdir()
            if how == "only non-images":
                (test_dir / name / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="holds no species folders with images") as e:
        folder_source(small_dataset)
    assert str(test_dir) in str(e.value)


def test_load_source_reads_a_folder(small_dataset):
    index = load_source(str(small_dataset))
    assert [len(index[s]) for s in ("train", "valid", "test")] == [12, 6, 6]


def test_birds_mini_loads(birds_mini):
    index = load_source(str(birds_mini))
    assert [len(index[s]) for s in ("train", "valid", "test")] == [75, 25, 25]
    classes = index["train"].class_names
    assert len(classes) == 25
    assert classes == sorted(os.listdir(birds_mini / "train"))
    assert "MANDRIN DUCK" in classes and "TRUMPTER SWAN" in classes  # Kaggle's typos kept verbatim
    for split in ("valid", "test"):
        assert index[split].class_names == classes
        assert np.bincount(index[split].labels, minlength=25).tolist() == [1] * 25
    assert np.bincount(index["train"].labels, minlength=25).tolist() == [3] * 25


# -- exclude lists ------------------------------------------------------------------------------
def test_exclude_file_drops_exactly_the_listed_files(small_dataset, tmp_path, monkeypatch):
    full = folder_source(small_dataset)
    drop_abs = [full["train"].paths[0], full["train"].paths[5], full["valid"].paths[3]]
    # One entry relative to the working directory, plus comments, blanks and a path that is not in the data.
    monkeypatch.chdir(small_dataset)
    rel = os.path.relpath(full["test"].paths[-1], small_dataset)
    exclude = tmp_path / "exclude.txt"
    exclude.write_text(
        "# files flagged by clean\n\n"
        + "\n".join(drop_abs)
        + f"\n{rel}   # relative to the cwd\n{tmp_path / 'not-there.jpg'}\n"
    )
    excluded = read_exclude_file(exclude)
    assert excluded == {os.path.abspath(p) for p in drop_abs + [rel, str(tmp_path / "not-there.jpg")]}

    index = load_source(str(small_dataset), exclude=excluded)
    dropped = set(drop_abs) | {full["test"].paths[-1]}
    for split in ("train", "valid", "test"):
        before, after = full[split], index[split]
        kept = [p for p in before.paths if p not in dropped]
        assert after.paths == kept
        assert after.class_names == before.class_names
        # labels still belong to their paths
        assert [after.class_names[l] for l in after.labels] == [Path(p).parent.name for p in after.paths]
    assert len(index["train"]) == 10 and len(index["valid"]) == 5 and len(index["test"]) == 5


def test_exclude_file_edge_cases(tmp_path):
    assert read_exclude_file("") == set()
    assert read_exclude_file(None) == set()
    with pytest.raises(UserError, match="does not exist") as e:
        read_exclude_file(tmp_path / "nope.txt")
    assert str(tmp_path / "nope.txt") in str(e.value)


def test_exclude_set_without_matches_changes_nothing(small_dataset):
    full = folder_source(small_dataset)
    index = load_source(str(small_dataset), exclude={"/elsewhere/1.jpg"})
    for split in full:
        assert index[split].paths == full[split].paths
        assert index[split].labels.tolist() == full[split].labels.tolist()


# -- Hugging Face Hub data sets, built in memory ------------------------------------------------
def _hub_split(n_per_class, names=NAMES, label_col="label", image_col="image", seed=0):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for ci in range(len(names)):
        for _ in range(n_per_class):
            # odd sizes and an RGBA image: the cache must still be RGB JPEGs
            arr = rng.integers(0, 255, (12 + ci, 9, 3), dtype=np.uint8)
            img = Image.fromarray(arr)
            images.append(img.convert("RGBA") if ci == 1 else img)
            labels.append(ci)
    features = datasets.Features({image_col: datasets.Image(), label_col: datasets.ClassLabel(names=list(names))})
    return datasets.Dataset.from_dict({image_col: images, label_col: labels}, features=features)


def _hub_dict(**overrides):
    splits = {"train": _hub_split(3), "validation": _hub_split(2, seed=1), "test": _hub_split(1, seed=2)}
    splits.update(overrides)
    return datasets.DatasetDict({k: v for k, v in splits.items() if v is not None})


def test_materialize_writes_kaggle_layout_that_folder_source_reads(tmp_path):
    out = tmp_path / "cache"
    assert materialize_hub_dataset(_hub_dict(), out, progress=False) == out
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "valid"]  # no .partial left
    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        assert sorted(p.name for p in (out / split).iterdir()) == sorted(NAMES)
        for name in NAMES:
            files = list((out / split / name).iterdir())
            assert len(files) == n
            for f in files:
                with Image.open(f) as im:
                    assert im.format == "JPEG" and im.mode == "RGB"
    index = folder_source(out)
    assert index["train"].class_names == sorted(NAMES)
    assert [len(index[s]) for s in ("train", "valid", "test")] == [9, 6, 3]


def test_materialize_maps_hub_labels_to_the_right_folders(tmp_path):
    # Hub label order differs from sorted order: the folder, not the label id, must carry the name.
    names = ["ZEBRA DOVE", "ALBATROSS"]
    solid = {0: (250, 10, 10), 1: (10, 10, 250)}
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})

    def split():
        imgs = [Image.new("RGB", (16, 16), solid[c]) for c in (0, 1)]
        return datasets.Dataset.from_dict({"image": imgs, "label": [0, 1]}, features=feats)

    out = tmp_path / "cache"
    materialize_hub_dataset(datasets.DatasetDict(train=split(), validation=split(), test=split()), out, progress=False)
    for name, colour in (("ZEBRA DOVE", solid[0]), ("ALBATROSS", solid[1])):
        (f,) = list((out / "train" / name).iterdir())
        mean = np.asarray(Image.open(f)).reshape(-1, 3).mean(0)
        assert np.allclose(mean, colour, atol=8)


def test_materialize_accepts_img_and_labels_column_names(tmp_path):
    dd = datasets.DatasetDict(
        train=_hub_split(1, label_col="labels", image_col="img"),
        valid=_hub_split(1, label_col="labels", image_col="img"),
        test=_hub_split(1, label_col="labels", image_col="img"),
    )
    index = folder_source(materialize_hub_dataset(dd, tmp_path / "c", progress=False))
    assert [len(index[s]) for s in ("train", "valid", "test")] == [3, 3, 3]


def test_materialize_missing_split_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"missing \['test'\]"):
        materialize_hub_dataset(_hub_dict(test=None), tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


def test_materialize_missing_label_column_is_a_user_error(tmp_path):
    no_label = _hub_split(1).remove_columns("label")
    with pytest.raises(UserError, match="need an image and a label column"):
        materialize_hub_dataset(_hub_dict(train=no_label), tmp_path / "c", progress=False)


def test_materialize_label_column_that_is_not_classlabel(tmp_path):
    plain = datasets.Dataset.from_dict(
        {"image": [Image.new("RGB", (8, 8))], "label": [0]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}),
    )
    with pytest.raises(UserError, match="not a ClassLabel"):
        materialize_hub_dataset(_hub_dict(train=plain), tmp_path / "c", progress=False)


def test_materialize_different_label_lists_is_a_user_error(tmp_path):
    other = _hub_split(1, names=["BLACK SWAN", "MANDRIN DUCK", "ROBIN"])
    with pytest.raises(UserError, match="different label list"):
        materialize_hub_dataset(_hub_dict(test=other), tmp_path / "c", progress=False)


def test_hub_source_offline_is_a_user_error_mentioning_data(tmp_path, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("Couldn't reach 'someone/birds' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as e:
        hub_source("someone/birds", cache_dir=tmp_path)
    msg = str(e.value)
    assert calls == [("someone/birds",)]
    assert "someone/birds" in msg and "--data" in msg and "ConnectionError" in msg
    assert "\n" not in msg
    # through load_source ("hf:" prefix) with the cache dir from the environment
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "env-cache"))
    with pytest.raises(UserError, match="--data"):
        load_source("hf:someone/birds")
    assert len(calls) == 2


def test_hub_source_downloads_once_then_reads_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_load(dataset_id):
        calls.append(dataset_id)
        return _hub_dict()

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(sources, "default_cache_dir", lambda: tmp_path / "cache")
    first = load_source("hf:someone/birds")
    second = load_source("hf:someone/birds")
    assert calls == ["someone/birds"]
    assert (tmp_path / "cache" / "hub" / "someone__birds" / "train").is_dir()
    for split in ("train", "valid", "test"):
        assert first[split].paths == second[split].paths
    assert first["train"].class_names == sorted(NAMES)
    assert [len(first[s]) for s in ("train", "valid", "test")] == [9, 6, 3]


def test_exclude_file_relative_lines_resolve_against_its_own_folder(small_dataset, tmp_path, monkeypatch):
    """What `keras-birds clean` writes: paths relative to the exclude file, valid from any working dir."""
    full = folder_source(small_dataset)
    report = tmp_path / "clean" / "report"
    report.mkdir(parents=True)
    target = full["valid"].paths[1]
    (report / "exclude.txt").write_text(f"{os.path.relpath(target, report)}  # leakage: exact copy in test\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    from keras_birds.data.sources import read_exclude_entries

    assert read_exclude_entries(report / "exclude.txt") == {os.path.abspath(target): "leakage: exact copy in test"}
    assert read_exclude_file(os.path.relpath(report / "exclude.txt")) == {os.path.abspath(target)}
    index = load_source(str(small_dataset), exclude=read_exclude_file(report / "exclude.txt"))
    assert len(index["valid"]) == len(full["valid"]) - 1 and target not in index["valid"].paths


# -- lenient indexing (what `clean` audits) -----------------------------------------------------
def test_lenient_folder_source_indexes_a_species_missing_from_splits(small_dataset):
    robin = small_dataset / "train" / "ROBIN"
    robin.mkdir()
    shutil.copy(small_dataset / "train" / NAMES[0] / "000.jpg", robin / "000.jpg")
    shutil.rmtree(small_dataset / "test" / "BLACK SWAN")
    # Training keeps refusing it, with the same message as before.
    with pytest.raises(UserError, match="missing in valid: ROBIN; extra in valid: none"):
        load_source(str(small_dataset))
    for index in (folder_source(small_dataset, strict=False), load_source(str(small_dataset), strict=False)):
        for split in ("train", "valid", "test"):
            idx = index[split]
            assert idx.class_names == sorted(NAMES + ["ROBIN"])  # one label numbering for every split
            assert [idx.class_names[l] for l in idx.labels] == [Path(p).parent.name for p in idx.paths]
        assert [len(index[s]) for s in ("train", "valid", "test")] == [13, 6, 4]
        assert str(robin / "000.jpg") in index["train"].paths


def test_hub_source_passes_lenient_mode_through(tmp_path, monkeypatch, make_dataset):
    # An already materialised Hub data set whose train split has one species more.
    root = make_dataset(tmp_path / "made", ["A BIRD"], 1, size=8)
    make_dataset(tmp_path / "made", ["B BIRD"], {"train": 1}, size=8)
    (tmp_path / "cache" / "hub").mkdir(parents=True)
    root.rename(tmp_path / "cache" / "hub" / "someone__birds")
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="class lists differ"):
        load_source("hf:someone/birds")
    index = load_source("hf:someone/birds", strict=False)
    assert index["test"].class_names == ["A BIRD", "B BIRD"] and len(index["train"]) == 2


# -- exclude lines: any legal file name round-trips ---------------------------------------------
TRICKY = [" lead space.jpg", "trail .jpg ", "dup#2.jpg", "a #b.jpg", "ümlaut ñ 鳥.jpg", 'q"uote.jpg', "back\\slash.jpg"]
# Names that only an absolute, hand-made list can hold here (they need not exist).
STRANGER = ["#lead hash.jpg", '"starts quoted.jpg', "new\nline.jpg", "tab\t.jpg", "cr\r.jpg", "nel\x85.jpg",
            "sep\u2028.jpg", "bad\udcffbyte.jpg"]


def test_exclude_lines_round_trip_any_file_name(tmp_path, monkeypatch):
    from keras_birds.data.sources import format_exclude_line, read_exclude_entries

    folder = tmp_path / "data" / "train" / "CROW"
    folder.mkdir(parents=True)
    report = tmp_path / "clean" / "report"
    report.mkdir(parents=True)
    expected, lines = {}, ["# written by the test"]
    for k, name in enumerate(TRICKY):
        (folder / name).write_bytes(b"x")
        absolute = str(folder / name)
        comment = f"exact_duplicates: copy of train/CROW/{name} #{k}"  # a '#' and the name in the comment too
        lines.append(format_exclude_line(os.path.relpath(absolute, report), comment))  # as clean writes them
        expected[absolute] = comment
    for k, name in enumerate(STRANGER):
        absolute = str(tmp_path / "elsewhere" / name)
        lines.append(format_exclude_line(absolute, f"hand-made {k}"))
        expected[absolute] = f"hand-made {k}"
    lines.append(format_exclude_line(str(tmp_path / "no comment.jpg")))
    expected[str(tmp_path / "no comment.jpg")] = ""
    (report / "exclude.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")  # one line per entry
    monkeypatch.chdir(tmp_path / "data")  # relative lines resolve against the file's own folder
    assert read_exclude_entries(report / "exclude.txt") == expected
    # Unambiguous paths stay plain, so the file reads well; others are JSON string literals.
    assert format_exclude_line("train/CROW/ümlaut ñ 鳥.jpg", "r") == "train/CROW/ümlaut ñ 鳥.jpg  # r"
    assert format_exclude_line("train/CROW/dup#2.jpg", "r") == '"train/CROW/dup#2.jpg"  # r'
    assert format_exclude_line("x.jpg", "two\nlines") == "x.jpg  # two lines"


def test_hand_written_exclude_lines_keep_a_hash_inside_a_name(tmp_path, monkeypatch):
    folder = tmp_path / "train" / "CROW"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("train/CROW/dup#2.jpg\n  train/CROW/a#b#c.jpg   # reason # more\n"
                                       "# whole-line comment\n   \n  #indented comment\n"
                                       '"q.jpg"#right after\n', encoding="utf-8")
    from keras_birds.data.sources import read_exclude_entries

    assert read_exclude_entries(tmp_path / "list.txt") == {
        str(folder / "dup#2.jpg"): "", str(folder / "a#b#c.jpg"): "reason # more",
        str(tmp_path / "q.jpg"): "right after"}


@pytest.mark.parametrize("line", ['"unterminated.jpg', '"a.jpg" trailing words'])
def test_bad_quoted_exclude_line_is_a_user_error(tmp_path, line):
    path = tmp_path / "list.txt"
    path.write_text(f"ok.jpg\n{line}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"list.txt line 2"):
        read_exclude_file(path)


# -- class names that cannot be folder names as they are (hf: and tfds: share the rule) ---------
def test_class_folder_names_are_safe_and_distinct():
    from keras_birds.data.layout import class_folder_names

    names = ["CROW/RAVEN", "a\\b", ".hidden", "..", "", "tab\there", "OK BIRD", "ok bird", "OK BIRD", "x" * 300]
    folders = class_folder_names(names)
    assert folders[:9] == ["CROW_RAVEN", "a_b", "_.hidden", "_..", "_", "tab_here", "OK BIRD", "ok bird (2)",
                           "OK BIRD (3)"]
    assert folders[9] == "x" * 200
    assert class_folder_names(NAMES) == NAMES  # ordinary names (double spaces too) are kept verbatim


def test_materialize_hub_class_name_with_a_slash(tmp_path):
    names = ["CROW/RAVEN", ".DOT BIRD"]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    split = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8), (200, 0, 0)), Image.new("RGB", (8, 8))],
                                        "label": [0, 1]}, features=feats)
    out = materialize_hub_dataset(datasets.DatasetDict(train=split, val=split, test=split), tmp_path / "c",
                                  progress=False)
    index = folder_source(out)
    assert index["valid"].class_names == ["CROW_RAVEN", "_.DOT BIRD"]  # 'val' is a validation split too
    (red,) = [p for p, l in zip(index["train"].paths, index["train"].labels) if l == 0]
    assert np.asarray(Image.open(red)).reshape(-1, 3).mean(0)[0] > 150
