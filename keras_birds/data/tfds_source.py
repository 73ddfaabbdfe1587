"""TensorFlow Datasets as a source: `--data tfds:NAME[:VERSION]` or `--data tfds:PATH`.

NAME is a TFDS data set (caltech_birds2011, caltech_birds2010, NAME/CONFIG, or one of your own prepared
in TFDS_DATA_DIR, default ~/tensorflow_datasets); TFDS downloads and prepares it there first if it has
not yet. PATH (starting with '/', '~' or '.', or an existing folder) is local: a prepared TFDS data set
(the folder with dataset_info.json that `tfds build` writes, or a folder above one) or an image folder
ROOT/<split>/<class>/*.jpg|png (tfds.folder_dataset.ImageFolder).

The data set is written once into the Kaggle folder layout under CACHE/tfds/<name> (the stored image
bytes, no re-encoding), with tfds_source.json saying where each split came from; later calls read that
copy without importing tensorflow_datasets or TensorFlow. A local PATH is cached again when its files
change. Split names map as for hf: (train, validation|valid|val, test). A data set with no validation
split (CUB-200-2011 has train and test only) gets one carved out of train: VALID_FRACTION of each class,
drawn with VALID_SEED, so the same images every time, and recorded in tfds_source.json.
"""
from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from keras_birds.data.images import DECODE_ERRORS
from keras_birds.data.layout import SPLIT_ALIASES, class_folder_names
from keras_birds.errors import UserError, brief

TFDS_PREFIX = "tfds:"
MANIFEST = "tfds_source.json"
MANIFEST_VERSION = 1
VALID_FRACTION = 0.1
VALID_SEED = 0
OUR_SPLITS = ("train", "valid", "test")
# Pillow's name for a stored image format -> the suffix written (formats the folder indexer reads).
SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp",
            "TIFF": ".tif"}
OFFLINE_HINT = ("download it where you are online with `tfds build {name}` (into TFDS_DATA_DIR, default "
                "~/tensorflow_datasets), copy that folder here and set TFDS_DATA_DIR to it, or pass "
                "--data tfds:PATH to a local TFDS or image folder")


def is_local(spec: str) -> bool:
    return spec.startswith(("/", "~", ".")) or os.path.isdir(spec)


def cache_folder(spec: str, cache_root) -> Path:
    """CACHE_ROOT/<name>[@<version>] for a named data set, CACHE_ROOT/local__<folder>__<hash of its path>."""
    if is_local(spec):
        real = os.path.realpath(os.path.expanduser(spec))
        digest = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        key = f"local__{os.path.basename(real) or 'root'}__{digest}"
    else:
        key = spec.replace("/", "__").replace(":", "@")
    return Path(cache_root) / class_folder_names([key])[0]


