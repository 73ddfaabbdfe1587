"""ConvNeXt-Tiny, ImageNet weights from keras.applications (KerasHub has no ConvNeXt).

    keras-birds train recipes/convnext_tiny.py                      # BIRDS-525 from the Hugging Face Hub
    keras-birds train recipes/convnext_tiny.py --data ROOT          # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="convnext_tiny")
