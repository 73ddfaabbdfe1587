"""The keras-birds command: --version, --help, and bad input as one `error:` line with exit code 2."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from keras_birds import __version__
from keras_birds.cli import main

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "resnet18.py"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run the CLI in-process from an empty working directory; returns (result, cwd)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result

    run.cwd = cwd
    return run


def _one_error_line(result):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


def _nothing_written(cli, out=None):
    assert list(cli.cwd.iterdir()) == [], "the command wrote into the working directory"
    if out is not None:
        assert not Path(out).exists()


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"keras-birds, version {__version__}"


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    for name in main.commands:
        assert name in result.stdout
    assert {"train", "models"} <= set(main.commands)


@pytest.mark.parametrize("command", sorted(main.commands))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command(cli, command, flag):
    result = cli(command, flag)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: main {command}") or result.stdout.startswith(f"Usage: keras-birds {command}")
    doc = main.commands[command].help.split("\n")[0].strip()
    assert doc[:40] in " ".join(result.stdout.split())


def test_train_help_names_every_option(cli):
    out = cli("train", "--help").stdout
    for option in ("--data", "--weights", "--epochs", "--lr", "--batch-size", "--image-size", "--exclude", "--set",
                   "--out", "--resume", "--overwrite", "--quiet"):
        assert option in out


def test_models_lists_the_registry(cli):
    from keras_birds.models.registry import MODELS, resolve_image_size

    result = cli("models")  # from an empty folder: the shipped recipes are found from the package
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(MODELS)
    for line, spec in zip(lines, MODELS.values()):
        assert f"(native {spec.native_size}px)" in line
        # Issue 14: the size the recipes train at (tests/comparison/test_zoo.py checks it against each recipe)
        assert "trains at " in line
        # Issue 21: say which weights need a network; only the packaged Lite checkpoints do not.
        if spec.imagenet == "packaged":
            assert "offline" in line and spec.note.split()[-1] in line and "network" not in line
        else:
            assert "needs a network" in line and spec.imagenet.removeprefix("hf://") in line
    assert sum("offline" in line for line in lines) == 3
    assert "efficientnet_b1        trains at 224px (native 240px)" in result.stdout
    assert "efficientnet_lite2     trains at 260px (native 260px)" in result.stdout
    assert f"efficientnet_lite0_ra  trains at {resolve_image_size('efficientnet_lite0_ra')}px" in result.stdout


# -- bad input: one line, exit code 2, nothing written -------------------------------------------
def test_missing_data_folder(cli, tmp_path):
    out = tmp_path / "run"
    line = _one_error_line(cli("train", RECIPE, "--data", tmp_path / "nowhere", "--out", out))
    assert str(tmp_path / "nowhere") in line and "does not exist" in line
    _nothing_written(cli, out)


def test_default_out_is_not_created_on_error(cli, tmp_path):
    _one_error_line(cli("train", RECIPE, "--data", tmp_path / "nowhere"))
    _nothing_written(cli)  # no runs/resnet18 in the working directory


def test_missing_split(cli, small_dataset, tmp_path):
    shutil.rmtree(small_dataset / "test")
    out = tmp_path / "run"
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out))
    assert "'test'" in line and str(small_dataset) in line
    _nothing_written(cli, out)


def test_differing_class_lists(cli, small_dataset, tmp_path):
    (small_dataset / "valid" / "MANDRIN DUCK").rename(small_dataset / "valid" / "MANDARIN DUCK")
    out = tmp_path / "run"
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out))
    assert "missing in valid: MANDRIN DUCK" in line and "extra in valid: MANDARIN DUCK" in line
    _nothing_written(cli, out)


def test_nonexistent_recipe_file(cli, small_dataset, tmp_path):
    out = tmp_path / "run"
    line = _one_error_line(cli("train", tmp_path / "recipes" / "nope.py", "--data", small_dataset, "--out", out))
    assert "nope.py" in line and "does not exist" in line
    _nothing_written(cli, out)


def test_recipe_that_does_not_parse(cli, small_dataset, tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("from keras_birds.recipe import Recipe\nRECIPE = Recipe(model='resnet18',,)\n")
    out = tmp_path / "run"
    line = _one_error_line(cli("train", bad, "--data", small_dataset, "--out", out))
    assert str(bad) in line and "line 2" in line
    _nothing_written(cli, out)


def test_unknown_model_via_set(cli, small_dataset, tmp_path):
    out = tmp_path / "run"
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--set", "model=foo", "--out", out))
    assert "unknown model 'foo'" in line
    _nothing_written(cli, out)


@pytest.mark.parametrize("args, words", [
    (["--set", "epoch=1,1"], "unknown recipe field 'epoch'"),
    (["--set", "batch_size"], "expected KEY=VALUE"),
    (["--batch-size", "0"], "batch_size must be a whole number >= 1, got 0"),
    (["--epochs", "1,x"], "--set epochs=1,x"),
    (["--weights", "/no/such/file.weights.h5"], "--weights none"),
    (["--exclude", "/no/such/exclude.txt"], "exclude file /no/such/exclude.txt does not exist"),
])
def test_other_bad_arguments(cli, small_dataset, tmp_path, args, words):
    out = tmp_path / "run"
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out, *args))
    assert words in line
    _nothing_written(cli, out)


def test_missing_recipe_argument(cli):
    line = _one_error_line(cli("train"))
    assert "missing RECIPE" in line


def test_resume_with_overrides_is_refused(cli, tmp_path):
    _one_error_line(cli("train", "--resume", tmp_path / "run", "--epochs", "1,1"))
    _nothing_written(cli, tmp_path / "run")


def test_resume_of_a_missing_run(cli, tmp_path):
    line = _one_error_line(cli("train", "--resume", tmp_path / "run"))
    assert f"--resume {tmp_path / 'run'}: no such folder" in line  # issue 29: not "recipe.json missing"
    _nothing_written(cli, tmp_path / "run")


def _fake_run(path):
    path.mkdir(parents=True)
    (path / "recipe.json").write_text(json.dumps({"model": "efficientnet_b0", "name": "other"}))
    (path / "classes.txt").write_text("A\nB\n")
    return {p.name: p.read_bytes() for p in path.iterdir()}


def test_out_dir_holding_another_run(cli, small_dataset, tmp_path):
    out = tmp_path / "run"
    before = _fake_run(out)
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out, "--epochs", "1,1"))
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    _nothing_written(cli)


def test_out_dir_holding_unrelated_files(cli, small_dataset, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out))
    assert "other files" in line
    # --overwrite must not delete files that are not a run either
    line = _one_error_line(cli("train", RECIPE, "--data", small_dataset, "--out", out, "--overwrite"))
    assert "not a keras-birds run" in line
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "precious"
    _nothing_written(cli)


def test_error_through_the_installed_command(small_dataset, tmp_path):
    """The real console script: exactly one stderr line (no library start-up chatter), exit code 2."""
    exe = Path(sys.executable).with_name("keras-birds")
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    shutil.rmtree(small_dataset / "valid" / "BLACK SWAN")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    proc = subprocess.run([str(exe), "train", str(RECIPE), "--data", str(small_dataset), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: class lists differ between {small_dataset / 'train'} and {small_dataset / 'valid'}: "
        "missing in valid: BLACK SWAN; extra in valid: none"
    ]
    assert not out.exists()


# -- issue 21 ----------------------------------------------------------------------------------------
LITE0 = REPO / "recipes" / "effnet_lite0.py"
# Small enough that a value the recipe fails to refuse trains in seconds (and the test then fails).
TINY = ["--weights", "none", "--image-size", "32", "--epochs", "1,0", "--batch-size", "4"]


@pytest.mark.parametrize("setting, words", [
    ("dropout=1.5", "dropout must be a number in [0, 1), got 1.5"),
    ("weight_decay=-1", "weight_decay must be a number in [0, 1], got -1.0"),
    ("lr=nan,1e-3", "lr must be two finite numbers > 0"),
    ("augment.rotation=400", "augment.rotation must be a number in [0, 180] (degrees), got 400.0"),
    ("label_smoothing=inf", "label_smoothing must be a number in [0, 1), got inf"),
    ("seed=-1", "seed must be a whole number in [0, 1073741824], got -1"),
    ("as_given=x", "as_given is recorded by train"),
])
def test_out_of_range_set_is_one_error_line(cli, small_dataset, tmp_path, setting, words):
    out = tmp_path / "run"
    line = _one_error_line(cli("train", LITE0, "--data", small_dataset, "--out", out, *TINY, "--set", setting))
    assert words in line, line
    _nothing_written(cli, out)


def test_out_of_range_through_the_installed_command(small_dataset, tmp_path):
    """`keras-birds train recipes/effnet_lite0.py --set dropout=1.5`: exit 2, one `error:` line, no traceback."""
    exe = Path(sys.executable).with_name("keras-birds")
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    out = tmp_path / "run"
    proc = subprocess.run([str(exe), "train", str(LITE0), "--set", "dropout=1.5", "--data", str(small_dataset),
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: dropout must be a number in [0, 1), got 1.5"]
    assert not out.exists()


def _commands(group, path=()):
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, path + (name,))


def test_every_option_has_help():
    missing = [f"{' '.join(path) or 'keras-birds'} {param.opts[0]}"
               for path, command in _commands(main) for param in command.params
               if isinstance(param, click.Option) and not {"--help", "--version"} & set(param.opts)
               and not (param.help or "").strip()]
    assert missing == []


def test_top_level_help_session_uses_only_runs_it_trains(cli):
    """Issue 29, 10: the session's example predicted with runs/effnet_lite0, a run it never trains; its first
    run is the one the README's set-up command trains."""
    trained, commands = [], [line.split() for line in cli("--help").stdout.splitlines()
                              if line.strip().startswith("keras-birds ")]
    for words in commands:
        if words[1] == "train" and not words[2].startswith("-"):
            trained.append(f"runs/{Path(words[2]).stem}")  # train's default --out
        used = {w.split("/export/")[0] for w in words if w.startswith("runs/")}
        assert used <= set(trained), (" ".join(words), trained)
    assert trained[0] == "runs/effnet_lite0_fewshot"
    assert "train recipes/effnet_lite0_fewshot.py --data" in (REPO / "README.md").read_text(encoding="utf-8")
    assert {"train", "eval", "export", "predict", "compare"} <= {words[1] for words in commands}


@pytest.mark.parametrize("command", ["add-species", "calibrate-unknown", "export", "report", "eval", "predict",
                                     "compare", "clean", "train"])
def test_every_verb_that_shows_progress_takes_q(cli, command):
    """Issue 29, 7: add-species, calibrate-unknown, export and report had no -q."""
    out = cli(command, "--help").stdout
    assert "-q, --quiet" in out, out
