"""The data of a run that add-species wrote: NEW_RUN/data, a Kaggle-layout tree of symbolic links.

    NEW_RUN/data/{train,valid,test}/<SPECIES>  ->  the species folder in the old run's data, or in NEW_ROOT

Every class of the new run has a folder in every split (an empty one where there are no images, e.g. a
new species without valid photos), so the tree reads like any data set: `eval`, `export` (gate and
int8 calibration on old and new species), `compare` and `calibrate-unknown` of the new run need no
--data while the two data sets stay where they were. No image is copied. The old run's exclude list
is carried over as NEW_RUN/exclude.txt, its paths rewritten into the tree.
"""
from __future__ import annotations

import os
from pathlib import Path

from keras_birds.data.sources import SPLITS, format_exclude_line, read_exclude_entries
from keras_birds.run_dir import atomic_write_text


def species_folders(index) -> dict:
    """{class name: the folder its images in `index` sit in} (classes without images are left out)."""
    folders = {}
    for path, label in zip(index.paths, index.labels):
        folders.setdefault(index.class_names[label], str(Path(os.path.abspath(path)).parent))
    return folders


def write_tree(root: Path, classes: list, folders: dict):
    """root/<split>/<class>: a link to folders[split][class], else an empty folder."""
    for split in SPLITS:
        (root / split).mkdir(parents=True, exist_ok=True)
        for name in classes:
            target = folders.get(split, {}).get(name)
            if target:
                os.symlink(target, root / split / name, target_is_directory=True)
            else:
                (root / split / name).mkdir()


def carry_exclude_list(exclude: str, recorded_in, folders: dict, final_root: Path, out_file: Path) -> bool:
    """Write the old run's exclude entries that fall in a linked folder, as paths inside the final tree.
    Returns whether any was written."""
    if not exclude:
        return False
    entries = read_exclude_entries(exclude, recorded_in)
    where = {folder: (split, name) for split, by_name in folders.items() for name, folder in by_name.items()}
    lines = []
    for path, comment in sorted(entries.items()):
        hit = where.get(os.path.dirname(path))
        if hit:
            lines.append(format_exclude_line(str(final_root / hit[0] / hit[1] / os.path.basename(path)), comment))
    if lines:
        atomic_write_text(out_file, "\n".join(lines) + "\n")
    return bool(lines)
