"""keras-birds predict on real birds-mini images: run directory vs its ONNX export, threshold, errors."""
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.prediction.predict import UNKNOWN, collect_images, predict


@pytest.fixture(scope="module")
def photos(birds_mini, tmp_path_factory):
    """Six real test images (in a folder with a sub-folder), with their true species."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    species = sorted(p.name for p in (birds_mini / "test").iterdir())[:6]
    truth = {}
    for i, name in enumerate(species):
        dest = folder / ("more" if i % 2 else ".") / f"{i}.jpg"
        shutil.copy(birds_mini / "test" / name / "5.jpg", dest)
        truth[str(dest.resolve())] = name
    return folder, truth


def _by_path(preds):
    return {str(Path(r["path"]).resolve()): r for r in preds.results}


def test_run_dir_and_its_onnx_export_give_the_same_answers(trained_tiny_run, photos):
    folder, truth = photos
    keras_preds = predict([folder], trained_tiny_run.path, top_k=3, progress=False)
    onnx_preds = predict([folder], trained_tiny_run.path / "export" / "model.onnx", top_k=3, progress=False)
    assert onnx_preds.kind == "onnx" and keras_preds.kind == "keras"
    k, o = _by_path(keras_preds), _by_path(onnx_preds)
    assert set(k) == set(o) == set(truth)  # the sub-folder was walked
    for path in truth:
        assert k[path]["species"] == o[path]["species"]
        assert k[path]["probability"] == pytest.approx(o[path]["probability"], abs=1e-3)
        probs = [t["probability"] for t in k[path]["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    # A trained model, not noise: most of these real photos get their species right.
    assert sum(k[p]["species"] == truth[p] for p in truth) >= 4


def test_threshold_turns_unsure_answers_into_unknown(trained_tiny_run, photos):
    folder, _ = photos
    sure = predict([folder], trained_tiny_run.path, top_k=1, progress=False).results
    top = sorted(r["probability"] for r in sure)
    cut = (top[0] + top[-1]) / 2  # between the least and the most confident image
    gated = {r["path"]: r for r in predict([folder], trained_tiny_run.path, top_k=1, threshold=cut,
                                           progress=False).results}
    for r in sure:
        expected = r["species"] if r["probability"] >= cut else UNKNOWN
        assert gated[r["path"]]["species"] == expected
        assert gated[r["path"]]["top_k"][0]["species"] == r["species"]  # the guess is still reported
    assert any(g["species"] == UNKNOWN for g in gated.values()) and any(g["species"] != UNKNOWN for g in gated.values())
    everything_unknown = predict([folder], trained_tiny_run.path, threshold=1.0, progress=False).results
    assert all(r["species"] == UNKNOWN for r in everything_unknown if r["probability"] < 1.0)


def test_unreadable_and_missing_files_are_reported_not_fatal(trained_tiny_run, photos, tmp_path):
    folder, truth = photos
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    preds = predict([bad, folder, tmp_path / "nope.jpg"], trained_tiny_run.path, progress=False)
    assert len(preds.results) == len(truth)
    errors = {e["path"]: e["error"] for e in preds.errors}
    assert errors[str(bad)].startswith("unreadable:")
    assert errors[str(tmp_path / "nope.jpg")] == "no such file or folder"


def test_nothing_to_predict_and_bad_options_are_one_line_errors(trained_tiny_run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image to predict: .*empty: folder holds no image files"):
        predict([tmp_path / "empty"], trained_tiny_run.path)
    with pytest.raises(UserError, match="--threshold"):
        predict([tmp_path], trained_tiny_run.path, threshold=1.5)
    with pytest.raises(UserError, match="--top-k"):
        predict([tmp_path], trained_tiny_run.path, top_k=0)


def test_collect_images_walks_folders_in_order_and_skips_hidden(tmp_path):
    for rel in ("b/2.jpg", "a/1.PNG", "a/notes.txt", ".hidden/3.jpg", "a/.4.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    files, errors = collect_images([tmp_path])
    assert files == [str(tmp_path / "a/1.PNG"), str(tmp_path / "b/2.jpg")] and errors == []


def test_collect_images_follows_links_to_folders_once(tmp_path, birds_mini):
    """add-species' data tree links species folders: predict must find their images, and a loop must end."""
    species = sorted((birds_mini / "test").iterdir())[0]
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / species.name).symlink_to(species)
    (tmp_path / "linked" / "loop").symlink_to(tmp_path / "linked")
    files, errors = collect_images([tmp_path / "linked"])
    assert files == [str(tmp_path / "linked" / species.name / p.name) for p in sorted(species.iterdir())]
    assert errors == [] and files


