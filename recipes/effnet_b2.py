"""EfficientNet-B2, ImageNet weights from KerasHub's efficientnet_b2_ra_imagenet preset.

    keras-birds train effnet_b2                                 # BIRDS-525 from the Hugging Face Hub
    keras-birds train effnet_b2 --data ROOT                     # a local Kaggle-layout copy

Trains at 224px, as the study and BIRDS-525's images; --set image_size=native for B2's native
size (`keras-birds models` lists both).
"""
from keras_birds.recipe import Recipe

RECIPE = Recipe(model="efficientnet_b2")
