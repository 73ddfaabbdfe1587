"""train, eval, predict and compare run where TensorFlow cannot be imported (GPU images often lack it):
each command runs in a Python whose import system hides tensorflow (and tf_keras, tensorflow_text)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LITE0 = REPO / "recipes" / "effnet_lite0.py"

# Wraps every meta-path finder so that BLOCKED packages are not found: `import tensorflow` fails as if it
# were not installed (find_spec returns None, which torch and Keras probe for). Then runs CLI commands (a JSON
# list of argument lists) one after another through click's entry point, one start-up for all, and writes
# each one's output and which of BLOCKED (and keras_hub, which needs TF) were imported by the end of it.
WRAPPER = '''
import json, sys, traceback
BLOCKED = ("tensorflow", "tf_keras", "tensorflow_text")

class Hide:
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        return None if name.split(".")[0] in BLOCKED else self.inner.find_spec(name, path, target)
    def __getattr__(self, attr):
        return getattr(self.inner, attr)

sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
try:
    import tensorflow
    sys.exit("the wrapper failed to hide tensorflow")
except ModuleNotFoundError:
    pass
from click.testing import CliRunner
from keras_birds.cli import main
results = []
for args in json.loads(sys.argv[2]):
    r = CliRunner().invoke(main, args, prog_name="keras-birds")
    crashed = r.exc_info is not None and r.exc_info[0] is not SystemExit  # a traceback, not an exit code
    error = "".join(traceback.format_exception(*r.exc_info)) if crashed else ""
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {*BLOCKED, "keras_hub"})
    results.append({"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr + error, "loaded": loaded})
    with open(sys.argv[1], "w") as f:
        json.dump(results, f)
    if r.exit_code:
        break
'''

# A tensorflow that is found but raises (not ImportError) while importing: a broken install.
BROKEN = '''
import importlib.abc, importlib.machinery, sys

class Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "tensorflow" else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise RuntimeError("simulated broken TensorFlow install")

sys.meta_path.insert(0, Broken())
from keras_birds.cli import _import_tensorflow_quietly
_import_tensorflow_quietly()
import keras
keras.utils.set_random_seed(1)  # Keras seeds TF too when it can import it
from keras_birds.data.augment import build_augmenter
from keras_birds.recipe import Augment
import numpy as np
print(type(build_augmenter(Augment())).__name__, build_augmenter(Augment())(np.zeros((1, 8, 8, 3), np.uint8)).shape)
'''


@pytest.fixture
def no_tf(tmp_path):
    """no_tf((name, args), ...): the commands in one Python without TensorFlow; their stdout, in order."""
    wrapper = tmp_path / "without_tf.py"
    wrapper.write_text(WRAPPER)
    env = dict(os.environ, KERAS_BACKEND="torch")

    def run(*commands):
        report = tmp_path / "commands.json"
        report.unlink(missing_ok=True)
        args = json.dumps([[str(a) for a in args] for _, args in commands])
        proc = subprocess.run([sys.executable, str(wrapper), str(report), args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=600)
        assert proc.returncode == 0 and report.exists(), proc.stderr[-3000:]
        results = json.loads(report.read_text())
        for (name, _), r in zip(commands, results):
            assert r["exit_code"] == 0, f"{name}: exit {r['exit_code']}\n{r['stderr'][-3000:]}"
            assert r["loaded"] == [], f"{name} imported {r['loaded']}"
        assert len(results) == len(commands)
        return [r["stdout"] for r in results]

    return run


def test_train_eval_predict_compare_without_tensorflow(no_tf, birds_mini, tmp_path):
    run_dir, folder = tmp_path / "run", sorted((birds_mini / "test").iterdir())[0]
    _, evaluated, predicted, _ = no_tf(
        ("train", ["train", LITE0, "--data", birds_mini, "--weights", "imagenet", "--image-size", "64", "--epochs",
                   "1,1", "--batch-size", "16", "--set", "workers=1", "--out", run_dir, "-q"]),
        ("eval", ["eval", run_dir, "--split", "test", "--json", "--latency-runs", "0", "-q"]),
        ("predict", ["predict", folder, "--model", run_dir, "--json", "-q"]),
        ("compare", ["compare", run_dir, "--out", tmp_path / "comparison", "--latency-runs", "0", "-q"]))
    assert (run_dir / "model.keras").exists()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard's events need no TensorFlow
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["train_images"] == 75

    report = json.loads(evaluated)
    assert report["n_images"] == 25 and report["top1"] > 0.2  # 25 species: chance is 0.04

    preds = json.loads(predicted)
    assert len(preds["results"]) == len(list(folder.glob("*.jpg"))) and not preds["errors"]

    assert (tmp_path / "comparison" / "comparison.json").exists()


def test_a_tensorflow_that_fails_to_import_counts_as_absent(tmp_path):
    script = tmp_path / "broken_tf.py"
    script.write_text(BROKEN)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, KERAS_BACKEND="torch"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["TorchAugmenter", "torch.Size([1,", "8,", "8,", "3])"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: TensorFlow")]
    assert warnings == ["warning: TensorFlow fails to import (RuntimeError: simulated broken TensorFlow install); "
                        "going on without it"]
