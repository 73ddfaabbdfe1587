"""ResNet18, ImageNet weights from KerasHub's resnet_18_imagenet preset; the study's two-phase schedule.

    keras-birds train recipes/resnet18.py                      # BIRDS-525 from the Hugging Face Hub
    keras-birds train recipes/resnet18.py --data ROOT          # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="resnet18")
