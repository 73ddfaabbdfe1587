"""Few-shot head initialisation on real birds-mini images (Lite0, packaged ImageNet weights, 96 px)."""
import numpy as np
import pytest

from keras_birds.data.augment import build_augmenter
from keras_birds.data.loader import BatchLoader
from keras_birds.data.sources import folder_source
from keras_birds.recipe import Augment
from keras_birds.training.head_init import extract_features, init_head_from_class_means, init_head_from_probe

SIZE = 96


@pytest.fixture(scope="module")
def setup(birds_mini):
    from keras_birds.models.build import build_classifier

    index = folder_source(birds_mini)
    model = build_classifier("efficientnet_lite0", 25, "imagenet", SIZE)
    return model, index


def _top1(model, index, split):
    loader = BatchLoader(index[split], SIZE, 64, workers=1)
    hits = [(model.predict_on_batch(x).argmax(1) == y.argmax(1)) for x, y in (loader[i] for i in range(len(loader)))]
    return float(np.concatenate(hits).mean())


def test_extract_features_with_mirror_views(setup):
    model, index = setup
    loader = BatchLoader(index["train"], SIZE, 32, workers=1)
    f, y = extract_features(model, [loader])
    f2, y2 = extract_features(model, [loader], flip_too=True)
    assert f.shape == (75, 1280) and len(f2) == 150 and (np.bincount(y) == 3).all()
    assert np.bincount(y2).tolist() == [6] * 25
    assert not np.allclose(f2[:32], f2[32:64])  # the mirrored batch is another view, not a copy


def test_probe_head_fits_train_and_generalises(setup):
    model, index = setup
    views = [BatchLoader(index["train"], SIZE, 32, workers=1),
             BatchLoader(index["train"], SIZE, 32, workers=1, augmenter=build_augmenter(Augment(), 7))]
    init_head_from_probe(model, views, 25)
    assert _top1(model, index, "train") == 1.0  # converged on the train images
    probe_valid = _top1(model, index, "valid")
    init_head_from_class_means(model, BatchLoader(index["train"], SIZE, 32, workers=1), 25)
    centroid_valid = _top1(model, index, "valid")
    # 25 species, 3 images each: chance is 4%; both heads name most real valid birds right.
    assert probe_valid >= 0.6 and centroid_valid >= 0.6, (probe_valid, centroid_valid)
