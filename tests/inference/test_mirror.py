"""The one mirror-image helper behind flip TTA (eval, predict, training's validation) and head_init's views."""
import numpy as np

from keras_birds.inference.mirror import flip_averaged, mirrored


def test_mirrored_numpy_and_tensor_batches_alike():
    import keras

    x = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    m = mirrored(x)
    assert m.flags["C_CONTIGUOUS"] and np.array_equal(m, x[:, :, ::-1])
    assert np.array_equal(mirrored(list(x)), m)  # a list of images, as predict may pass
    tensor = mirrored(keras.ops.convert_to_tensor(x))  # an on-device augmented batch stays a tensor
    assert not isinstance(tensor, np.ndarray) and np.array_equal(keras.ops.convert_to_numpy(tensor), m)


def test_flip_averaged_is_the_mean_of_both_passes():
    seen = []

    def predict(images):
        seen.append(images)
        return images.reshape(len(images), -1)[:, :2].astype(np.float32)

    x = np.random.default_rng(0).integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    out = flip_averaged(predict)(x)
    assert len(seen) == 2 and np.array_equal(seen[1], x[:, :, ::-1])
    np.testing.assert_allclose(out, (predict(x) + predict(x[:, :, ::-1].copy())) / 2)
