"""keras-birds report: every section from the files the verbs wrote, "not measured" for what a run lacks,
one-line errors for bad input, and a page that stays small for 5 runs of 125 species."""
import base64
import io
import json
import re
import shutil
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.comparison.table import COLUMNS
from keras_birds.reporting.study import write_report

from fake_runs import write_comparison, write_run  # tests/reporting/ (pytest puts it on sys.path)

SECTIONS = ("summary", "data", "clean", "training", "comparison", "per-class", "calibration", "export",
            "robustness", "recommendation")


def _data_values(html: str, table_id: str) -> list:
    """The raw figures (data-value) of each row of the table with this id, in order."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [[json.loads(v.replace("&quot;", '"')) for v in re.findall(r'data-value="([^"]*)"', row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_report_reads_every_piece_and_names_its_files(study, tmp_path):
    runs = [r.path for r in study["runs"]]
    report = write_report(runs, clean=study["clean"], out=tmp_path / "out")  # comparison found beside the runs
    html = report.html.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    # Only the pieces these runs lack are "not measured": robustness and open set.
    assert [title for title, _ in report.not_measured] == ["Robustness and unknown species"] * 2
    # The comparison table holds comparison.json's figures, row by row, and its recommendation.
    keys = [k for k, _, _ in COLUMNS if k != "corruption_top1"]  # no row has that optional column
    expected = [[r[k] for k in keys if r[k] is not None] for r in study["comparison"]["rows"]]
    assert _data_values(html, "comparison-table") == expected
    assert study["comparison"]["recommended"]["why"].replace("'", "&#x27;") in html
    # Each section says where its figures come from.
    for path in (runs[0] / "metrics.json", runs[0] / "eval" / "model.keras-test" / "report.json",
                 runs[0] / "export" / "export.json", study["root"] / "comparison" / "comparison.json",
                 study["clean"] / "audit.json"):
        assert str(path) in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # nothing to fetch
    md = report.markdown.read_text()
    assert "## Accuracy, size and speed" in md and "| recipe_0 | keras |" in md
    for ref in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (report.out_dir / ref).is_file(), ref


def test_a_run_that_lacks_pieces_is_not_measured_not_an_error(study, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(study["runs"][0].path, bare)
    for name in ("metrics.json", "metrics.csv", "summary.json"):
        (bare / name).unlink()
    shutil.rmtree(bare / "eval")
    shutil.rmtree(bare / "export")
    report = write_report([bare], out=tmp_path / "out")
    titles = {title for title, _ in report.not_measured}
    assert {"Training", "Per species", "Calibration", "Export for phones", "Accuracy, size and speed",
            "Recommendation", "Cleaning audit"} <= titles
    html = report.html.read_text()
    assert f"keras-birds export {bare}" in html  # what would measure it
    assert html.count('class="missing"') == len(report.not_measured)


def test_a_moved_data_set_and_a_broken_file_are_not_measured(study, tmp_path):
    run = study["runs"][1].path
    (run / "export" / "export.json").write_text("{ half a fi")
    shutil.move(study["data"], tmp_path / "moved")
    report = write_report([run], out=tmp_path / "out")
    why = dict(report.not_measured)
    assert "does not exist" in why["Data"] and "not readable JSON" in why["Export for phones"]


def test_cli_writes_the_page_and_refuses_bad_input_in_one_line(study, tmp_path):
    runner = CliRunner()
    out = tmp_path / "page"
    args = ["report", *map(str, (r.path for r in study["runs"])), "--out", str(out)]
    result = runner.invoke(main, args + ["--comparison", str(study["root"] / "comparison" / "comparison.json")])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    for bad, message in ((["report", str(study["data"])], "not a keras-birds run directory"),
                         (args + ["--clean", str(study["data"])], "--clean"),
                         (args + ["--comparison", str(study["data"])], "--comparison")):
        result = runner.invoke(main, bad)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_a_comparison_of_other_runs_is_not_taken_for_these(study, tmp_path):
    other = write_run(tmp_path / "elsewhere", "other", ["A", "B"], study["data"], export=False)
    write_comparison(tmp_path / "elsewhere" / "comparison", [other])
    report = write_report([r.path for r in study["runs"]], out=tmp_path / "out")
    assert "Accuracy, size and speed" not in dict(report.not_measured)
    assert str(study["root"] / "comparison" / "comparison.json") in report.html.read_text()
    lone = write_run(tmp_path / "lone" / "runs", "lone", ["A", "B"], study["data"], export=False)
    report = write_report([lone.path], out=tmp_path / "out2")
    assert "Accuracy, size and speed" in dict(report.not_measured)


def test_robustness_and_open_set_are_shown_where_a_run_has_them(study, tmp_path):
    folder = study["runs"][0].eval_dir / "model.keras-test"
    report = json.loads((folder / "report.json").read_text())
    report["open_set"] = {"scores": {"max_probability": {"auroc": 0.812, "known_accepted": 0.95,
                                                         "unknown_rejected": 0.41, "deployable": True}}}
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "robustness.json").write_text(json.dumps({"split": "test", "clean_top1": 0.9,
                                                        "mean_corruption_top1": 0.61, "relative_drop": 0.322}))
    page = write_report([study["runs"][0].path], out=tmp_path / "out")
    assert "Robustness and unknown species" not in dict(page.not_measured)
    html = page.html.read_text()
    assert 'data-value="0.812"' in html and 'data-value="0.61"' in html


def test_five_runs_of_125_species_stay_under_10_mb_with_downscaled_thumbnails(tmp_path, make_dataset):
    names = [f"SPECIES {i:03d}" for i in range(125)]
    # Photos larger than any thumbnail, noisy (JPEG's worst case): the page must not carry them as they are.
    # One written, then copied: generating 375 of them takes longer than the report.
    photo = make_dataset(tmp_path / "one", ["X"], {"train": 1}, size=320) / "train" / "X" / "000.jpg"
    data = tmp_path / "data"
    for split in ("train", "valid", "test"):
        for name in names:
            (data / split / name).mkdir(parents=True)
            shutil.copyfile(photo, data / split / name / "000.jpg")
    runs = [write_run(tmp_path / "runs", f"recipe_{k}", names, data, seed=k, epochs=12) for k in range(5)]
    write_comparison(tmp_path / "comparison", runs)
    page = write_report([r.path for r in runs], out=tmp_path / "out")
    size = page.html.stat().st_size
    assert size < 10e6, f"report.html is {size / 1e6:.1f} MB"
    html = page.html.read_text()
    jpegs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(jpegs) >= 5 * 6  # the most-confused pairs of every run, and the samples
    for b64 in jpegs:
        assert max(Image.open(io.BytesIO(base64.b64decode(b64))).size) <= 112


def test_report_imports_no_model_framework(study, tmp_path):
    """It reads files: torch, Keras and TensorFlow stay unimported (seconds of start-up, GBs on a GPU box)."""
    import subprocess
    import sys

    code = ("import sys; from keras_birds.cli import main\n"
            "try:\n    main(sys.argv[1:], prog_name='keras-birds')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'keras', 'tensorflow', 'keras_hub'}))")
    done = subprocess.run([sys.executable, "-c", code, "report", str(study["runs"][0].path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_relative_row_paths_are_read_from_the_comparison_folders_parent(study, tmp_path, monkeypatch):
    """compare stores model paths as given (`compare runs/x`): relative to its working folder, the parent of
    its default --out. A copy of a run elsewhere is not the run those rows measured."""
    root = study["root"]
    path = root / "comparison" / "comparison.json"
    data = json.loads(path.read_text())
    for row in data["rows"]:
        row["source"] = str(Path(row["source"]).relative_to(root))
    path.write_text(json.dumps(data))
    (study["runs"][0].path / "model.keras").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)  # no ./comparison here: found beside the runs
    report = write_report([r.path for r in study["runs"]], out=tmp_path / "out")
    assert "Accuracy, size and speed" not in dict(report.not_measured)
    copy = root / "copies" / "recipe_0"
    shutil.copytree(study["runs"][0].path, copy)
    report = write_report([copy], out=tmp_path / "out2")
    assert "Accuracy, size and speed" in dict(report.not_measured)