def fingerprint(folder) -> str:
    """Hash of every file's path, size and modification time under `folder`: changes when its data does."""
    digest, seen = hashlib.sha1(), set()
    for parent, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(parent)
        dirs[:] = [] if real in seen else sorted(dirs)  # a link back up would loop
        seen.add(real)
        for name in sorted(files):
            path = os.path.join(parent, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link
                continue
            line = f"{os.path.relpath(path, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def read_manifest(target) -> dict | None:
    try:
        manifest = json.loads((Path(target) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("manifest_version") == MANIFEST_VERSION else None


def materialize_tfds(spec: str, cache_root, progress=True) -> Path:
    """The Kaggle-layout folder of tfds:SPEC under cache_root, written first if it is not there (or, for a
    local folder, if that folder changed since)."""
    spec = spec.strip()
    if not spec:
        raise UserError("tfds: needs a data set name or a folder, e.g. --data tfds:caltech_birds2011")
    local = is_local(spec)
    if local and not os.path.isdir(os.path.expanduser(spec)):
        raise UserError(f"TFDS folder {spec} does not exist (tfds:PATH wants a prepared TFDS data set or "
                        f"an image folder ROOT/<split>/<class>/*.jpg)")
    target = cache_folder(spec, cache_root)
    stamp = fingerprint(os.path.expanduser(spec)) if local else None
    manifest = read_manifest(target)
    if manifest is not None and manifest.get("fingerprint") == stamp:
        return target
    if manifest is not None:
        print(f"note: {spec} changed since it was cached in {target}; caching it again", file=sys.stderr)
    tfds = _import_tfds(spec)
    tfds.display_progress_bar(progress)  # TFDS' own download and preparation bars: quiet with -q too
    builder = _local_builder(tfds, spec) if local else _named_builder(tfds, spec)
    tmp = _fresh_partial(target)
    try:
        manifest = _write_all(tfds, builder, spec, tmp, progress)
        manifest.update(fingerprint=stamp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        _publish(tmp, target, stamp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    carved = manifest["valid_carved"]
    if carved:
        # The counts that moved: with few images a class, "10%" rounds to far more (1 of 3 is 33%).
        moved, of = carved["images"], carved["of_train_images"]
        print(f"note: {spec} has no validation split; {moved} of its {of} train images ({moved / of:.0%}: "
              f"{carved['fraction']:.0%} of each class, rounded, at least 1 of a class with 2 or more; seed "
              f"{carved['seed']}) were moved to valid (recorded in {target / MANIFEST})", file=sys.stderr)
    return target


def _import_tfds(spec):
    try:
        import tensorflow  # noqa: F401  (tensorflow_datasets reads data sets through tf.data)
        import tensorflow_datasets as tfds
    except Exception as e:  # ImportError, or a broken install that fails otherwise
        raise UserError(f"reading tfds:{spec} needs tensorflow-datasets and TensorFlow "
                        f"({brief(e, 100, with_type=True)}); cache it once where they work (later runs read "
                        f"the cache without them), or pass --data ROOT with a Kaggle-layout folder") from e
    return tfds


def _named_builder(tfds, spec):
    data_dir = os.environ.get("TFDS_DATA_DIR") or None  # read now: TFDS reads it once, when first imported
    try:
        builder = tfds.builder(spec, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        name = spec.split(":")[0]
        close = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UserError(f"unknown TFDS data set '{spec}': not in tensorflow_datasets and not prepared in "
                        f"{data_dir or '~/tensorflow_datasets'} ({hint}a data set of your own: --data tfds:PATH to its folder)") from None
    except Exception as e:  # e.g. a version this tensorflow_datasets cannot build
        raise UserError(f"cannot open TFDS data set '{spec}' ({brief(e, 200)})") from e
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except ImportError as e:
            raise UserError(f"preparing TFDS data set '{spec}' needs a package that is not installed "
                            f"({brief(e, 160, with_type=True)}); pip install it and run again") from e
        except Exception as e:  # offline, host unreachable, a manual download needed: all end the same way
            raise UserError(f"cannot download TFDS data set '{spec}' ({brief(e, 120, with_type=True)}); "
                            + OFFLINE_HINT.format(name=spec.split(":")[0])) from e
    return builder


def _local_builder(tfds, spec):
    root = Path(os.path.expanduser(spec))
    found = [p.parent for pattern in ("dataset_info.json", "*/dataset_info.json", "*/*/dataset_info.json")
             for p in sorted(root.glob(pattern))]
    if len(found) > 1:
        listed = ", ".join(str(p.relative_to(root)) for p in found[:5])
        raise UserError(f"{root} holds {len(found)} prepared TFDS data sets ({listed}); pass tfds:PATH to one")
    try:
        if found:
            return tfds.builder_from_directory(str(found[0]))
        return tfds.folder_dataset.ImageFolder(str(root))
    except Exception as e:
        raise UserError(f"cannot read {root} as a TFDS data set ({brief(e, 120, with_type=True)}); expected the "
                        f"folder with dataset_info.json that `tfds build` writes, or ROOT/<split>/<class>/*.jpg") from e


def pick_features(tfds, info, spec) -> tuple:
    """(image key, class-label key, per-example class-name key or None) of a data set's top-level features:
    by type, preferring the supervised keys, then 'image'/'label', then a 3-channel image."""
    items = dict(info.features.items())
    supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else ()
    supervised = [k for k in supervised if isinstance(k, str)]
    listed = ", ".join(sorted(items))

    def pick(kind, preferred):
        found = [k for k, f in items.items() if isinstance(f, kind)]
        ranked = [k for k in preferred if k in found] + sorted(found, key=lambda k: _channels(items[k]) != 3)
        return ranked[0] if ranked else None

    image = pick(tfds.features.Image, supervised + ["image"])
    if image is None:
        raise UserError(f"TFDS data set '{spec}' has no image feature (a tfds.features.Image); it has: {listed}")
    label = pick(tfds.features.ClassLabel, supervised + ["label"])
    if label is None:
        raise UserError(f"TFDS data set '{spec}' has no class-label feature (a tfds.features.ClassLabel with the "
                        f"species); it has: {listed}")
    text = [k for k in (f"{label}_name", "label_name") if isinstance(items.get(k), tfds.features.Text)]
    return image, label, text[0] if text else None


def _channels(feature):
    shape = getattr(feature, "shape", None) or (None,)
    return shape[-1]


def map_splits(available, spec) -> dict:
    """{our split: their split name}; 'valid' absent when the data set has no validation split."""
    lower = {s.lower(): s for s in available}
    chosen = {}
    for alias, ours in SPLIT_ALIASES.items():
        if alias in lower and ours not in chosen:
            chosen[ours] = lower[alias]
    if "train" not in chosen or "test" not in chosen:
        raise UserError(f"TFDS data set '{spec}' has splits {sorted(available)}; need 'train' and 'test' "
                        f"('validation' is carved out of train when missing)")
    return chosen


def _image_file(data: bytes):
    """(bytes, suffix) to write: the stored bytes where the indexer reads their format, else a PNG of them;
    (None, None) for bytes that are no image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format in SUFFIXES:
                return data, SUFFIXES[img.format]
            img.load()
            out = io.BytesIO()
            img.save(out, "PNG")
            return out.getvalue(), ".png"
    except DECODE_ERRORS:
        return None, None


def _write_split(tfds, builder, theirs, keys, out_dir, progress) -> dict:
    """Write split `theirs` as out_dir/<label id>/<index in the split><suffix>; what it met on the way."""
    from tqdm.auto import tqdm

    image_key, label_key, name_key = keys
    n_classes = builder.info.features[label_key].num_classes
    skip = {k: tfds.decode.SkipDecoding() for k, f in builder.info.features.items()
            if isinstance(f, tfds.features.Image)}  # the bytes as stored; other images (masks) not decoded
    ds = builder.as_dataset(split=theirs, shuffle_files=False, decoders=skip)
    seen = {"written": 0, "unlabelled": 0, "not_images": [], "names": {}}
    total = builder.info.splits[theirs].num_examples
    for i, ex in enumerate(tqdm(tfds.as_numpy(ds), total=total, desc=f"caching {theirs}", unit="img",
                                disable=not progress)):
        label = int(ex[label_key])
        if not 0 <= label < n_classes:  # e.g. -1: a test split without labels
            seen["unlabelled"] += 1
            continue
        data, suffix = _image_file(bytes(ex[image_key]))
        if data is None:
            seen["not_images"].append(i)
            continue
        folder = out_dir / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}{suffix}").write_bytes(data)
        seen["written"] += 1
        if name_key is not None:
            seen["names"].setdefault(label, set()).add(ex[name_key].decode("utf-8", "replace"))
    return seen


def class_names(label_feature, name_key, names_seen: dict) -> tuple:
    """(names, the feature they came from): the ClassLabel's names; where it has only numbers ('0', '1'...,
    as CUB in TFDS) the per-example name feature's (label_name), for each class that has one name throughout."""
    names = list(label_feature.names)
    if names != [str(i) for i in range(len(names))] or not names_seen:
        return names, "ClassLabel.names"
    for label, seen in names_seen.items():
        if len(seen) == 1:
            names[label] = next(iter(seen))
    return names, name_key


def carve_valid(stage: Path, n_classes: int, fraction=VALID_FRACTION, seed=VALID_SEED) -> list:
    """Move `fraction` of each class's files (at least one of a class with two or more, never its last)
    from stage/train/<label> to stage/valid/<label>, drawn with `seed`; the moved train indices, sorted."""
    rng = np.random.default_rng(seed)
    moved = []
    for label in range(n_classes):
        src, dst = stage / "train" / str(label), stage / "valid" / str(label)
        files = sorted(os.listdir(src), key=lambda n: int(n.split(".")[0])) if src.is_dir() else []
        k = min(max(round(fraction * len(files)), 1 if len(files) >= 2 else 0), max(len(files) - 1, 0))
        dst.mkdir(parents=True, exist_ok=True)
        for j in sorted(rng.permutation(len(files))[:k]):
            os.replace(src / files[j], dst / files[j])
            moved.append(int(files[j].split(".")[0]))
    return sorted(moved)


def _write_all(tfds, builder, spec, tmp: Path, progress) -> dict:
    """Every split into tmp in the Kaggle layout (class folders named after the species); the manifest."""
    info = builder.info
    keys = pick_features(tfds, info, spec)
    splits = map_splits(list(info.splits.keys()), spec)
    stage = tmp / ".by_label"
    seen = {ours: _write_split(tfds, builder, theirs, keys, stage / ours, progress) for ours, theirs in splits.items()}
    for ours, what in seen.items():
        if not what["written"]:
            raise UserError(f"TFDS data set '{spec}': its '{splits[ours]}' split holds no labelled images "
                            f"({what['unlabelled']} without a label, {len(what['not_images'])} not images)")
    n_classes = info.features[keys[1]].num_classes
    carved = carve_valid(stage, n_classes) if "valid" not in splits else None
    names_seen = {}
    for what in seen.values():
        for label, names in what["names"].items():
            names_seen.setdefault(label, set()).update(names)
    names, names_from = class_names(info.features[keys[1]], keys[2], names_seen)
    folders = class_folder_names(names)
    for ours in OUR_SPLITS:
        for label, folder in enumerate(folders):
            src, dst = stage / ours / str(label), tmp / ours / folder
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                os.replace(src, dst)
            else:  # no image of this class in this split: every split still lists every class
                dst.mkdir()
    shutil.rmtree(stage)
    return {
        "manifest_version": MANIFEST_VERSION, "source": TFDS_PREFIX + spec, "dataset": info.name,
        "version": str(info.version), "image_feature": keys[0], "label_feature": keys[1],
        "class_names_from": names_from,
        "splits": {**splits, **({"valid": "carved out of " + splits["train"]} if carved is not None else {})},
        "valid_carved": None if carved is None else {
            "from": splits["train"], "fraction": VALID_FRACTION, "seed": VALID_SEED, "images": len(carved),
            "of_train_images": seen["train"]["written"], "train_indices": carved},
        "images": {ours: sum(1 for _ in (tmp / ours).glob("*/*")) for ours in OUR_SPLITS},
        "left_out": {splits[ours]: {"unlabelled": what["unlabelled"], "not_images": what["not_images"]}
                     for ours, what in seen.items() if what["unlabelled"] or what["not_images"]},
        "class_folders": dict(zip(folders, names)),
    }


def _fresh_partial(target: Path) -> Path:
    """An empty working folder beside target, after removing those left by dead processes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob(f".{target.name}.partial-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid() or not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    tmp.mkdir()
    return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _publish(tmp: Path, target: Path, stamp):
    """Rename the finished tmp to target in one step (an older copy of target is moved aside first); keep
    target as it is when another process has just written the same data there (it may be reading it)."""
    current = read_manifest(target)
    if current is not None and current.get("fingerprint") == stamp:
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:  # another process published first
        manifest = read_manifest(target)
        if manifest is None or manifest.get("fingerprint") != stamp:
            raise
    shutil.rmtree(old, ignore_errors=True)
