"""ResNet34 trained from random init (the study's no-pretraining baseline): no frozen warm-up, 12 epochs all layers.

    keras-birds train resnet34_scratch                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train resnet34_scratch --data ROOT                     # a local Kaggle-layout copy
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="resnet34", weights="none", epochs=(0, 12), lr=(1e-3, 1e-3))
