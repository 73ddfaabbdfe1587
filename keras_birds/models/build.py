"""build_classifier(name, n_classes, weights) -> keras.Model(raw RGB pixels 0-255 -> class probabilities).

Preprocessing lives inside the model, so loaders, runners and exported files agree by construction.
"""
from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from keras_birds.errors import UserError, brief
from keras_birds.models.registry import IMAGENET_MEAN, IMAGENET_STD, MODELS, POOLINGS, ModelSpec, resolve_image_size

BACKBONE = "backbone"
FEATURES = "features"
HEAD = "head"

if TYPE_CHECKING:  # annotation only: recipe imports models.registry, and build stays import-light
    from keras_birds.recipe import Recipe


def _offline_error(what: str, e: Exception) -> UserError:
    return UserError(
        f"cannot load weights '{what}' ({type(e).__name__}: {brief(e)}); if you are offline, pass "
        f"--weights none (random init) or --weights PATH (a local KerasHub preset dir or .weights.h5 file)"
    )


def _load_local(load, path: str):
    """Load a local weights file; a file that does not fit the backbone is one UserError, not a traceback."""
    try:
        load(path)
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"cannot load weights from {path} ({type(e).__name__}: {brief(e)}); it must hold this model's backbone "
            f"weights, or pass --weights none (random init)"
        ) from e


def _keras_hub_backbone(class_name: str, converter: str, spec: ModelSpec, weights: str, image_size: int):
    """A KerasHub backbone (any input size: image_size is unused). class_name: in keras_hub.models;
    converter: the keras_hub.src.utils.timm module that knows the family's configs."""
    import keras_hub

    if weights == "none" or weights.endswith(".h5"):
        # KerasHub's timm converters hold the exact configs of its presets: reuse them for random init.
        convert = importlib.import_module(f"keras_hub.src.utils.timm.{converter}").convert_backbone_config
        backbone = getattr(keras_hub.models, class_name)(**convert({"architecture": spec.arch}), name=BACKBONE)
        if weights != "none":
            _load_local(backbone.load_weights, weights)
        return backbone
    source = spec.imagenet if weights == "imagenet" else weights
    try:
        return keras_hub.models.Backbone.from_preset(source, name=BACKBONE)
    except Exception as e:  # network, missing files, wrong format: one clear line for all
        raise _offline_error(source, e) from e


def _lite_backbone(spec: ModelSpec, weights: str, image_size: int):
    from keras_birds.models.efficientnet_lite import build_efficientnet_lite_backbone
    from keras_birds.models.lite_weights import load_packaged_lite_weights

    backbone = build_efficientnet_lite_backbone(spec.arch, input_shape=(image_size, image_size, 3), name=BACKBONE)
    if weights == "imagenet":
        load_packaged_lite_weights(backbone, spec.arch)
    elif weights.endswith(".h5"):
        _load_local(backbone.load_weights, weights)
    elif weights != "none":
        _load_local(lambda path: load_packaged_lite_weights(backbone, spec.arch, checkpoint_path=path), weights)
    return backbone


def _convnext_backbone(spec: ModelSpec, weights: str, image_size: int):
    builder = getattr(keras.applications, spec.arch)
    source = None if weights == "none" else weights
    try:
        return builder(include_top=False, include_preprocessing=True, weights=source,
                       input_shape=(image_size, image_size, 3), name=BACKBONE)
    except Exception as e:
        raise _offline_error(f"keras.applications.{spec.arch}({weights})", e) from e


# ModelSpec.family -> its backbone builder (spec, weights, image_size); weights already normalised.
BACKBONE_BUILDERS = {
    "keras_hub_resnet": functools.partial(_keras_hub_backbone, "ResNetBackbone", "convert_resnet"),
    "keras_hub_efficientnet": functools.partial(_keras_hub_backbone, "EfficientNetBackbone", "convert_efficientnet"),
    "efficientnet_lite": _lite_backbone,
    "convnext": _convnext_backbone,
}


def _preprocessing(spec: ModelSpec):
    if spec.preprocessing == "imagenet_mean_std":
        return keras.layers.Normalization(
            mean=[255.0 * m for m in IMAGENET_MEAN], variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
            name="preprocess")
    if spec.preprocessing == "lite":
        from keras_birds.models.efficientnet_lite import LITE_INPUT_OFFSET, LITE_INPUT_SCALE

        return keras.layers.Rescaling(LITE_INPUT_SCALE, LITE_INPUT_OFFSET, name="preprocess")
    return None  # the backbone normalises its own input


def normalize_weights(weights) -> str:
    """'imagenet', 'none' or an existing local path; anything else is a one-line error."""
    w = str(weights if weights is not None else "none")
    if w.lower() in ("none", "random", ""):
        return "none"
    if w.lower() == "imagenet" or w.startswith(("hf://", "kaggle://")):
        return w.lower() if w.lower() == "imagenet" else w
    if not Path(w).exists():
        raise UserError(f"weights '{w}' is neither 'imagenet', 'none' nor an existing file or preset folder; "
                        f"pass --weights none (random init) or --weights PATH to an existing preset dir or .weights.h5")
    return w


def build_backbone(name: str, weights="imagenet", image_size: int | None = None):
    spec = MODELS.get(name)
    if spec is None:
        raise UserError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    weights = normalize_weights(weights)
    return spec, BACKBONE_BUILDERS[spec.family](spec, weights, resolve_image_size(name, image_size))


def build_classifier(name: str, n_classes: int, weights="imagenet", image_size: int | None = None,
                     dropout: float = 0.2, pooling: str = "avg", l2_features: bool = False) -> keras.Model:
    """Raw RGB pixels (N, S, S, 3) float 0-255 -> class probabilities (N, n_classes).

    pooling: "avg" or "max" over the backbone's last feature map; l2_features: scale the pooled
    features to unit length (a cosine classifier: the head then compares directions only).
    """
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    spec, backbone = build_backbone(name, weights, image_size)
    size = resolve_image_size(name, image_size)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = inputs
    pre = _preprocessing(spec)
    if pre is not None:
        x = pre(x)
    x = backbone(x)
    pool = keras.layers.GlobalMaxPooling2D if pooling == "max" else keras.layers.GlobalAveragePooling2D
    # FEATURES names the last feature layer: what the head reads and head initialisation extracts.
    x = pool(name="pool" if l2_features else FEATURES)(x)
    if l2_features:
        x = keras.layers.UnitNormalization(name=FEATURES)(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 under a mixed-precision policy too: a bfloat16 softmax rounds probabilities to ~3 digits.
    outputs = keras.layers.Dense(n_classes, activation="softmax", name=HEAD, dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def classifier_options(recipe: Recipe) -> dict:
    """The build_classifier keywords a recipe fixes besides the model name.

    A Recipe only: a run's saved recipe.json goes through Recipe.from_dict, which gives a field the
    run predates the default it was built with.
    """
    if isinstance(recipe, dict):  # a one-line hint rather than an AttributeError deep in a caller
        raise TypeError("classifier_options takes a Recipe; for a saved recipe.json pass Recipe.from_dict(d)")
    return {"image_size": recipe.image_size, "dropout": recipe.dropout,
            "pooling": recipe.pooling, "l2_features": bool(recipe.l2_features)}


def feature_model(model: keras.Model) -> keras.Model:
    """The same model up to the pooled features (shares weights), e.g. for head initialisation."""
    return keras.Model(model.input, model.get_layer(FEATURES).output)
