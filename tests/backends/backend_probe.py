"""Run under one Keras backend (KERAS_BACKEND=...): `python backend_probe.py JOB.npz OUT.npz`.

JOB holds real images, a model.keras written on torch and the head weights of that model. OUT gets the
probabilities of (a) that file loaded here and (b) EfficientNet-Lite0 built here with its packaged
ImageNet weights and the same head, and (c) how far one head-LR-multiplied AdamW step moved a backbone
and a head kernel.
"""
import sys

import numpy as np

import keras_birds  # noqa: F401  (imported first: the backend comes from the environment)


def head_lr_step():
    """|change| of a body and a head kernel after one HeadLRAdamW step with head_lr_mult=10 (Adam: = lr)."""
    import keras

    from keras_birds.training.optimizer import make_optimizer

    inp = keras.Input((4,))
    body = keras.layers.Dense(3, name="body", kernel_initializer="ones")
    head = keras.layers.Dense(2, name="head", kernel_initializer="ones")
    model = keras.Model(inp, head(body(inp)))
    before = [keras.ops.convert_to_numpy(v) for v in (body.kernel, head.kernel)]
    model.compile(make_optimizer(1e-3, 0.0, 10.0), "mse")
    model.fit(np.ones((8, 4), "float32"), np.zeros((8, 2), "float32"), batch_size=8, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in (body.kernel, head.kernel)]
    return np.array([np.abs(a - b).max() for a, b in zip(after, before)])


def main(job_path, out_path):
    import keras

    from keras_birds.inference.runners import KerasRunner
    from keras_birds.models.build import HEAD, build_classifier

    job = np.load(job_path)
    keras_file = str(job["keras_file"])
    images = job["images"]
    from_file = keras.saving.load_model(keras_file, compile=False)
    built = build_classifier("efficientnet_lite0", job["head_bias"].shape[0], "imagenet", image_size=images.shape[1],
                             dropout=0.0)
    built.get_layer(HEAD).set_weights([job["head_kernel"], job["head_bias"]])
    np.savez(out_path, backend=keras.backend.backend(),
             from_file=KerasRunner(from_file, keras_file).predict(images),
             built=KerasRunner(built, keras_file).predict(images), head_lr=head_lr_step())


if __name__ == "__main__":
    main(*sys.argv[1:])
