"""What `eval --corruptions --unknown` measured: every figure is in `--json`, and a later `compare` of the
run neither rewrites nor loses it (report.json keeps robustness and open_set, `report` shows both)."""
import json
import os

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.recipe import Augment, Recipe
from keras_birds.run_dir import RunDir, atomic_save

SIZE = 32
N_NEW = 5


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def measured(birds_mini, tmp_path_factory):
    """A run of 20 birds-mini species (random-init Lite0 at 32 px, written by hand), `eval --json` of it with
    --corruptions fog --severity 3 --unknown (the other 5 species): (run, printed JSON, report folder)."""
    import keras

    from keras_birds.models.build import build_classifier

    root = tmp_path_factory.mktemp("kept")
    species = sorted(p.name for p in (birds_mini / "train").iterdir())
    for part, names in (("old", species[:-N_NEW]), ("new", species[-N_NEW:])):
        for split in ("train", "valid", "test"):
            (root / part / split).mkdir(parents=True)
            for name in names:
                os.symlink(birds_mini / split / name, root / part / split / name, target_is_directory=True)
    recipe = Recipe(model="efficientnet_lite0", weights="none", data=str(root / "old"), image_size=SIZE,
                    epochs=(1, 0), workers=1, augment=Augment(False, 0, 0, 0, 0, 0), name="old20")
    run = RunDir(root / "run")
    run.prepare(recipe.to_dict(), overwrite=False)
    run.write_classes(species[:-N_NEW])
    keras.utils.set_random_seed(0)
    model = build_classifier("efficientnet_lite0", len(species) - N_NEW, "none", image_size=SIZE)
    atomic_save(run.model_keras, model.save)
    result = cli("eval", run.path, "--corruptions", "fog", "--severity", "3", "--unknown", root / "new",
                 "--latency-runs", "0", "-q", "--json")
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout), run.eval_dir / "model.keras-test"


def test_json_carries_every_figure_of_report_json(measured):
    _, printed, folder = measured
    written = json.loads((folder / "report.json").read_text())
    assert printed == written
    assert printed["robustness"]["top1"]["fog"]["3"] is not None and printed["open_set"]["scores"]
    assert printed["per_class"] and printed["calibration"]["bins"]


def test_compare_keeps_what_eval_measured(measured, tmp_path):
    run, printed, folder = measured
    result = cli("compare", run.path, "--latency-runs", "2", "-q", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    kept = json.loads((folder / "report.json").read_text())
    assert kept["open_set"] == printed["open_set"] and kept["robustness"] == printed["robustness"]
    row = json.loads((tmp_path / "c" / "comparison.json").read_text())["rows"][0]
    assert row["corruption_top1"] == printed["mean_corruption_top1"]  # compare still finds eval's robustness
    page = cli("report", run.path, "--comparison", tmp_path / "c", "--out", tmp_path / "page")
    assert page.exit_code == 0, page.output
    assert "Robustness and unknown species" not in page.stderr  # no "not measured" line for the section
    html = (tmp_path / "page" / "report.html").read_text()
    auroc = printed["open_set"]["scores"]["max_probability"]["auroc"]
    assert f'data-value="{auroc}"' in html and f'data-value="{printed["mean_corruption_top1"]}"' in html
