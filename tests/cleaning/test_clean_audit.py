"""`keras-birds clean` on a copy of birds-mini with one of each fault injected, and training on its
exclude list. The real images are copied into the test's tmp dir; nothing is written to ../shared."""
import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from keras_birds.cleaning import audit as audit_mod
from keras_birds.cleaning.audit import audit
from keras_birds.data.sources import exclude_reason, folder_source, load_source, read_exclude_entries, read_exclude_file

# Each injected fault: (relative path in the faulty copy, issue type it must be reported under).
LEAK_SRC, LEAK_COPY = "train/BALD EAGLE/1.jpg", "test/BALD EAGLE/leaked.jpg"
CONFLICT_SRC, CONFLICT_COPY = "train/CROW/2.jpg", "train/ROCK DOVE/conflict.jpg"
BLURRED = "train/TRUMPTER SWAN/3.jpg"  # cleanvision misses strong blur on busy, colourful images (OSTRICH)
TINY = "valid/PEACOCK/4.jpg"
TRUNCATED = "train/SNOWY OWL/1.jpg"
GRAY = "test/BARN OWL/5.jpg"
TEXT = "valid/WOOD DUCK/notes.jpg"
INJECTED = {
    (LEAK_SRC, "leakage"), (LEAK_COPY, "leakage"),
    (CONFLICT_SRC, "label_conflict"), (CONFLICT_COPY, "label_conflict"),
    (CONFLICT_SRC, "exact_duplicates"), (CONFLICT_COPY, "exact_duplicates"),
    (BLURRED, "blurry"), (TINY, "odd_size"), (TRUNCATED, "unreadable"), (GRAY, "grayscale"), (TEXT, "unreadable"),
}
# What exclude.txt must hold, with each file's first reason.
EXPECTED_EXCLUDED = {
    TRUNCATED: "unreadable", TEXT: "unreadable",
    CONFLICT_SRC: "label_conflict", CONFLICT_COPY: "label_conflict",
    LEAK_SRC: "leakage",  # the train side only: test stays as published
}
JAY = {f"{s}/PLUSH CRESTED JAY/{n}.jpg" for s, n in (("train", 1), ("train", 2), ("train", 3), ("valid", 4), ("test", 5))}


