"""The same recipe on JAX from the command line, on real birds (birds-mini at 32 px, 1+1 epochs): train ->
eval -> export (ONNX + TFLite) -> predict; the run read by eval on torch; and `--devices 2`
(keras.distribution.DataParallel over 2 XLA host devices) against one device."""
import json

import pytest
from click.testing import CliRunner

from keras_birds.cli import main
from keras_birds.run_dir import RunDir
from other_backend import cli_under, run_under  # tests/backends/ (pytest puts it on sys.path)

RECIPE = "recipes/effnet_lite0.py"  # head_lr_mult 10 in the all-layers epoch, class-mean head, flip TTA


def _train(repo_root, birds_mini, out, *args, **env):
    # The recipe's dropout kept on, and its head started from the linear probe on augmented views: both
    # must come out the same on 1 and 2 devices (the views were once drawn per device-sized batch).
    proc = run_under("jax", "keras-birds", "train", repo_root / RECIPE, "--data", birds_mini, "--image-size", "32",
                     "--epochs", "1,1", "-q", "--set", "head_init=probe", "--out", out, *args, cwd=out.parent, **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def jax_run(repo_root, birds_mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("jax") / "run"
    _train(repo_root, birds_mini, out, "--batch-size", "8")
    return out


def test_jax_run_evaluates_exports_and_predicts_and_torch_reads_it(jax_run, birds_mini):
    photos, export = birds_mini / "test" / "BLACK SWAN", jax_run / "export"
    evaluated, exported, *predicted = cli_under(
        "jax", ["eval", jax_run, "--split", "test", "--json", "--latency-runs", "0"], ["export", jax_run],
        *(["predict", photos, "--model", m, "--no-tta-flip", "--json", "-q"]
          for m in (jax_run, export / "model.onnx", export / "model_fp32.tflite")))
    assert exported["exit_code"] == 0, (exported["stdout"] + exported["stderr"])[-3000:]
    assert {"model.onnx", "model_fp32.tflite", "export.json"} <= {p.name for p in export.iterdir()}
    assert all(r["exit_code"] == 0 for r in [evaluated, *predicted]), [r["stderr"][-2000:] for r in predicted]
    answers = [[r["species"] for r in json.loads(p["stdout"])["results"]] for p in predicted]
    assert answers[0] == answers[1] == answers[2], answers

    on_jax = json.loads(evaluated["stdout"])
    on_torch = CliRunner().invoke(main, ["eval", str(jax_run), "--split", "test", "--json", "--latency-runs", "0",
                                         "--out", str(jax_run / "eval_torch")], catch_exceptions=False)
    assert on_torch.exit_code == 0, on_torch.output
    assert json.loads(on_torch.stdout)["top1"] == on_jax["top1"] and on_jax["n_images"] == 25


def test_two_jax_devices_give_one_devices_valid_top1(jax_run, repo_root, birds_mini):
    out = jax_run.parent / "run_2_devices"
    log = _train(repo_root, birds_mini, out, "--batch-size", "4", "--devices", "2",
                 XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert "2 devices, global batch 8" in log
    one, two = RunDir(jax_run).read_state(), RunDir(out).read_state()
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert abs(one["best_val_top1"] - two["best_val_top1"]) * 25 <= 1 + 1e-6, (one, two)
