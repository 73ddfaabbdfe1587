"""Issue 29 items 9 and 10: train's messages say what happened (a missing teacher, unreadable images)."""
from click.testing import CliRunner

import pytest

from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.recipe import Augment, Recipe, load_recipe
from keras_birds.training import distill
from keras_birds.training.train import train


def test_a_missing_teacher_is_named_as_the_teacher_with_how_to_get_one(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(repo_root / "recipes" / "distill_lite0.py").with_absolute_paths()
    teacher = tmp_path / "runs" / "effnet_lite2_fewshot"
    assert recipe.teacher == str(teacher)
    with pytest.raises(UserError) as e:
        distill.load_teachers(recipe.teacher, ["A", "B"])
    assert str(e.value) == (
        f"teacher run {teacher} does not exist: train the teacher first (keras-birds train "
        f"recipes/effnet_lite2_fewshot.py --out {teacher}, with the same --data) or name a finished run with "
        f"--set teacher=RUN_DIR")
    other = tmp_path / "elsewhere" / "my_teacher"  # no shipped recipe of that name: the generic advice
    with pytest.raises(UserError, match=rf"teacher run {other} does not exist: train the teacher first "
                                        rf"\(keras-birds train RECIPE --out {other}, with the same --data\) or name "):
        distill.load_teachers(str(other), ["A", "B"])


def test_the_training_line_counts_the_images_that_train(make_dataset, tmp_path):
    data = make_dataset(tmp_path, 2, {"train": 6, "valid": 1, "test": 1}, size=32)
    for bad in sorted((data / "train").glob("*/*.jpg"))[:2]:
        bad.write_bytes(b"not a jpeg")
    recipe = Recipe(model="resnet18", weights="none", data=str(data), image_size=32, batch_size=4, epochs=(1, 0),
                    workers=1, head_init="class_mean", augment=Augment(False, 0, 0, 0, 0, 0))
    said = []
    train(recipe, tmp_path / "run", verbose=0, log=said.append)
    line = next(s for s in said if s.startswith("training resnet18"))
    assert " on 10 images of 2 species (2 unreadable skipped); valid 2; " in line, line


def test_train_help_names_every_kind_of_data(tmp_path):
    out = CliRunner().invoke(main, ["train", "--help"]).stdout
    data_help = " ".join(out.split("--data", 1)[1].split("--weights", 1)[0].split())
    for kind in ("ROOT/{train,valid,test}", "hf:", "tfds:"):
        assert kind in data_help, data_help
