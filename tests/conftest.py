"""Shared fixtures: generated Kaggle-layout data sets and the real birds-mini set (read in place)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"
SPLITS = ("train", "valid", "test")


def _class_colour(ci: int, n: int) -> np.ndarray:
    """A distinct, saturated colour per class (evenly spaced hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(ci / max(n, 1), 0.9, 0.9)
    return np.array([r, g, b]) * 255


def write_dataset(tmp_path, classes, per_split, size=64, separable=True, seed=0, ext=".jpg"):
    """Write tmp_path/data/{train,valid,test}/<CLASS>/NNN.jpg of generated images; returns the root.

    classes: a count (names "CLASS 00"...) or a list of names (spaces and hyphens welcome).
    per_split: images per class, an int for every split or {"train": 3, "valid": 1, "test": 1}.
    separable: each class has its own colour plus mild noise, so a model can learn it;
    otherwise every image is plain noise.
    """
    names = [f"CLASS {i:02d}" for i in range(classes)] if isinstance(classes, int) else list(classes)
    counts = per_split if isinstance(per_split, dict) else {s: per_split for s in SPLITS}
    rng = np.random.default_rng(seed)
    root = Path(tmp_path) / "data"
    for split, n in counts.items():
        for ci, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                noise = rng.normal(0, 20, (size, size, 3))
                base = _class_colour(ci, len(names)) if separable else rng.uniform(0, 255, 3)
                pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{k:03d}{ext}", quality=95)
    return root


@pytest.fixture
def make_dataset():
    """make_dataset(tmp_path, classes, per_split, size=64, separable=True) -> ROOT (see write_dataset)."""
    return write_dataset


@pytest.fixture
def small_dataset(tmp_path):
    """3 classes with Kaggle-like names, 4/2/2 images per class, 32px."""
    return write_dataset(tmp_path, ["BLACK SWAN", "MANDRIN DUCK", "PARAKETT  AUKLET"],
                        {"train": 4, "valid": 2, "test": 2}, size=32)


@pytest.fixture(scope="session")
def birds_mini():
    path = SHARED_DATA / "birds-mini"
    if not (path / "train").is_dir():
        pytest.skip(f"{path} not present")
    return path.resolve()


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def trained_tiny_run(birds_mini, tmp_path_factory):
    """A really trained run on birds-mini through `train()`: EfficientNet-Lite0 with its packaged
    ImageNet weights at 96 px, head imprinted from class means, one head-only epoch; then its ONNX
    export through the export workflow (RUN/export/model.onnx). About half a minute on 2 CPUs."""
    from keras_birds.export.export import export
    from keras_birds.recipe import Augment, Recipe
    from keras_birds.training.train import train

    recipe = Recipe(model="efficientnet_lite0", weights="imagenet", data=str(birds_mini), image_size=96,
                    batch_size=32, epochs=(1, 0), lr=(1e-3, 1e-4), workers=1, head_init="class_mean",
                    augment=Augment(False, 0, 0, 0, 0, 0), name="tiny_lite0")
    run = train(recipe, tmp_path_factory.mktemp("trained") / "tiny_lite0", verbose=0, log=lambda *_: None)
    export(run.path, onnx=True, tflite=False, verify=False, latency_runs=0, log=lambda *_: None)
    return run
