"""ResNet18, ImageNet weights from KerasHub's resnet_18_imagenet preset; the study's two-phase schedule.

    keras-birds train resnet18                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train resnet18 --data ROOT                     # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="resnet18")
