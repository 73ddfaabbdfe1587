"""The `clean` command: output, defaults, and bad input as one `error:` line with exit code 2."""
import os

import numpy as np
import pytest
from click.testing import CliRunner

from keras_birds.cleaning.similar import near_pairs
from keras_birds.cli import main


def run(*args):
    return CliRunner().invoke(main, ["clean", *map(str, args)], catch_exceptions=False)


def test_clean_prints_the_table_and_writes_the_report(make_dataset, tmp_path, monkeypatch):
    root = make_dataset(tmp_path, ["A BIRD", "B-BIRD"], {"train": 3, "valid": 1, "test": 1}, size=40)
    (root / "test" / "A BIRD" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    monkeypatch.chdir(tmp_path)
    result = run("--data", root, "-q")
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.stdout and "exclude.txt: 1 files (unreadable 1)" in result.stdout
    out = tmp_path / "clean" / "data"  # default: clean/<data folder name>
    for name in ("report.md", "issues.csv", "exclude.txt", "audit.json", "sheets/unreadable.png"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("args, message", [
    (["--exclude-also", "blurry,fuzzy"], "--exclude-also: unknown issue type(s) fuzzy"),
    (["--out", "{data}/train/report"], "is inside the data folder"),
    (["--out", "{busy}"], "already holds files that are not a keras-birds clean report"),
])
def test_bad_input_is_one_error_line(make_dataset, tmp_path, args, message):
    root = make_dataset(tmp_path, 2, {"train": 2, "valid": 1, "test": 1}, size=32)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    args = [a.format(data=root, busy=busy) for a in args]
    result = run("--data", root, *args, "-q")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (root / "train" / "report").exists()


def test_missing_data_folder_is_a_user_error(tmp_path):
    result = run("--data", tmp_path / "nope", "--out", tmp_path / "r")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    h256 = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    h256[7] = h256[3]
    h256[250] = h256[3] ^ np.eye(32, dtype=np.uint8)[0]  # 1 bit apart
    h256[120] = h256[119]
    h256[120, -4:] = ~h256[119, -4:]  # 32 bits apart: the limit
    h256[200] = h256[19]
    h256[200, -5:] = ~h256[19, -5:]  # 40 bits: too far
    h64 = h256[:, :8]  # the pre-filter hash: equal for the planted pairs, as for real near copies
    bits = np.unpackbits(h256[:, None] ^ h256[None], axis=2).sum(2)
    expected = {(i, j, int(bits[i, j])) for i in range(300) for j in range(i + 1, 300) if bits[i, j] <= 32}
    found = set(near_pairs([h.tobytes().hex() for h in h64], [h.tobytes().hex() for h in h256], chunk_elems=1000))
    assert found == expected
    assert {(3, 7, 0), (3, 250, 1), (119, 120, 32)} <= found and (19, 200, 40) not in found


def test_any_image_mode_is_audited(make_dataset, tmp_path):
    """cleanvision alone crashes on an 'LA' image; greyscale modes must still count as grayscale."""
    from PIL import Image

    from keras_birds.cleaning.audit import audit

    root = make_dataset(tmp_path, ["A BIRD"], {"train": 2, "valid": 1, "test": 1}, size=48)
    rng = np.random.default_rng(1)
    folder = root / "train" / "A BIRD"
    colour = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    colour.convert("LA").save(folder / "la.png")
    colour.convert("RGBA").save(folder / "rgba.png")
    colour.convert("P").save(folder / "p.png")
    colour.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65535, (48, 48)).astype(np.uint16)).save(folder / "i16.png")
    result = audit(str(root), tmp_path / "out", jobs=1, progress=False, log=lambda *_: None)
    grey = {os.path.basename(f.file) for f in result.findings if f.issue == "grayscale"}
    assert grey == {"la.png", "i16.png"}
    assert not [f for f in result.findings if f.issue == "unreadable"]


def test_cleanvision_dataset_reaches_workers_without_its_file_lists():
    import pickle

    from keras_birds.cleaning.cv_dataset import CleanvisionFiles

    paths = [f"/data/train/SPECIES {i % 525}/{i:06d}.jpg" for i in range(20000)]
    ds = CleanvisionFiles(filepaths=paths, verbose=False)
    assert len(ds.index) == 20000
    assert len(pickle.dumps(ds)) < 5000  # cleanvision pickles it into every worker task


def test_clean_reports_a_species_missing_from_splits_and_audits_every_file(make_dataset, tmp_path):
    """A species folder only in train: training refuses the data set, clean reports it and audits on."""
    import json

    from keras_birds.data.sources import load_source
    from keras_birds.errors import UserError
    from keras_birds.recipe import Recipe
    from keras_birds.training.train import train

    root = make_dataset(tmp_path, ["A BIRD", "B-BIRD"], {"train": 3, "valid": 1, "test": 1}, size=40)
    make_dataset(tmp_path, ["ROBIN"], {"train": 2}, size=40, seed=1)  # into the same root, train only
    (root / "train" / "ROBIN" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    out = tmp_path / "report"
    result = run("--data", root, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert "species missing from a split: 1 (ROBIN: not in valid, test)" in result.stdout
    assert "exclude.txt: 1 files (unreadable 1)" in result.stdout  # ROBIN's own files were audited
    audit_json = json.loads((out / "audit.json").read_text())
    assert audit_json["images"] == {"train": 9, "valid": 2, "test": 2}
    assert audit_json["species_missing"] == {"ROBIN": {"missing_from": ["valid", "test"], "present_in": ["train"]}}
    md = (out / "report.md").read_text()
    assert "## Species missing from a split (1)" in md
    assert "- ROBIN: missing from valid, test (present in train)" in md
    # Training keeps refusing it, with the same error as before.
    with pytest.raises(UserError, match="class lists differ .* missing in valid: ROBIN; extra in valid: none"):
        load_source(str(root))
    with pytest.raises(UserError, match="class lists differ"):
        train(Recipe(model="resnet18", weights="none", data=str(root), image_size=32, epochs=(1, 0)),
              tmp_path / "run", verbose=0, log=lambda *_: None)
