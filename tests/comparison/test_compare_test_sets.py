"""compare records what each row was scored on (data, split, species, images) and ranks only rows scored
on the same images: a 20-species run on 20 test images and a 25-species run on 25 get no recommendation."""
import json
import os

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE = 32


def _run(path, data, names):
    """A finished run written by hand: random-init Lite0 at 32 px (its figures do not matter here)."""
    import keras

    from keras_birds.models.build import build_classifier

    recipe = Recipe(model="efficientnet_lite0", weights="none", data=str(data), image_size=SIZE, epochs=(1, 0),
                    workers=1, augment=Augment(False, 0, 0, 0, 0, 0), name=path.name)
    run = RunDir(path)
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(names)
    keras.utils.set_random_seed(0)
    atomic_save(run.model_keras, build_classifier("efficientnet_lite0", len(names), "none", image_size=SIZE).save)
    return run


@pytest.fixture(scope="module")
def two_test_sets(birds_mini, tmp_path_factory):
    """(run on 20 species of birds-mini, run on all 25, the 20-species data folder)."""
    root = tmp_path_factory.mktemp("test_sets")
    species = sorted(p.name for p in (birds_mini / "train").iterdir())
    for split in ("train", "valid", "test"):
        (root / "old20" / split).mkdir(parents=True)
        for name in species[:20]:
            os.symlink(birds_mini / split / name, root / "old20" / split / name, target_is_directory=True)
    return _run(root / "run20", root / "old20", species[:20]), _run(root / "run25", birds_mini, species), root / "old20"


def test_rows_scored_on_different_images_are_not_ranked(two_test_sets, birds_mini, tmp_path):
    run20, run25, old20 = two_test_sets
    result = CliRunner().invoke(main, ["compare", str(run20.path), str(run25.path), "--latency-runs", "2", "-q",
                                       "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "c" / "comparison.json").read_text())
    got = [(r["data"], r["split"], r["n_classes"], r["n_images"]) for r in saved["rows"]]
    assert got == [(str(old20.resolve()), "test", 20, 20), (str(birds_mini), "test", 25, 25)]
    assert saved["recommended"] is None and "different images" in saved["not_ranked"]
    assert "**Recommended:** none" in result.stdout and "different images" in result.stdout
    assert "warning:" in result.stderr and "different images" in result.stderr  # said loudly, not only in the file
    assert "| 20 | 20 |" in result.stdout and "| 25 | 25 |" in result.stdout  # species and images shown per row
    # The page says why there is no pick, and takes each run's figures from compare's own eval reports (it wrote
    # none into the runs' eval/ folders).
    from keras_birds.reporting.study import write_report

    assert not run20.eval_dir.exists() and not run25.eval_dir.exists()
    page = write_report([run20.path, run25.path], comparison=tmp_path / "c", out=tmp_path / "page")
    missing = dict(page.not_measured)
    assert "different images" in missing["Recommendation"] and "Per species" not in missing
    assert "test images" in page.markdown.read_text()


def test_rows_scored_on_the_same_images_are_ranked():
    from keras_birds.comparison.table import new_row, pick, to_markdown

    same = dict(data="/d", split="test", n_classes=3, n_images=9, images="abc")
    rows = [new_row(name="a", format="keras", top1=0.9, size_mb=5.0, latency_ms=2.0, **same),
            new_row(name="b", format="keras", top1=0.8, size_mb=1.0, latency_ms=1.0, **same)]
    assert pick(rows)["recommended"]["row"]["name"] == "a"
    rows[1].update(images="xyz", n_images=8)
    assert pick(rows)["recommended"] is None
    md = to_markdown(rows, "test")
    assert "**Recommended:** none" in md and "different images" in md
