"""build_classifier(name, n_classes, weights) -> keras.Model(raw RGB pixels 0-255 -> class probabilities).

Preprocessing lives inside the model, so loaders, runners and exported files agree by construction.
"""
from __future__ import annotations

from pathlib import Path

import keras

from keras_birds.errors import UserError
from keras_birds.models.registry import IMAGENET_MEAN, IMAGENET_STD, MODELS, POOLINGS, ModelSpec

BACKBONE = "backbone"
FEATURES = "features"
HEAD = "head"


def _offline_error(what: str, e: Exception) -> UserError:
    first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
    return UserError(
        f"cannot load weights '{what}' ({type(e).__name__}: {first}); if you are offline, pass "
        f"--weights none (random init) or --weights PATH (a local KerasHub preset dir or .weights.h5 file)"
    )


def _load_local(load, path: str):
    """Load a local weights file; a file that does not fit the backbone is one UserError, not a traceback."""
    try:
        load(path)
    except UserError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise UserError(
            f"cannot load weights from {path} ({type(e).__name__}: {first}); it must hold this model's backbone "
            f"weights, or pass --weights none (random init)"
        ) from e


def _keras_hub_config(spec: ModelSpec) -> dict:
    # KerasHub's timm converters hold the exact configs of its presets: reuse them for random init.
    if spec.family == "keras_hub_resnet":
        from keras_hub.src.utils.timm.convert_resnet import convert_backbone_config
    else:
        from keras_hub.src.utils.timm.convert_efficientnet import convert_backbone_config
    return convert_backbone_config({"architecture": spec.arch})


def _keras_hub_backbone(spec: ModelSpec, weights: str):
    import keras_hub

    cls = keras_hub.models.ResNetBackbone if spec.family == "keras_hub_resnet" else keras_hub.models.EfficientNetBackbone
    if weights == "none":
        return cls(**_keras_hub_config(spec), name=BACKBONE)
    source = spec.imagenet if weights == "imagenet" else weights
    if weights.endswith(".h5"):
        backbone = cls(**_keras_hub_config(spec), name=BACKBONE)
        _load_local(backbone.load_weights, weights)
        return backbone
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
    size = image_size or spec.image_size
    if spec.family in ("keras_hub_resnet", "keras_hub_efficientnet"):
        return spec, _keras_hub_backbone(spec, weights)
    if spec.family == "efficientnet_lite":
        return spec, _lite_backbone(spec, weights, size)
    return spec, _convnext_backbone(spec, weights, size)


def build_classifier(name: str, n_classes: int, weights="imagenet", image_size: int | None = None,
                     dropout: float = 0.2, pooling: str = "avg", l2_features: bool = False) -> keras.Model:
    """Raw RGB pixels (N, S, S, 3) float 0-255 -> class probabilities (N, n_classes).

    pooling: "avg" or "max" over the backbone's last feature map; l2_features: scale the pooled
    features to unit length (a cosine classifier: the head then compares directions only).
    """
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    spec, backbone = build_backbone(name, weights, image_size)
    size = image_size or spec.image_size
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


def classifier_options(recipe) -> dict:
    """The build_classifier keywords a recipe (a Recipe or its saved dict) fixes besides the model name.

    Runs saved before a field existed lack its key: they get the default they were built with.
    """
    get = recipe.get if isinstance(recipe, dict) else lambda key, default: getattr(recipe, key, default)
    return {"image_size": get("image_size", None), "dropout": get("dropout", 0.2),
            "pooling": get("pooling", "avg"), "l2_features": bool(get("l2_features", False))}


def feature_model(model: keras.Model) -> keras.Model:
    """The same model up to the pooled features (shares weights), e.g. for head initialisation."""
    return keras.Model(model.input, model.get_layer(FEATURES).output)
