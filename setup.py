"""setup.cfg holds the metadata; this file only adds the top-level recipes/ folder to the package.

The recipes stay at the top of the checkout (the design card's layout; an editable install reads them in
place) and a wheel installs them as keras_birds/recipes/, so `keras-birds train NAME` works after a plain
`pip install` (setup.cfg's `packages = find:` cannot map a folder outside the package).
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["keras_birds", "keras_birds.*"]) + ["keras_birds.recipes"],
    package_dir={"keras_birds.recipes": "recipes"},
)
