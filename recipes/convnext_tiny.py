"""ConvNeXt-Tiny, ImageNet weights from keras.applications (KerasHub has no ConvNeXt).

    keras-birds train convnext_tiny                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train convnext_tiny --data ROOT                     # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="convnext_tiny")
