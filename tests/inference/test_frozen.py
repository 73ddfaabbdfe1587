"""inference/frozen.py: frozen forward passes through ONNX Runtime give Keras' outputs on real images."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

SIZE = 96


@pytest.fixture(scope="module")
def images():
    paths = sorted((SHARED_DATA / "birds-mini" / "test").rglob("*.jpg"))[:20]
    if not paths:
        pytest.skip("../shared/data/birds-mini not present")
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE))) for p in paths]).astype("float32")


def test_features_through_onnxruntime_match_keras_on_real_images(images, monkeypatch):
    import keras

    from keras_birds.inference import frozen
    from keras_birds.models.build import build_classifier, feature_model

    keras.utils.set_random_seed(0)
    features = feature_model(build_classifier("efficientnet_lite0", 25, "imagenet", image_size=SIZE))
    expected = np.asarray(features.predict_on_batch(images))
    monkeypatch.setattr(frozen, "SWITCH_AFTER", 16)
    predict = frozen.frozen_predictor(features, batch=8)
    got = [predict(images[:8]), predict(images[8:16])]  # Keras until 16 images were seen
    assert predict.runner == "keras"
    got += [predict(images[16:])]  # the switch: checked on this batch (4 rows, padded to 8)
    assert predict.runner == "onnxruntime" and predict.difference <= frozen.TOLERANCE
    got += [predict(images[:13])]  # ONNX Runtime now: 13 rows = a batch of 8 and one padded
    assert np.abs(np.concatenate(got[:3]) - expected).max() <= 1e-4
    assert np.abs(got[3] - expected[:13]).max() <= 1e-4
    assert np.abs(got[3] - expected[:13]).max() > 0  # another runner really answered


def test_keras_stays_the_runner_when_turned_off(images, monkeypatch):
    from keras_birds.inference import frozen
    from keras_birds.models.build import build_classifier, feature_model

    monkeypatch.setenv(frozen.ENV, "keras")
    features = feature_model(build_classifier("efficientnet_lite0", 25, "none", image_size=SIZE))
    predict = frozen.frozen_predictor(features, batch=8)
    for _ in range(3):
        out = predict(images[:8])
    assert predict.runner == "keras" and np.array_equal(out, np.asarray(features.predict_on_batch(images[:8])))
