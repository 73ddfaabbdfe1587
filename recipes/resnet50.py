"""ResNet50, ImageNet weights from KerasHub's resnet_50_imagenet preset.

    keras-birds train resnet50                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train resnet50 --data ROOT                     # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="resnet50")
