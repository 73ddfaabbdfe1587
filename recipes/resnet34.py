"""ResNet34, ImageNet weights converted from timm (hf://timm/resnet34.a1_in1k) by KerasHub's loader.

    keras-birds train resnet34                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train resnet34 --data ROOT                     # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="resnet34")
