"""The images of an --unknown DIR: photos of species the model does not know.

DIR is a Kaggle-layout folder (DIR/{train,valid,test}/<SPECIES>/*.jpg) or any folder of images (walked
recursively). With split folders, calibrate-unknown reads every split but test, and eval --split S
reads DIR/S, so the test figures come from images the threshold never saw; without them both read
all of DIR. A species folder named after one of the model's classes is refused: those are not unknown.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_birds.data.sources import SPLITS, SplitIndex, image_files_under
from keras_birds.errors import UserError

CALIBRATION = "calibration"  # the part calibrate-unknown reads: all splits but test


def unknown_index(folder, part: str, known_classes) -> SplitIndex:
    """The unknown images of DIR for `part` (a split name, or CALIBRATION), as one SplitIndex labelled 0."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"--unknown {root} is not a folder (expected images of species the model does not know, "
                        f"e.g. DIR/<SPECIES>/*.jpg or DIR/{{train,valid,test}}/<SPECIES>/*.jpg)")
    has_splits = any((root / s).is_dir() for s in SPLITS)
    if not has_splits:
        folders = [root]
    elif part == CALIBRATION:
        folders = [root / s for s in SPLITS if s != "test" and (root / s).is_dir()]
    else:
        folders = [root / part]
    paths = [p for f in folders if f.is_dir() for p in sorted(str(q) for q in image_files_under(f))]
    where = ", ".join(str(f) for f in folders)
    if not paths:
        raise UserError(f"--unknown: no image files under {where} "
                        f"({'no ' + part + ' split there' if has_splits and part != CALIBRATION else 'empty'})")
    _refuse_known(paths, folders, known_classes)
    return SplitIndex(part, ["unknown"], paths, np.zeros(len(paths), np.int64))


def _refuse_known(paths, folders, known_classes):
    known = {c.casefold(): c for c in known_classes}
    for path in paths:
        parent = Path(path).parent
        if parent not in folders and parent.name.casefold() in known:
            raise UserError(f"--unknown: {parent} is named after '{known[parent.name.casefold()]}', a species the "
                            f"model knows; give images of species outside its classes.txt")
