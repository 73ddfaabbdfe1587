"""tools/make_synthetic_birds.py: a BIRDS-525-shaped folder of real, re-encoded JPEGs from ../shared/data."""
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from keras_birds.data.sources import folder_source

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
TOOL = REPO / "tools" / "make_synthetic_birds.py"


@pytest.fixture(scope="module")
def tool(load_tool):
    if not (SHARED_DATA / "birds-dev" / "train").is_dir():
        pytest.skip(f"{SHARED_DATA / 'birds-dev'} not present")
    return load_tool("make_synthetic_birds")


def _digests(paths):
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_a_small_run_gives_the_layout_of_decodable_new_jpegs(tool, tmp_path):
    root = tmp_path / "synth"
    cmd = [sys.executable, str(TOOL), str(root), "--species", "30", "--per-species", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "180 JPEGs written" in done.stdout  # 30 species x (2 train + 2 valid + 2 test)
    index = folder_source(root)  # the loader's own reading: same species in every split
    expected = sorted(tool.source_species(SHARED_DATA))[:30]
    for split in ("train", "valid", "test"):
        assert index[split].class_names == expected and len(index[split]) == 60
    files = sorted(root.rglob("*.jpg"))
    for path in files:
        with Image.open(path) as img:
            img.load()
            assert img.format == "JPEG" and img.size == (224, 224) and img.mode == "RGB"
    sources = [p for p in SHARED_DATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert not _digests(files) & _digests(sources)  # no byte copies
    assert len(_digests(files)) == len(files)
    # Idempotent: a second run keeps every file as it is.
    before = {p: p.read_bytes() for p in files}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 JPEGs written, 180 already there" in again.stdout
    assert {p: p.read_bytes() for p in sorted(root.rglob("*.jpg"))} == before
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_species_beyond_the_sources_are_synth_n(tool, tmp_path):
    source = SHARED_DATA / "birds-dev"
    n_real = len(tool.source_species(source))
    r = tool.make(tmp_path / "s", species=n_real + 3, per_species=1, size=64, source=source, progress=False)
    assert r["written"] == (n_real + 3) * 3
    names = folder_source(tmp_path / "s")["train"].class_names
    assert {f"SYNTH {n_real + k}" for k in (1, 2, 3)} <= set(names) and len(names) == n_real + 3
    with Image.open(tmp_path / "s" / "valid" / f"SYNTH {n_real + 1}" / "0000.jpg") as img:
        assert img.size == (64, 64)