def test_cli_text_json_and_exit_code(trained_tiny_run, photos, tmp_path):
    folder, truth = photos
    one = next(iter(truth))
    res = CliRunner().invoke(main, ["predict", one, "--model", str(trained_tiny_run.path), "--top-k", "2", "-q"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"{one}: ") and lines[1].lstrip().startswith("1. ") and len(lines) == 3
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    res = CliRunner().invoke(main, ["predict", one, str(bad), "--model", str(trained_tiny_run.path / "export" / "model.onnx"),
                                    "--json", "--threshold", "0.01", "-q"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["kind"] == "onnx" and out["threshold"] == 0.01 and len(out["results"]) == 1
    assert out["errors"][0]["path"] == str(bad)
    top5 = [t["probability"] for t in out["results"][0]["top_k"]]
    assert len(top5) == 5 and 0 < sum(top5) <= 1 + 1e-6
    assert f"warning: {bad}: unreadable" in res.stderr


def test_cli_model_without_labels_is_one_line(trained_tiny_run, photos, tmp_path):
    import onnx

    folder, _ = photos
    bare = onnx.load(str(trained_tiny_run.path / "export" / "model.onnx"))
    del bare.metadata_props[:]  # no labels inside, no labels.txt beside it, no run around it
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    res = CliRunner().invoke(main, ["predict", str(folder), "--model", str(tmp_path / "bare.onnx"), "-q"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (f"error: {tmp_path / 'bare.onnx'} carries no class names: put a labels.txt "
                                  f"(one species per line, in output order) beside it")


def test_exported_file_answers_the_same_inside_its_run_and_copied_elsewhere(trained_tiny_run, photos, tmp_path):
    """Issue 21: a run recipe's tta_flip applies to the run's own Keras model only. An exported file is
    judged as the app runs it, one pass, wherever it sits; TTA rows and answers are labelled."""
    from keras_birds.comparison.compare import compare
    from keras_birds.evaluation.evaluate import evaluate

    folder, _ = photos
    run = tmp_path / "run_tta"
    shutil.copytree(trained_tiny_run.path, run)
    recipe = json.loads((run / "recipe.json").read_text())
    (run / "recipe.json").write_text(json.dumps({**recipe, "tta_flip": True}))
    inside = run / "export" / "model.onnx"
    (tmp_path / "app").mkdir()
    outside = Path(shutil.copy(inside, tmp_path / "app" / "model.onnx"))

    in_run, copied = predict([folder], inside, progress=False), predict([folder], outside, progress=False)
    assert in_run.tta_flip is False and copied.tta_flip is False
    assert [r["top_k"] for r in in_run.results] == [r["top_k"] for r in copied.results]
    assert predict([folder], run, progress=False).tta_flip is True  # the run itself keeps its recipe's TTA

    assert evaluate(inside, split="valid", latency_runs=0, progress=False, out=tmp_path / "e1")["tta_flip"] is False
    forced = evaluate(inside, split="valid", latency_runs=0, progress=False, out=tmp_path / "e2", tta_flip=True)
    assert forced["tta_flip"] is True

    rows = compare([run], split="valid", exported=True, out=tmp_path / "cmp", latency_runs=0, progress=False,
                   log=lambda *_: None).rows
    assert [r["format"] for r in rows] == ["keras (flip TTA)", "onnx fp32"]

    result = CliRunner().invoke(main, ["predict", str(folder), "--model", str(run), "--top-k", "1"])
    assert result.exit_code == 0 and "flip TTA" in result.stderr
