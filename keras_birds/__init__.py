"""keras-birds: ImageNet-pretrained CNNs -> small, accurate bird-species classifiers for phones."""
import os

# Keras reads its backend once, at first import: default to PyTorch unless the user chose one
# (jax and tensorflow run the same commands; keras_birds/backends.py).
os.environ.setdefault("KERAS_BACKEND", "torch")
# KerasHub imports TensorFlow; its C++ start-up chatter buries our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
