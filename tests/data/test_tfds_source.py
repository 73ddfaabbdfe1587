"""tfds: sources, offline: TFDS data sets built in tmp folders (a prepared builder and an image folder),
read through load_source into the Kaggle layout."""
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_birds.data import sources, tfds_source
from keras_birds.data.sources import folder_source, load_source, named_source
from keras_birds.errors import UserError

# CUB-like: class ids with numeric ClassLabel names, the species in a per-example text feature, a
# one-channel mask image beside the photo, train and test splits only.
SPECIES = ["ZEBRA DOVE", "CROW/RAVEN", "ALBATROSS", "MANDRIN DUCK"]
TRAIN_PER_CLASS = [12, 5, 2, 1]
TEST_PER_CLASS = [2, 1, 1, 1]
MINI_CLASSES = ["AMERICAN FLAMINGO", "BLACK SWAN", "MANDRIN DUCK"]


def _pixels(split, label, k):
    rng = np.random.default_rng([label, k, split == "test"])
    return rng.integers(0, 256, (6 + label, 9 + k % 3, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def builders(tfds):
    """Builder classes registered once per process (TFDS registers every subclass by its name)."""

    def examples(split, label_name=True):
        for label, n in enumerate(TRAIN_PER_CLASS if split == "train" else TEST_PER_CLASS):
            for k in range(n):
                ex = {"image": _pixels(split, label, k), "label": label}
                if label_name:
                    ex.update(label_name=SPECIES[label], segmentation_mask=np.zeros((4, 4, 1), np.uint8))
                yield f"{label}-{k}", ex

    class KbTfdsCubLike(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, supervised_keys=("image", "label"), features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(), "label": tfds.features.ClassLabel(num_classes=len(SPECIES)),
                "label_name": tfds.features.Text(), "segmentation_mask": tfds.features.Image(shape=(None, None, 1))}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples("train"), "test": self._generate_examples("test")}

        def _generate_examples(self, split):
            yield from examples(split)

    class KbTfdsOffline(KbTfdsCubLike):  # a data set whose download cannot reach its host
        def _split_generators(self, dl_manager):
            raise ConnectionError("HTTPSConnectionPool(host='birds.example', port=443): Max retries exceeded\n...")

    class KbTfdsNoImage(KbTfdsCubLike):
        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "pixels": tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib"),
                "label": tfds.features.ClassLabel(names=SPECIES)}))

        def _generate_examples(self, split):
            for key, ex in examples(split, label_name=False):
                yield key, {"pixels": ex["image"], "label": ex["label"]}

    class KbTfdsNoClassLabel(KbTfdsCubLike):
        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(), "label": tfds.features.Scalar(dtype=np.int64)}))

        def _generate_examples(self, split):
            yield from examples(split, label_name=False)

    class KbTfdsTrainOnly(KbTfdsCubLike):
        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples("train")}

    return {c.name: c for c in (KbTfdsCubLike, KbTfdsOffline, KbTfdsNoImage, KbTfdsNoClassLabel, KbTfdsTrainOnly)}


@pytest.fixture(scope="module")
def data_dir(builders, tmp_path_factory):
    """A TFDS data dir with the good and the faulty data sets prepared (KbTfdsOffline is not)."""
    root = tmp_path_factory.mktemp("tfds_data")
    for name, cls in builders.items():
        if name != "kb_tfds_offline":
            cls(data_dir=str(root)).download_and_prepare()
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tfds"


def _decoded(path):
    with Image.open(path) as img:
        return np.asarray(img).copy()