def make_faulty_copy(birds_mini, root: Path) -> Path:
    shutil.copytree(birds_mini, root)
    shutil.copy(root / LEAK_SRC, root / LEAK_COPY)
    shutil.copy(root / CONFLICT_SRC, root / CONFLICT_COPY)
    with Image.open(root / BLURRED) as img:
        img.convert("RGB").filter(ImageFilter.GaussianBlur(8)).save(root / BLURRED, quality=95)
    with Image.open(root / TINY) as img:
        img.convert("RGB").resize((40, 40), Image.BILINEAR).save(root / TINY, quality=95)
    data = (root / TRUNCATED).read_bytes()
    (root / TRUNCATED).write_bytes(data[: len(data) // 2])
    with Image.open(root / GRAY) as img:
        img.convert("L").save(root / GRAY, quality=95)
    (root / TEXT).write_text("field notes: not a picture\n")
    return root


@pytest.fixture(scope="module")
def faulty(birds_mini, tmp_path_factory):
    return make_faulty_copy(birds_mini, tmp_path_factory.mktemp("data") / "birds-faulty")


@pytest.fixture(scope="module")
def cleaned(faulty, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "report"
    result = audit(str(faulty), out, jobs=1, progress=False, log=lambda *_: None)
    return faulty, out, result


def rows(out):
    with open(out / "issues.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_injected_fault_is_reported_under_its_type(cleaned):
    root, out, result = cleaned
    reported = {(r["file"], r["issue"]) for r in rows(out)}
    assert INJECTED <= reported, INJECTED - reported
    # The untouched images: only the five PLUSH CRESTED JAY photos (not 224x224), as odd size.
    untouched = {(f, i) for f, i in reported if f not in {f for f, _ in INJECTED}}
    assert {f for f, i in untouched if i == "odd_size"} == JAY
    assert not {(f, i) for f, i in untouched if i != "odd_size"}, untouched
    by_key = {(r["file"], r["issue"]): r for r in rows(out)}
    assert by_key[(LEAK_COPY, "leakage")]["others"] == LEAK_SRC
    assert by_key[(CONFLICT_COPY, "label_conflict")]["species"] == "ROCK DOVE"
    assert "exact copy" in by_key[(CONFLICT_SRC, "label_conflict")]["detail"]
    assert by_key[(TINY, "odd_size")]["detail"] == "40x40"
    audit_json = json.loads((out / "audit.json").read_text())
    assert audit_json["issues"]["unreadable"] == {"train": 1, "valid": 1, "test": 0}
    assert audit_json["images"] == {"train": 76, "valid": 26, "test": 26}


def test_exclude_txt_lists_exactly_what_it_should(cleaned):
    root, out, result = cleaned
    entries = read_exclude_entries(out / "exclude.txt")
    expected = {os.path.abspath(root / p): reason for p, reason in EXPECTED_EXCLUDED.items()}
    assert set(entries) == set(expected)
    assert {p: exclude_reason(c) for p, c in entries.items()} == expected
    # Lines are relative to the report folder, so the list works from any working directory.
    lines = [line for line in (out / "exclude.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines and all(not os.path.isabs(line.split("#")[0].strip()) for line in lines)
    marked = {r["file"] for r in rows(out) if r["excluded"] == "yes"}
    assert marked == set(EXPECTED_EXCLUDED)


def test_exclude_also_adds_reported_types(cleaned, tmp_path):
    root, _, _ = cleaned
    result = audit(str(root), tmp_path / "r", exclude_also=("blurry", "odd_size", "grayscale"), jobs=1,
                   progress=False, log=lambda *_: None)
    rel = {os.path.relpath(p, root) for p in result.excluded}
    assert rel == set(EXPECTED_EXCLUDED) | {BLURRED, TINY, GRAY} | JAY


def test_report_md_and_sheets(cleaned):
    root, out, result = cleaned
    md = (out / "report.md").read_text()
    assert "| unreadable | 1 | 1 | 0 | 2 | 2 |" in md
    assert "| odd_size | 3 | 2 | 1 | 6 | 0 |" in md
    assert "PLUSH CRESTED JAY" in md and "## Species most affected" in md
    for issue in ("unreadable", "leakage", "label_conflict", "exact_duplicates", "blurry", "odd_size", "grayscale"):
        with Image.open(out / "sheets" / f"{issue}.png") as sheet:
            assert sheet.width >= 128 and sheet.height >= 128
    assert not (out / "sheets" / "dark.png").exists()
    assert not list(out.rglob("*.partial*"))


def test_train_with_exclude_skips_exactly_the_listed_files(cleaned, tmp_path):
    from keras_birds.recipe import Augment, Recipe
    from keras_birds.training.train import train

    root, out, _ = cleaned
    exclude = out / "exclude.txt"
    full, kept = load_source(str(root)), load_source(str(root), read_exclude_file(exclude))
    listed = set(read_exclude_file(exclude))
    for split in ("train", "valid", "test"):
        dropped = set(map(os.path.abspath, full[split].paths)) - set(map(os.path.abspath, kept[split].paths))
        assert dropped == {p for p in listed if p in set(map(os.path.abspath, full[split].paths))}
    recipe = Recipe(model="resnet18", weights="none", data=str(root), image_size=32, batch_size=8, epochs=(1, 0),
                    workers=1, dropout=0.0, exclude=str(exclude), augment=Augment(False, 0, 0, 0, 0, 0))
    run = train(recipe, tmp_path / "run", verbose=0, log=lambda *_: None)
    summary = json.loads(run.summary_json.read_text())
    assert summary["train_images"] == len(kept["train"]) == 76 - 4
    assert summary["valid_images"] == len(kept["valid"]) == 26 - 1
    assert summary["excluded_files"] == 5
    assert summary["excluded_by_split"] == {"train": 4, "valid": 1}
    assert summary["excluded_by_reason"] == {"label_conflict": 2, "leakage": 1, "unreadable": 2}
    assert summary["skipped_files"] == []  # the unreadable ones never reached the loader


def test_second_run_reuses_the_cache(cleaned, monkeypatch):
    root, out, first = cleaned

    def must_not_run(*a, **k):
        raise AssertionError("a finished split was audited again")

    monkeypatch.setattr(audit_mod, "run_cleanvision", must_not_run)
    monkeypatch.setattr(audit_mod, "scan_file", must_not_run)
    before = (out / "exclude.txt").read_text()
    again = audit(str(root), out, jobs=1, progress=False, log=lambda *_: None)
    assert again.timing["cached_splits"] == ["train", "valid", "test"] and again.timing["audited_images"] == 0
    assert (out / "exclude.txt").read_text() == before
    assert again.excluded == first.excluded


def test_interrupted_audit_redoes_only_unfinished_splits(make_dataset, tmp_path, monkeypatch):
    root = make_dataset(tmp_path, ["A BIRD", "B BIRD"], {"train": 3, "valid": 2, "test": 2}, size=48)
    calls, interrupt, real = [], [True], audit_mod.run_cleanvision

    def counting(paths, jobs):
        split = Path(paths[0]).parts[-3]
        calls.append(split)
        if split == "test" and interrupt[0]:
            raise KeyboardInterrupt  # Ctrl-C while the last split is being checked
        return real(paths, jobs)

    monkeypatch.setattr(audit_mod, "run_cleanvision", counting)
    with pytest.raises(KeyboardInterrupt):
        audit(str(root), tmp_path / "out", jobs=1, progress=False, log=lambda *_: None)
    assert calls == ["train", "valid", "test"]
    assert sorted(p.name for p in (tmp_path / "out" / ".cache").glob("*.json")) == ["train.json", "valid.json"]
    interrupt[0] = False
    calls.clear()
    audit(str(root), tmp_path / "out", jobs=1, progress=False, log=lambda *_: None)
    assert calls == ["test"]
    # A changed file invalidates its own split only.
    calls.clear()
    changed = folder_source(root)["valid"].paths[0]
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    audit(str(root), tmp_path / "out", jobs=1, progress=False, log=lambda *_: None)
    assert calls == ["valid"]


def test_exclude_txt_round_trips_tricky_file_names(make_dataset, tmp_path):
    """Copies and unreadable files under names with '#', spaces, quotes, a backslash, a tab, non-ASCII and non-UTF-8:
    exclude.txt must name exactly the files the audit excluded, and --exclude must drop them."""
    root = make_dataset(tmp_path, ["CROW", "ROBIN"], {"train": 3, "valid": 1, "test": 1}, size=40)
    crow = root / "train" / "CROW"
    # All copies sort after 000.jpg, which stays. os.fsdecode: a name that is not UTF-8 (bytes 0xff).
    copies = ["dup#2.jpg", "a #b.jpg", "ümlaut ñ 鳥.jpg", 'q"uote.jpg', "z trail .jpg", os.fsdecode(b"bad\xffbyte.jpg")]
    garbage = [" lead space.jpg", "back\\slash.jpg", "#hash first.jpg", "tab\tname.jpg"]
    for name in copies:
        (crow / name).write_bytes((crow / "000.jpg").read_bytes())
    for name in garbage:
        (crow / name).write_bytes(b"not a picture")
    out = tmp_path / "report"
    result = audit(str(root), out, jobs=1, progress=False, log=lambda *_: None)
    tricky = {os.path.abspath(crow / n) for n in copies + garbage}
    assert tricky <= set(result.excluded)
    assert {f.file for f in result.findings if f.issue == "exact_duplicates"} >= tricky - {
        os.path.abspath(crow / n) for n in garbage}
    listed = read_exclude_file(out / "exclude.txt")
    assert listed == set(result.excluded)
    kept = load_source(str(root))["train"].without(listed)
    assert not {os.path.abspath(p) for p in kept.paths} & listed
    assert len(kept) == len(load_source(str(root))["train"]) - len(listed)
