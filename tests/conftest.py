"""Shared fixtures: generated Kaggle-layout data sets and the real birds-mini set (read in place)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ.get("PYTEST_XDIST_WORKER"):  # setup.cfg runs 2 workers on CI's 2 cores: one torch thread each,
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the commands the tests start, not 2 x 2 threads

import functools  # noqa: E402
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


SHARED_BY_FOLDER = ("export", "openset", "evaluation")  # folders whose files share a session fixture


@functools.cache
def worker_group(test_file: str) -> str:
    """The pytest-xdist work unit of a test file (a path relative to the repo): its users of trained_tiny_run
    share one, each folder of SHARED_BY_FOLDER one (tiny runs, their export), any other file its own."""
    path = REPO / test_file
    if "trained_tiny_run" in path.read_text(encoding="utf-8"):
        return "trained_tiny_run"
    return path.parent.name if path.parent.name in SHARED_BY_FOLDER else test_file


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """setup.cfg's 2 workers run each worker_group whole, so its module and session fixtures are built once.
    Our own split: xdist 3.8's --dist loadgroup renames items through an attribute pytest 9 no longer reads."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid.split("::", 1)[0])

    return GroupScheduling(config, log)


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