def test_prepared_builder_dir_loads_with_names_carved_valid_and_exact_pixels(data_dir, cache):
    builder_dir = data_dir / "kb_tfds_cub_like" / "1.0.0"
    index = load_source(f"tfds:{builder_dir}")
    folders = ["ZEBRA DOVE", "CROW_RAVEN", "ALBATROSS", "MANDRIN DUCK"]  # '/' cannot be in a folder name
    assert index["train"].class_names == sorted(folders)
    for split in ("valid", "test"):
        assert index[split].class_names == sorted(folders)
    # No validation split in the data set: 10 % of each class's train images (one at least, never the
    # last one) moved to valid, seeded.
    counts = {s: np.bincount(index[s].labels, minlength=4) for s in index}
    order = [index["train"].class_names.index(f) for f in folders]
    assert counts["train"][order].tolist() == [11, 4, 1, 1]
    assert counts["valid"][order].tolist() == [1, 1, 1, 0]
    assert counts["test"][order].tolist() == TEST_PER_CLASS
    # Every image is one generated for its species and split, pixel for pixel (PNG as stored, not re-encoded).
    for split, source_split in (("train", "train"), ("valid", "train"), ("test", "test")):
        idx = index[split]
        for path, label in zip(idx.paths, idx.labels):
            ours = folders.index(idx.class_names[label])
            made = [_pixels(source_split, ours, k).tobytes() for k in range(TRAIN_PER_CLASS[ours] + 2)]
            assert Path(path).suffix == ".png"
            assert _decoded(path).tobytes() in made, path
    train_valid = set(index["train"].paths) | set(index["valid"].paths)
    assert len(train_valid) == sum(TRAIN_PER_CLASS)  # carved, not copied
    target = Path(index["train"].paths[0]).parents[2]
    assert target.parent == cache
    manifest = json.loads((target / "tfds_source.json").read_text())
    assert manifest["dataset"] == "kb_tfds_cub_like" and manifest["version"] == "1.0.0"
    assert manifest["class_names_from"] == "label_name"
    assert manifest["class_folders"]["CROW_RAVEN"] == "CROW/RAVEN"
    assert manifest["splits"] == {"train": "train", "test": "test", "valid": "carved out of train"}
    carved = manifest["valid_carved"]
    assert (carved["fraction"], carved["seed"], carved["images"]) == (0.1, 0, 3)
    assert sorted(int(Path(p).stem) for p in index["valid"].paths) == carved["train_indices"]
    assert manifest["images"] == {"train": 17, "valid": 3, "test": 5}


def test_carving_is_the_same_every_time(data_dir, tmp_path):
    builder_dir = str(data_dir / "kb_tfds_cub_like" / "1.0.0")
    valid = []
    for where in ("one", "two"):
        target = tfds_source.materialize_tfds(builder_dir, tmp_path / where, progress=False)
        valid.append(sorted(str(p.relative_to(target)) for p in (target / "valid").glob("*/*")))
    assert valid[0] == valid[1] and len(valid[0]) == 3


def test_named_data_set_in_tfds_data_dir_is_cached_once(data_dir, cache, monkeypatch, capsys):
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    first = load_source("tfds:kb_tfds_cub_like:1.0.0")
    target = cache / "kb_tfds_cub_like@1.0.0"
    assert Path(first["test"].paths[0]).parents[2] == target
    # What moved, counted: 1 of 12, 1 of 5, 1 of 2 and 0 of 1 train images (not "10% of each class").
    assert ("no validation split; 3 of its 20 train images (15%: 10% of each class, rounded, at least 1 of a "
            "class with 2 or more; seed 0) were moved to valid") in capsys.readouterr().err
    stamp = (target / "tfds_source.json").stat().st_mtime_ns

    def no_tfds(spec):
        raise AssertionError("materialised again")

    monkeypatch.setattr(tfds_source, "_import_tfds", no_tfds)
    second = load_source("tfds:kb_tfds_cub_like:1.0.0")
    for split in ("train", "valid", "test"):
        assert second[split].paths == first[split].paths
        assert second[split].labels.tolist() == first[split].labels.tolist()
    assert (target / "tfds_source.json").stat().st_mtime_ns == stamp
    assert not list(cache.glob(".*"))  # no working folder left beside it
    monkeypatch.undo()
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(cache.parent))
    # a folder above one prepared data set is read as that data set
    assert [len(load_source(f"tfds:{data_dir / 'kb_tfds_cub_like'}")[s]) for s in ("train", "valid", "test")] \
        == [17, 3, 5]
    with pytest.raises(UserError, match=r"holds 4 prepared TFDS data sets \(kb_tfds_cub_like/1.0.0, "):
        load_source(f"tfds:{data_dir}")


