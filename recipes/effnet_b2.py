"""EfficientNet-B2, ImageNet weights from KerasHub's efficientnet_b2_ra_imagenet preset.

    keras-birds train recipes/effnet_b2.py                      # BIRDS-525 from the Hugging Face Hub
    keras-birds train recipes/effnet_b2.py --data ROOT          # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="efficientnet_b2")
