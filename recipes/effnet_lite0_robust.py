"""EfficientNet-Lite0 for app users' real photos: the fine-tuning edge recipe (recipes/effnet_lite0.py)
trained through fog, rain, low light, backlight, colour casts, blur, sensor noise and JPEG re-compression
(data/corruptions.py), each on 2.5% of the training images at a random strength up to severity 3.

    keras-birds train effnet_lite0_robust --data ../shared/data/birds-dev
    keras-birds eval runs/effnet_lite0_robust --split valid --corruptions all

Chosen on birds-dev valid, seeds 0/1/2 against effnet_lite0.py's same seeds (one pass per image; docs/measurements.md
"Robustness"): clean 90.1% mean against 90.1%, severity-3 relative drop 10.4% against 16.2%. Each
corruption on 5% of the images lost 1.6 points of clean valid top-1 (88.5%, drop 9.6%); up to severity
5 on 10% lost more still.
"""
from keras_birds.recipe import Augment, extends

CORRUPTED = (0.6, 0.025)  # strength up to severity 3, on 2.5% of the images each: ~20% get at least one
RECIPE = extends(
    "effnet_lite0",
    augment=Augment(fog=CORRUPTED, rain=CORRUPTED, low_light=CORRUPTED, overexposure=CORRUPTED,
                    colour_cast=CORRUPTED, defocus_blur=CORRUPTED, motion_blur=CORRUPTED, gaussian_noise=CORRUPTED,
                    jpeg=CORRUPTED),
    int8_float_convs=0,  # its int8 figures (docs/measurements.md) were measured with every op int8
)
