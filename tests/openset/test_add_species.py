"""add-species on real birds-mini images: 5 species added to a run trained on the other 20."""
import contextlib
import hashlib
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.openset.add_species import add_species


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _model(run_path):
    import keras

    return keras.saving.load_model(run_path / "model.keras", compile=False)


@pytest.fixture(scope="module")
def grown(old_run, mini_split, tmp_path_factory):
    """(the add-species result with --keep-old-rows, the old run's file digests before it ran, its stderr)."""
    before = _digests(old_run.path)
    with contextlib.redirect_stderr(io.StringIO()) as said:  # the progress bars
        result = add_species(old_run.path, mini_split[1], tmp_path_factory.mktemp("grown") / "plus5",
                             keep_old_rows=True, log=lambda *_: None)
    return result, before, said.getvalue()


def test_old_rows_stay_bit_identical_and_the_old_run_untouched(grown, old_run, mini_split):
    result, before, _ = grown
    _, _, old_names, new_names = mini_split
    assert _digests(old_run.path) == before
    classes = (result.out_dir / "classes.txt").read_text().splitlines()
    assert classes == sorted(old_names + new_names)
    old, new = _model(old_run.path), _model(result.out_dir)
    (k_old, b_old), (k_new, b_new) = old.get_layer("head").get_weights(), new.get_layer("head").get_weights()
    at = {n: i for i, n in enumerate(classes)}
    for i, name in enumerate(old_names):
        assert np.array_equal(k_new[:, at[name]], k_old[:, i]) and b_new[at[name]] == b_old[i], name
    for a, b in zip(old.get_layer("backbone").get_weights(), new.get_layer("backbone").get_weights()):
        assert np.array_equal(a, b)
    report = json.loads((result.out_dir / "added_species.json").read_text())
    assert report["keep_old_rows"] and report["method"] in ("imprint", "probe") and "probe_all" not in report["candidates"]
    assert report["old_images_used"] and report["added"] == new_names


def test_the_new_run_names_the_new_species_in_eval_and_predict(grown, mini_split):
    from keras_birds.evaluation.evaluate import evaluate
    from keras_birds.prediction.predict import predict

    result, _, _ = grown
    new_root, new_names = mini_split[1], mini_split[3]
    # Its data is a tree of links to both data sets: eval needs no --data.
    assert os.path.islink(result.out_dir / "data" / "train" / new_names[0])
    report = evaluate(result.out_dir, split="test", latency_runs=0, progress=False)
    assert report["n_classes"] == 25 and report["n_images"] == 25 and report["data"] == str(result.out_dir / "data")
    per_class = {c["class"]: c for c in report["per_class"]}
    assert sum(per_class[n]["correct"] for n in new_names) >= 3
    photos = [new_root / "test" / n / "5.jpg" for n in new_names]
    preds = predict(photos, result.out_dir, top_k=1, threshold=0.0, progress=False)
    named = [r["species"] for r in preds.results]
    assert sum(a == b for a, b in zip(named, new_names)) >= 3, named


def test_bad_inputs_are_one_line_errors(old_run, mini_split, tmp_path):
    old_root, _, old_names, _ = mini_split
    known = tmp_path / "known" / "train"
    known.mkdir(parents=True)
    os.symlink(old_root / "train" / old_names[0], known / old_names[0].lower())
    with pytest.raises(UserError, match=f"already one of the run's classes \\('{old_names[0]}'\\)"):
        add_species(old_run.path, known.parent, tmp_path / "a", log=lambda *_: None)
    (tmp_path / "empty" / "train" / "NEW BIRD").mkdir(parents=True)
    with pytest.raises(UserError, match="NEW BIRD holds no images"):
        add_species(old_run.path, tmp_path / "empty", tmp_path / "b", log=lambda *_: None)
    with pytest.raises(UserError, match="is the old run itself"):
        add_species(old_run.path, mini_split[1], old_run.path, log=lambda *_: None)
    # A run whose model does not take its recipe's input size.
    odd = tmp_path / "odd_run"
    odd.mkdir()
    recipe = json.loads((old_run.path / "recipe.json").read_text())
    (odd / "recipe.json").write_text(json.dumps({**recipe, "image_size": 128}))
    (odd / "classes.txt").write_text((old_run.path / "classes.txt").read_text())
    os.symlink(old_run.path / "model.keras", odd / "model.keras")
    with pytest.raises(UserError, match="takes 96x96 images but .* says image_size 128"):
        add_species(odd, mini_split[1], tmp_path / "c", log=lambda *_: None)
    assert not any((tmp_path / n).exists() for n in "abc")  # nothing half-written
    result = CliRunner().invoke(main, ["add-species", str(old_run.path), "--data", str(tmp_path / "empty")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_add_species_shows_its_forward_passes_and_q_silences_them(grown, old_run, mini_split, tmp_path):
    """Issue 29, 7: add-species had no -q (and its feature passes no progress)."""
    loud = grown[2].replace("\r", "\n").splitlines()
    assert any("features" in line and "%|" in line for line in loud), grown[2]
    res = CliRunner().invoke(main, ["add-species", str(old_run.path), "--data", str(mini_split[1]), "--out",
                                    str(tmp_path / "quiet"), "--method", "imprint", "-q"])
    assert res.exit_code == 0, res.output
    assert "%|" not in res.stderr and "\r" not in res.stderr, res.stderr
    assert "adding 5 species" in res.stderr  # -q silences the bars, not what the command says


def test_old_images_are_capped_per_species_so_the_cost_stays_flat(old_run, mini_split, tmp_path, monkeypatch):
    """Issue 33: add-species sent every old train image through the frozen network and into a full-batch probe
    (BIRDS-525: 84,635 images, 32 min and 5 GB); now at most --old-images-per-species of each old species."""
    import keras_birds.openset.add_species as module
    from keras_birds.openset.add_species import add_species

    seen = []
    real = module.extract_features

    def counting(model, loaders, **kw):
        seen.append(sum(len(loader.index) for loader in loaders))
        return real(model, loaders, **kw)

    monkeypatch.setattr(module, "extract_features", counting)
    old_root, new_root, old_names, new_names = mini_split
    per_species = [len(list((old_root / "train" / n).iterdir())) for n in old_names]
    assert min(per_species) >= 3  # so a cap of 2 leaves images out of every species
    result = add_species(old_run.path, new_root, tmp_path / "capped", method="probe", old_per_species=2,
                         log=lambda *_: None, progress=False)
    new_train = sum(len(list((new_root / "train" / n).iterdir())) for n in new_names)
    assert seen == [new_train, 2 * len(old_names)]  # the new photos (views=0: 1 loader), then 2 per old species
    assert result.report["old_train_images"] == 2 * len(old_names)
