"""Recipes: what to train, as plain data.

The dataclass defaults ARE the study's shared base (two phases, one-cycle, AdamW, label smoothing,
flip/perspective/rotation/affine augmentation), so a recipe file only states what differs.
A recipe file is a Python file that defines ``RECIPE = Recipe(...)``.
"""
from __future__ import annotations

import dataclasses
import re
import runpy
import typing
from dataclasses import dataclass, field
from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.models.registry import POOLINGS

# The public Hugging Face copy of Kaggle's BIRDS-525 (splits train/validation/test).
DEFAULT_DATA = "hf:yashikota/birds-525-species-image-classification"


HEAD_INITS = ("random", "class_mean", "probe")


@dataclass(frozen=True)
class Augment:
    """Training-batch augmentation (Keras core layers); 0 / False turns a step off."""

    flip: bool = True  # random horizontal flip
    perspective: float = 0.1  # RandomPerspective factor
    rotation: float = 15.0  # degrees, +-
    translate: float = 0.1  # fraction of the image, +-
    zoom: float = 0.1  # fraction, +-
    shear: float = 0.1  # shear factor, +-


@dataclass(frozen=True)
class Recipe:
    """Everything a training run needs. Field names are what `--set KEY=VALUE` takes."""

    model: str = "efficientnet_b0"
    weights: str = "imagenet"  # "imagenet", "none" (random init) or a local preset dir / weights file
    data: str = DEFAULT_DATA  # a Kaggle-layout folder ROOT/{train,valid,test}/<SPECIES>/ or "hf:<id>"
    image_size: int = 224
    batch_size: int = 32
    epochs: tuple = (2, 10)  # (head-only warm-up with BatchNorm frozen, all layers)
    lr: tuple = (1e-2, 1e-3)  # one-cycle peak learning rate of each phase
    weight_decay: float = 0.05  # AdamW
    label_smoothing: float = 0.1
    dropout: float = 0.2  # before the classification head
    pooling: str = "avg"  # "avg" or "max" over the backbone's last feature map
    l2_features: bool = False  # unit-length pooled features (cosine head); pair with head_init="probe"
    augment: Augment = field(default_factory=Augment)
    seed: int = 0
    workers: int = 2  # loader threads decoding and augmenting batches
    exclude: str = ""  # a file listing image paths to leave out (one per line), e.g. from `clean`
    # Few-shot options: measured to matter when there are only a few images per species.
    # "random", "class_mean" (head imprinted from class-mean features) or "probe" (linear probe fitted
    # to convergence on frozen features before any epoch: LP-FT)
    head_init: str = "random"
    probe_views: int = 2  # head_init="probe": augmented passes over the train images (each also mirrored)
    freeze_bn: bool = False  # keep BatchNorm in inference mode in the all-layers phase too
    head_lr_mult: float = 1.0  # head LR = lr[1] * head_lr_mult in the all-layers phase
    tta_flip: bool = False  # evaluation averages the image and its mirror image
    name: str = ""  # set from the recipe file's name

    def __post_init__(self):
        problems = []
        if len(self.epochs) != 2 or any(int(e) < 0 for e in self.epochs) or sum(self.epochs) == 0:
            problems.append(f"epochs must be two counts (warm-up, all layers), got {self.epochs}")
        if len(self.lr) != 2 or any(float(v) <= 0 for v in self.lr):
            problems.append(f"lr must be two positive peak rates, got {self.lr}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.image_size < 32:
            problems.append(f"image_size must be >= 32, got {self.image_size}")
        if self.probe_views < 0:
            problems.append(f"probe_views must be >= 0, got {self.probe_views}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.head_init not in HEAD_INITS:
            problems.append(f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if problems:
            raise UserError("; ".join(problems))
        # A recipe may write epochs=[2, 10] or lr=(1, 1): store the types overrides and JSON expect.
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        object.__setattr__(self, "lr", tuple(float(v) for v in self.lr))

    @property
    def random_init(self) -> bool:
        return self.weights.lower() in ("none", "random", "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        d["augment"] = Augment(**d.get("augment", {}))
        d["epochs"], d["lr"] = tuple(d["epochs"]), tuple(d["lr"])
        return cls(**d)


def load_recipe(path) -> Recipe:
    """Run a recipe file and return its validated RECIPE; any problem is one UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe file {path} does not exist (see recipes/ for the shipped ones)")
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
    recipe = ns.get("RECIPE")
    if not isinstance(recipe, Recipe):
        raise UserError(f"recipe file {path} must define RECIPE = Recipe(...)")
    if not recipe.name:
        recipe = dataclasses.replace(recipe, name=path.stem)
    return check_model_name(recipe, str(path))


def check_model_name(recipe: Recipe, where: str) -> Recipe:
    from keras_birds.models.registry import MODELS  # table only, no heavy imports

    if recipe.model not in MODELS:
        raise UserError(f"{where}: unknown model '{recipe.model}' (known: {', '.join(MODELS)})")
    return recipe


def _field_names(cls) -> list:
    return [f.name for f in dataclasses.fields(cls)]


def _parse(raw: str, current, annotation: str, key: str):
    """Parse an override string as the type of the field it replaces."""
    if dataclasses.is_dataclass(current):
        names = ", ".join(f"{key}.{f.name}" for f in dataclasses.fields(current))
        raise UserError(f"--set {key}={raw}: {key} is a group of fields; set them one by one ({names})")
    try:
        if isinstance(current, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
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
        raise UserError(f"--set {key}={raw}: not a valid {annotation} ({e})") from e


def apply_overrides(recipe: Recipe, overrides: dict) -> Recipe:
    """Apply {"key": "value"} overrides; nested fields use dots (augment.rotation=0)."""
    top, nested = {}, {}
    for key, raw in overrides.items():
        if raw is None:
            continue
        head, _, sub = key.partition(".")
        if head not in _field_names(Recipe):
            raise UserError(f"unknown recipe field '{key}' (known: {', '.join(_field_names(Recipe))})")
        hints = typing.get_type_hints(Recipe)
        if sub:
            if head != "augment" or sub not in _field_names(Augment):
                raise UserError(
                    f"unknown recipe field '{key}' (augment fields: {', '.join(_field_names(Augment))})"
                )
            nested[sub] = _parse(str(raw), getattr(recipe.augment, sub), sub, key)
        else:
            top[head] = _parse(str(raw), getattr(recipe, head), str(hints[head]), key)
    if nested:
        top["augment"] = dataclasses.replace(recipe.augment, **nested)
    return check_model_name(dataclasses.replace(recipe, **top), "override")
