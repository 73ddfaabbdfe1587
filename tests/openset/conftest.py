"""birds-mini split 20 + 5 (links, no copies) and a run really trained on the 20 through `train()`."""
import os

import pytest

SIZE = 96  # EfficientNet-Lite0 with its packaged ImageNet weights: real features in seconds
N_NEW = 5


def link_subset(root, source, species):
    """root/{train,valid,test}/<SPECIES> -> the folders of `source` (symbolic links, as the data README asks)."""
    for split in ("train", "valid", "test"):
        (root / split).mkdir(parents=True)
        for name in species:
            os.symlink(source / split / name, root / split / name, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def mini_split(birds_mini, tmp_path_factory):
    """(OLD_ROOT with 20 species, NEW_ROOT with the other 5, their names)."""
    species = sorted(p.name for p in (birds_mini / "train").iterdir())
    old, new = species[:-N_NEW], species[-N_NEW:]
    base = tmp_path_factory.mktemp("mini_split")
    return link_subset(base / "old20", birds_mini, old), link_subset(base / "new5", birds_mini, new), old, new


@pytest.fixture(scope="session")
def old_run(mini_split, tmp_path_factory):
    """Lite0 at 96 px trained on the 20 old species: probe head (the few-shot recipe's), one head-only epoch."""
    from keras_birds.recipe import Augment, Recipe
    from keras_birds.training.train import train

    recipe = Recipe(model="efficientnet_lite0", weights="imagenet", data=str(mini_split[0]), image_size=SIZE,
                    batch_size=32, epochs=(1, 0), lr=(1e-3, 1e-4), workers=1, head_init="probe", probe_views=0,
                    augment=Augment(True, 0, 0, 0, 0, 0), name="old20")
    return train(recipe, tmp_path_factory.mktemp("runs") / "old20", verbose=0, log=lambda *_: None)
