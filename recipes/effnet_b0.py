"""EfficientNet-B0, ImageNet weights from KerasHub's efficientnet_b0_ra_imagenet preset.

    keras-birds train effnet_b0                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train effnet_b0 --data ROOT                     # a local Kaggle-layout copy

Offline smoke run on the CI data set (random init, short epochs):

    keras-birds train effnet_b0 --data ../shared/data/birds-mini --weights none --epochs 1,1 --batch-size 16
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="efficientnet_b0")