def test_caching_bars_show_unless_training_is_quiet(data_dir, cache, tmp_path, capfd):
    from keras_birds.recipe import Augment, Recipe
    from keras_birds.training.train import train

    spec = f"tfds:{data_dir / 'kb_tfds_cub_like' / '1.0.0'}"
    recipe = Recipe(model="resnet18", weights="none", data=spec, image_size=32, batch_size=8, epochs=(1, 0),
                    workers=1, head_init="random", augment=Augment(False, 0, 0, 0, 0, 0))
    train(recipe, tmp_path / "run", verbose=0, log=lambda *_: None)  # `train -q`
    quiet = capfd.readouterr().err
    assert "%|" not in quiet and "caching train" not in quiet, quiet
    assert "no validation split; 3 of its 20 train images" in quiet  # a note, not progress: kept
    shutil.rmtree(cache)
    load_source(spec)
    loud = capfd.readouterr().err.replace("\r", "\n")
    assert any("caching train" in line and "%|" in line for line in loud.splitlines()), loud


@pytest.fixture
def image_folder(tmp_path, birds_mini):
    """An ImageFolder root with TFDS's split names (validation, not valid): birds-mini JPEGs, and PNGs."""
    root = tmp_path / "my_birds"
    for name in MINI_CLASSES:
        for split, ours, n in (("train", "train", 2), ("validation", "valid", 1), ("test", "test", 1)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for src in sorted((birds_mini / ours / name).glob("*.jpg"))[:n]:
                shutil.copy(src, folder / src.name)
    png = Image.fromarray(_pixels("train", 0, 0))
    png.save(root / "train" / MINI_CLASSES[0] / "extra.png")
    return root


def _digests(index):
    return {s: sorted((idx.class_names[l], hashlib.sha1(Path(p).read_bytes()).hexdigest())
                      for p, l in zip(idx.paths, idx.labels)) for s, idx in index.items()}


def test_image_folder_keeps_the_original_bytes_and_maps_validation(image_folder, cache, monkeypatch):
    index = load_source(f"tfds:{image_folder}")
    assert index["train"].class_names == MINI_CLASSES
    assert [len(index[s]) for s in ("train", "valid", "test")] == [7, 3, 3]
    expected = {ours: sorted((p.parent.name, hashlib.sha1(p.read_bytes()).hexdigest())
                             for p in (image_folder / theirs).glob("*/*"))
                for theirs, ours in (("train", "train"), ("validation", "valid"), ("test", "test"))}
    assert _digests(index) == expected  # same species, same bytes: the same pixels
    manifest = json.loads((Path(index["test"].paths[0]).parents[2] / "tfds_source.json").read_text())
    assert manifest["valid_carved"] is None and manifest["splits"]["valid"] == "validation"
    assert named_source(f"tfds:{image_folder}") and named_source("hf:x/y") and not named_source(str(image_folder))

    # Unchanged: read from the cache. Changed: cached again, with the new image.
    monkeypatch.setattr(tfds_source, "_import_tfds", lambda spec: pytest.fail("materialised again"))
    assert _digests(load_source(f"tfds:{image_folder}")) == expected
    monkeypatch.undo()
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(cache.parent))
    shutil.copy(image_folder / "test" / MINI_CLASSES[1] / os.listdir(image_folder / "test" / MINI_CLASSES[1])[0],
                image_folder / "test" / MINI_CLASSES[1] / "copy.jpg")
    assert [len(load_source(f"tfds:{image_folder}")[s]) for s in ("train", "valid", "test")] == [7, 3, 4]
    assert len(list(cache.iterdir())) == 1  # the same cache folder, replaced


def test_a_half_written_cache_is_not_used(data_dir, tmp_path):
    target = tfds_source.cache_folder(str(data_dir / "kb_tfds_cub_like"), tmp_path / "c")
    (target / "train" / "ALBATROSS").mkdir(parents=True)  # e.g. copied by hand, no manifest
    tfds_source.materialize_tfds(str(data_dir / "kb_tfds_cub_like"), tmp_path / "c", progress=False)
    assert [len(v) for v in folder_source(target).values()] == [17, 3, 5]


