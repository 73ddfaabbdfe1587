"""Recipes: what to train, as plain data.

The dataclass defaults ARE the study's shared base (two phases, one-cycle, AdamW, label smoothing,
flip/perspective/rotation/affine augmentation), so a recipe file only states what differs.
A recipe file is a Python file that defines ``RECIPE = Recipe(...)``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path

from keras_birds.data.sources import absolute_source
from keras_birds.errors import UserError
from keras_birds.models.registry import POOLINGS, resolve_image_size
from keras_birds.recipe_checks import check_number, check_whole, is_number, pair, shown, whole

# The public Hugging Face copy of Kaggle's BIRDS-525 (splits train/validation/test).
DEFAULT_DATA = "hf:yashikota/birds-525-species-image-classification"


def _shipped_recipes_dir() -> Path:
    """keras_birds/recipes in a wheel (setup.py installs the checkout's recipes/ there), else recipes/ beside
    the package (a source checkout or an editable install, which read the files in place)."""
    inside = Path(__file__).resolve().parent / "recipes"
    return inside if inside.is_dir() else Path(__file__).resolve().parents[1] / "recipes"


# The shipped recipe files: `keras-birds recipes` lists them; a recipe argument may name one.
RECIPES_DIR = _shipped_recipes_dir()
HEAD_INITS = ("random", "class_mean", "probe")
# Augment's photo-corruption fields: the names of keras_birds.data.corruptions.CORRUPTIONS, in its order.
CORRUPTION_FIELDS = ("fog", "rain", "low_light", "overexposure", "colour_cast", "defocus_blur", "motion_blur",
                     "gaussian_noise", "jpeg")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Augment:
    """Training-batch augmentation (the Keras layers' meanings; torch ops on the training device on the torch
    backend, see data/augment.py); 0 / False turns a step off."""

    flip: bool = True  # random horizontal flip
    perspective: float = 0.1  # RandomPerspective scale (how far corners move), [0, 1]
    rotation: float = 15.0  # degrees, +-, [0, 180] (180 already allows any angle)
    translate: float = 0.1  # fraction of the image, +-, [0, 1]
    zoom: float = 0.1  # fraction, +-, [0, 1) (zooming in by 100% would leave no image)
    shear: float = 0.1  # shear factor, +-, [0, 1]
    # Photo corruptions (data/corruptions.py), after the steps above: (strength, probability) in [0, 1], that share
    # of images at a strength drawn in [0, strength] (1 = `eval --corruptions` severity 5); --set augment.fog=0.8,0.1
    fog: tuple = (0.0, 0.0)  # fog/haze: an uneven bright veil
    rain: tuple = (0.0, 0.0)  # rain streaks over a darker scene
    low_light: tuple = (0.0, 0.0)  # under-exposed, with shot and read noise
    overexposure: tuple = (0.0, 0.0)  # over-exposure and backlight glare, highlights blown
    colour_cast: tuple = (0.0, 0.0)  # a wrong white balance
    defocus_blur: tuple = (0.0, 0.0)  # a disc-shaped lens blur
    motion_blur: tuple = (0.0, 0.0)  # camera shake
    gaussian_noise: tuple = (0.0, 0.0)  # per-pixel noise
    jpeg: tuple = (0.0, 0.0)  # JPEG re-compression, quality 60 down to 7

    def __post_init__(self):
        # The ranges the Keras layers accept (build_augmenter), checked here so a bad value is one line.
        problems = []
        for name, high, high_open, unit in (("perspective", 1, False, ""), ("rotation", 180, False, " (degrees)"),
                                            ("translate", 1, False, ""), ("zoom", 1, True, ""),
                                            ("shear", 1, False, "")):
            check_number(problems, self, name, 0, high, high_open=high_open, unit=unit, prefix="augment.")
        for name, v in ((n, getattr(self, n)) for n in CORRUPTION_FIELDS):
            if pair(v, lambda x: is_number(x) and 0 <= x <= 1):  # NaN fails the comparison
                object.__setattr__(self, name, tuple(float(x) for x in v))  # JSON gives a list
            else:
                problems.append(f"augment.{name} must be two numbers in [0, 1] (strength, probability), e.g. 0.8,0.1; "
                                f"got {shown(v)}")
        if problems:
            raise UserError("; ".join(problems))


@dataclass(frozen=True)
class Recipe:
    """Everything a training run needs. Field names are what `--set KEY=VALUE` takes.

    Relative paths (data, exclude, a local weights file, teacher, unlabeled), in a recipe file or on the command line, are
    relative to the current working directory of the command. A new run stores them absolute in its
    recipe.json, with what was typed in `as_given`, so the run works from any folder afterwards; a run
    stored before this rule keeps its relative path (read from the working directory, as then).
    """

    model: str = "efficientnet_b0"
    # "imagenet", "none" (random init) or a local preset dir / weights file (relative: to the working dir)
    weights: str = "imagenet"
    # a Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/ (relative: to the working dir) or "hf:<id>"
    data: str = DEFAULT_DATA
    # input side in pixels, >= 32; None: resolve_image_size(model), i.e. TRAIN_SIZE (224, the study's);
    # "native": the model's native resolution (`keras-birds models` lists both)
    image_size: int | str | None = None
    batch_size: int = 32  # >= 1
    epochs: tuple = (2, 10)  # (head-only warm-up with BatchNorm frozen, all layers), >= 0, not both 0
    lr: tuple = (1e-2, 1e-3)  # one-cycle peak learning rate of each phase, > 0
    weight_decay: float = 0.05  # AdamW, [0, 1]
    label_smoothing: float = 0.1  # [0, 1)
    dropout: float = 0.2  # before the classification head, [0, 1)
    pooling: str = "avg"  # "avg" or "max" over the backbone's last feature map
    l2_features: bool = False  # unit-length pooled features (cosine head); pair with head_init="probe"
    augment: Augment = field(default_factory=Augment)
    seed: int = 0  # [0, 2**30]: offsets are added to it and Keras keeps layer seeds as int32
    workers: int = 0  # loader threads decoding and augmenting batches, >= 0; 0 = one per usable CPU core
    # decode each split once into a uint8 array (memory-mapped .npy, ~S*S*3 bytes an image) under
    # $KERAS_BIRDS_CACHE/arrays (default ~/.cache/keras_birds/arrays), reused by later epochs and runs
    cache: bool = False
    # a file listing image paths to leave out (one per line), e.g. from `clean` (relative: to the working dir)
    exclude: str = ""
    # Few-shot options (measured to matter with a few images per species): "random", "class_mean" (head imprinted
    # from class-mean features) or "probe" (linear probe fitted to convergence on frozen features first: LP-FT)
    head_init: str = "random"
    probe_views: int = 2  # head_init="probe": augmented passes over the train images (each also mirrored), >= 0
    freeze_bn: bool = False  # keep BatchNorm in inference mode in the all-layers phase too
    head_lr_mult: float = 1.0  # head LR = lr[1] * head_lr_mult in the all-layers phase, > 0
    tta_flip: bool = False  # evaluation averages the image and its mirror image
    tensorboard: bool = True  # write RUN/tensorboard/ event files (`tensorboard --logdir runs`); false: none
    # Training compute dtype: "auto" (bfloat16 on a GPU that supports it, else float32), "float32",
    # "bfloat16" or "float16" (mixed: variables, checkpoints and exports stay float32; fp16 loss-scaled).
    precision: str = "auto"
    # Distillation (training/distill.py): a teacher run dir, or several comma-separated (an ensemble averaging
    # their probabilities), "" = none; the student matches its softened outputs on the same augmented view.
    teacher: str = ""
    kd_temperature: float = 4.0  # > 0: softens both distributions
    kd_alpha: float = 0.9  # [0, 1]: weight of the KD term; 1 - kd_alpha weights the label loss
    kd_views: int = 0  # >= 0: cache the teacher's outputs on this many seeded augmented epochs, cycled; 0: online
    unlabeled: str = ""  # a folder of extra bird photos (any layout) the teacher labels, trained on by KD alone
    int8_float_convs: int = 0  # export's default: int8 keeps this many convolutions (largest error) float32, >= 0
    name: str = ""  # set from the recipe file's name
    # Written by train, not a setting: {field: value as typed} for the paths a new run made absolute.
    as_given: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "image_size", resolve_image_size(self.model, self.image_size))
        problems = []
        if not pair(self.epochs, lambda e: whole(e) is not None and e >= 0) or sum(self.epochs) == 0:
            problems.append("epochs must be two whole numbers >= 0, not both 0 (warm-up, all layers), e.g. 2,10; "
                            f"got {shown(self.epochs)}")
        if not pair(self.lr, lambda v: is_number(v) and math.isfinite(v) and v > 0):
            problems.append("lr must be two finite numbers > 0 (one-cycle peak rates of warm-up, all layers), "
                            f"e.g. 0.01,0.001; got {shown(self.lr)}")
        for name, low in (("image_size", 32), ("batch_size", 1), ("workers", 0), ("probe_views", 0), ("kd_views", 0),
                          ("int8_float_convs", 0)):
            check_whole(problems, self, name, low)
        check_whole(problems, self, "seed", 0, 2**30)
        check_number(problems, self, "weight_decay", 0, 1)
        check_number(problems, self, "label_smoothing", 0, 1, high_open=True)
        check_number(problems, self, "dropout", 0, 1, high_open=True)  # 1 would drop every feature
        check_number(problems, self, "head_lr_mult", 0, None, low_open=True)
        check_number(problems, self, "kd_temperature", 0, None, low_open=True)
        check_number(problems, self, "kd_alpha", 0, 1)
        if self.unlabeled and not self.teacher:
            problems.append(f"unlabeled={self.unlabeled} needs a teacher to label its photos: set teacher=RUN_DIR too")
        if not isinstance(self.cache, bool):
            problems.append(f"cache must be true or false, got {shown(self.cache)}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.head_init not in HEAD_INITS:
            problems.append(f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
        if not isinstance(self.as_given, dict):
            problems.append(f"as_given must be a dict of the paths as typed, got {shown(self.as_given)}")
        if problems:
            raise UserError("; ".join(problems))
        # A recipe may write epochs=[2, 10] or lr=(1, 1): store the types overrides and JSON expect.
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        object.__setattr__(self, "lr", tuple(float(v) for v in self.lr))

    @property
    def random_init(self) -> bool:
        return self.weights.lower() in ("none", "random", "")

    @property
    def local_weights(self) -> bool:
        """weights names a local preset dir or weights file (not imagenet, random init or a hub handle)."""
        w = self.weights
        return not self.random_init and w.lower() != "imagenet" and not w.startswith(("hf://", "kaggle://"))

    def with_absolute_paths(self) -> "Recipe":
        """This recipe with data, exclude and local weights absolute (against the working directory),
        and what they were before recorded in as_given. A new run stores this form."""
        paths = {"data": self.data or None,  # a folder (ROOT, tfds:PATH) made absolute; hf:ID, tfds:NAME as given
                 "exclude": self.exclude or None, "weights": self.weights if self.local_weights else None,
                 "teacher": self.teacher or None, "unlabeled": self.unlabeled or None}
        changed = {k: absolute_source(v) if k == "data" else _absolute(v, several=k == "teacher") for k, v in paths.items() if v}
        changed = {k: v for k, v in changed.items() if v != paths[k]}
        if not changed:
            return self
        return dataclasses.replace(self, **changed, as_given={**self.as_given, **{k: paths[k] for k in changed}})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """A stored recipe.json; one written before as_given existed reads with as_given={}."""
        d = dict(d)
        d["augment"] = Augment(**d.get("augment", {}))
        d["epochs"], d["lr"] = tuple(d["epochs"]), tuple(d["lr"])
        return cls(**d)


def _absolute(path: str, several: bool = False) -> str:
    if several:  # a comma-separated list (teacher ensembles)
        return ",".join(os.path.abspath(p.strip()) for p in path.split(",") if p.strip())
    return os.path.abspath(path)


# Recipe files load_recipe is running, innermost last: extends() resolves its base beside the last, catches cycles.
_LOADING: list = []


def shipped_recipes() -> dict:
    """{name: file} of the recipes that ship with keras-birds, by name; files named _* are helpers."""
    if not RECIPES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.py")) if not p.name.startswith("_")}


def find_recipe(name_or_path) -> tuple:
    """(file, note): a recipe file's path, or a shipped recipe's name (`effnet_lite0_fewshot`, with or without
    .py). A local file wins over a shipped recipe of the same name; `note` then says so (else "")."""
    given = str(name_or_path)
    bare = "/" not in given and "\\" not in given  # a name, not a path into a folder
    stem = given.removesuffix(".py")
    shipped = shipped_recipes()
    candidates = [Path(given)] + ([Path(f"{given}.py")] if bare and not given.endswith(".py") else [])
    local = next((p for p in candidates if p.is_file()), None)
    if local is not None:
        same = bare and stem in shipped and local.resolve() != shipped[stem].resolve()
        return local, (f"using the recipe file {local} in this folder, not the shipped recipe {stem} "
                       f"(keras-birds recipes {stem} prints that one)" if same else "")
    if bare and stem in shipped:
        return shipped[stem], ""
    close = difflib.get_close_matches(Path(stem).name, list(shipped), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"recipe file {given} does not exist and no shipped recipe has that name: {hint}"
                    f"`keras-birds recipes` lists the shipped ones")


def load_recipe(path) -> Recipe:
    """Run a recipe file (or the shipped recipe of that name, see find_recipe) and return its validated RECIPE;
    any problem is one UserError naming it."""
    path, note = find_recipe(path)
    if note:
        from keras_birds.console import log

        log(note)
    _LOADING.append(path)
    try:
        ns = runpy.run_path(str(path))
    except SyntaxError as e:
        raise UserError(f"recipe file {path} does not parse: line {e.lineno}: {e.msg}") from e
    except TypeError as e:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if m:
            raise UserError(
                f"recipe file {path}: unknown field '{m.group(1)}' "
                f"(known: {', '.join(_field_names(Recipe))})"
            ) from e
        raise UserError(f"recipe file {path}: {e}") from e
    except UserError as e:
        raise UserError(f"recipe file {path}: {e}") from e
    except Exception as e:  # a recipe is user code: any failure is reported against the file
        raise UserError(f"recipe file {path} failed: {type(e).__name__}: {e}") from e
    finally:
        _LOADING.pop()
    recipe = ns.get("RECIPE")
    if not isinstance(recipe, Recipe):
        raise UserError(f"recipe file {path} must define RECIPE = Recipe(...)")
    if not recipe.name:
        recipe = dataclasses.replace(recipe, name=path.stem)
    return check_model_name(recipe, str(path))


def extends(base: str, **changes) -> Recipe:
    """In a recipe file: the recipe `base` (a name, e.g. "effnet_lite0": the file of that name beside the
    calling file, else the shipped recipe) with `changes`, named after the calling file unless changes give
    a name.

        RECIPE = extends("effnet_lite0", model="efficientnet_lite1", image_size="native")
    """
    # The caller is the file load_recipe is running (its _LOADING entry), not an inspect-ed frame: that
    # holds however extends is reached (a helper function, a module imported by the recipe), and clearing
    # the name lets load_recipe name the result after that file, its rule for every recipe.
    if not _LOADING:
        raise UserError(f'extends("{base}") works in a recipe file run by keras-birds train or load_recipe')
    caller = _LOADING[-1]
    stem = base.removesuffix(".py")
    path = caller.with_name(f"{stem}.py")
    shipped = shipped_recipes()
    if not path.is_file() and stem in shipped:
        path = shipped[stem]
    if "/" in base or "\\" in base or not path.is_file():
        beside = sorted(p.stem for p in caller.parent.glob("*.py") if p != caller and not p.name.startswith("_"))
        close = difflib.get_close_matches(stem, list(shipped), n=3, cutoff=0.5)
        raise UserError(f'extends("{base}"): no recipe {stem}.py beside {caller.name} and no shipped recipe of that '
                        f"name (beside it: {', '.join(beside) or 'none'}; shipped: "
                        f"{'did you mean ' + ', '.join(close) + '? ' if close else ''}`keras-birds recipes` lists them)")
    if path.resolve() in {p.resolve() for p in _LOADING}:
        chain = " -> ".join(p.stem for p in _LOADING)
        raise UserError(f'extends("{base}"): recipes extend each other in a cycle ({chain} -> {stem})')
    return dataclasses.replace(load_recipe(path), **{"name": "", **changes})


def check_model_name(recipe: Recipe, where: str) -> Recipe:
    from keras_birds.models.registry import MODELS  # table only, no heavy imports

    if recipe.model not in MODELS:
        raise UserError(f"{where}: unknown model '{recipe.model}' (known: {', '.join(MODELS)})")
    return recipe


def _field_names(cls) -> list:
    return [f.name for f in dataclasses.fields(cls) if f.name != "as_given"]  # as_given: written by train


_NUMBERS = {1: "one", 2: "two", 3: "three"}


def _expected(current) -> str:
    """What an override of a field holding `current` must look like, in words."""
    if isinstance(current, bool):
        return "true or false"
    if isinstance(current, int):
        return "a whole number"
    if isinstance(current, float):
        return "a number"
    kind = "whole numbers" if all(isinstance(v, int) for v in current) else "numbers"
    return f"{_NUMBERS.get(len(current), len(current))} comma-separated {kind}, e.g. {shown(current)}"


def _parse(raw: str, current, key: str):
    """Parse an override string as the type of the field it replaces."""
    if dataclasses.is_dataclass(current):
        names = ", ".join(f"{key}.{f.name}" for f in dataclasses.fields(current))
        raise UserError(f"--set {key}={raw}: {key} is a group of fields; set them one by one ({names})")
    if key == "image_size" and raw == "native":
        return raw  # Recipe resolves it for the (possibly also overridden) model
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(current, tuple):
            parts = [p for p in raw.split(",") if p.strip()]
            kinds = [type(v) for v in current] or [str]
            return tuple(kinds[min(i, len(kinds) - 1)](p.strip()) for i, p in enumerate(parts))
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        return raw
    except ValueError as e:
        also = " or native" if key == "image_size" else ""
        raise UserError(f"--set {key}={raw}: expected {_expected(current)}{also}") from e


def parse_sets(values) -> dict:
    """{"key": "value"} of `--set KEY=VALUE` strings, for apply_overrides."""
    bad = [item for item in values if "=" not in item]
    if bad:
        raise UserError(f"--set {bad[0]}: expected KEY=VALUE (e.g. --set augment.rotation=10)")
    return {key.strip(): value for key, _, value in (item.partition("=") for item in values)}


def apply_overrides(recipe: Recipe, overrides: dict) -> Recipe:
    """Apply {"key": "value"} overrides; nested fields use dots (augment.rotation=0)."""
    top, nested = {}, {}
    for key, raw in overrides.items():
        if raw is None:
            continue
        head, _, sub = key.partition(".")
        if head == "as_given":
            raise UserError(f"--set {key}: as_given is recorded by train (the data, exclude and weights paths as "
                            "typed, before the run stored them absolute); it is not a setting")
        if head not in _field_names(Recipe):
            raise UserError(f"unknown recipe field '{key}' (known: {', '.join(_field_names(Recipe))})")
        if sub:
            if head != "augment" or sub not in _field_names(Augment):
                raise UserError(
                    f"unknown recipe field '{key}' (augment fields: {', '.join(_field_names(Augment))})"
                )
            nested[sub] = _parse(str(raw), getattr(recipe.augment, sub), key)
        else:
            top[head] = _parse(str(raw), getattr(recipe, head), key)
    if nested:
        top["augment"] = dataclasses.replace(recipe.augment, **nested)
    return check_model_name(dataclasses.replace(recipe, **top), "override")
