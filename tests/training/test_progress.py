"""Issue 29 item 7: every long step of training shows progress on stderr, and -q (verbose=0) silences it."""
import dataclasses

import numpy as np

from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import load_source
from keras_birds.recipe import Augment, Recipe
from keras_birds.training import distill
from keras_birds.training.train import train

BAR = "%|"  # what every tqdm bar line holds


def test_probe_and_cache_show_progress_unless_quiet(make_dataset, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
    data = make_dataset(tmp_path, 2, {"train": 4, "valid": 1, "test": 1}, size=32)
    recipe = Recipe(model="resnet18", weights="none", data=str(data), image_size=32, batch_size=4, epochs=(1, 0),
                    workers=1, head_init="probe", probe_views=1, cache=True, augment=Augment(False, 0, 0, 0, 0, 0))
    train(recipe, tmp_path / "quiet", verbose=0, log=lambda *_: None)
    quiet = capfd.readouterr().err
    assert BAR not in quiet and "caching train" not in quiet, quiet
    train(dataclasses.replace(recipe, image_size=40), tmp_path / "loud", verbose=1, log=lambda *_: None)  # a new cache
    loud = capfd.readouterr().err
    for step in ("caching train at 40px", "frozen features", "linear probe"):
        assert any(step in line and BAR in line for line in loud.replace("\r", "\n").splitlines()), (step, loud)


class _Uniform:
    def predict(self, x):
        return np.full((len(x), 2), 0.5, "float32")


def test_teacher_views_show_progress_unless_quiet(make_dataset, tmp_path, capfd):
    index = load_source(str(make_dataset(tmp_path, 2, {"train": 4, "valid": 1, "test": 1}, size=32)))["train"]
    teachers = [distill.Teacher(tmp_path, _Uniform(), 32, {})]
    loader = distill.DistillLoader(BatchLoader(index, 32, 4, workers=1), teachers, views=2, seed=0)
    distill.build_cache(loader, log=lambda *_: None, progress=False)
    assert capfd.readouterr().err == ""
    distill.build_cache(loader, log=lambda *_: None, progress=True)
    loud = capfd.readouterr().err.replace("\r", "\n").splitlines()
    for view in (1, 2):
        assert any(f"teacher outputs, view {view}/2" in line and BAR in line for line in loud), loud