@pytest.mark.parametrize("spec, message", [
    ("kb_tfds_no_image:1.0.0", "has no image feature (a tfds.features.Image); it has: label, pixels"),
    ("kb_tfds_no_class_label:1.0.0", "has no class-label feature"),
    ("kb_tfds_train_only:1.0.0", "has splits ['train']; need 'train' and 'test'"),
    ("caltech_birds2001", "unknown TFDS data set 'caltech_birds2001'"),
    ("kb_tfds_cub_like:7.0.0", "cannot open TFDS data set 'kb_tfds_cub_like:7.0.0' (Failed to construct"),
])
def test_unusable_data_sets_are_one_line_user_errors(data_dir, cache, monkeypatch, spec, message):
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    with pytest.raises(UserError) as e:
        load_source(f"tfds:{spec}")
    assert message in str(e.value) and "\n" not in str(e.value)
    if spec == "caltech_birds2001":
        assert "did you mean caltech_birds2011" in str(e.value)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written is left


def test_unreachable_download_says_how_to_get_it_offline(builders, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(UserError) as e:
        load_source("tfds:kb_tfds_offline")
    msg = str(e.value)
    assert msg.startswith("cannot download TFDS data set 'kb_tfds_offline' (ConnectionError: ")
    assert "`tfds build kb_tfds_offline`" in msg and "TFDS_DATA_DIR" in msg and "--data tfds:PATH" in msg
    assert "\n" not in msg


def test_paths_that_are_not_data_sets(tmp_path, cache):
    with pytest.raises(UserError, match="TFDS folder .*missing does not exist"):
        load_source(f"tfds:{tmp_path / 'missing'}")
    with pytest.raises(UserError, match="needs a data set name or a folder"):
        load_source("tfds:")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"has splits \[\]; need 'train' and 'test'"):
        load_source(f"tfds:{tmp_path / 'empty'}")


def test_without_tensorflow_datasets_the_error_says_what_to_do(tmp_path, cache, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tfds(name, *args, **kwargs):
        if name.split(".")[0] == "tensorflow_datasets":
            raise ImportError("No module named 'tensorflow_datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tfds)
    (tmp_path / "imgs" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="needs tensorflow-datasets and TensorFlow .*cache it once"):
        load_source(f"tfds:{tmp_path / 'imgs'}")


def test_load_source_uses_the_shared_cache_dir(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(sources, "materialize_tfds",
                        lambda spec, root, progress=True: seen.append((spec, root)) or tmp_path)
    monkeypatch.setattr(sources, "default_cache_dir", lambda: tmp_path / "c")
    with pytest.raises(UserError, match="no 'train' split"):
        load_source("tfds:caltech_birds2011:0.2.0")
    assert seen == [("caltech_birds2011:0.2.0", tmp_path / "c" / "tfds")]


def test_absolute_source_makes_folders_absolute_and_keeps_names(tmp_path, monkeypatch):
    from keras_birds.data.sources import absolute_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    assert absolute_source("tfds:./imgs") == f"tfds:{tmp_path / 'imgs'}"
    assert absolute_source("tfds:imgs") == f"tfds:{tmp_path / 'imgs'}"  # an existing folder is a path
    assert absolute_source("tfds:caltech_birds2011:0.2.0") == "tfds:caltech_birds2011:0.2.0"
    assert absolute_source("hf:someone/birds") == "hf:someone/birds"
    assert absolute_source("data") == str(tmp_path / "data")


BLOCK_TF = '''
import json, sys
class Hide:
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        return None if top in ("tensorflow", "tensorflow_datasets") else self.inner.find_spec(name, path, target)
    def __getattr__(self, attr):
        return getattr(self.inner, attr)
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
from keras_birds.data.sources import load_source
index = load_source(sys.argv[1])
print(json.dumps([len(index[s]) for s in ("train", "valid", "test")]))
'''


def test_a_cached_copy_is_read_without_tensorflow(image_folder, cache):
    import subprocess
    import sys

    load_source(f"tfds:{image_folder}")
    env = dict(os.environ, KERAS_BIRDS_CACHE=str(cache.parent))
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF, f"tfds:{image_folder}"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [7, 3, 3]
    # ...and one that is not cached yet says what it needs, in one line
    proc = subprocess.run([sys.executable, "-c", BLOCK_TF, f"tfds:{image_folder / 'train'}"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "UserError: reading tfds:" in proc.stderr
    assert "needs tensorflow-datasets and TensorFlow (ModuleNotFoundError" in proc.stderr
