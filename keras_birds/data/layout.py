"""The Kaggle folder layout that downloaded data sets (hf:, tfds:) are materialised into: which of their
split names mean which of ours, and class names made into folder names that the indexer reads back."""
from __future__ import annotations

import unicodedata

# Split names of Hub and TFDS data sets -> ours.
SPLIT_ALIASES = {"train": "train", "validation": "valid", "valid": "valid", "val": "valid", "test": "test"}
NAME_BYTES = 200  # room under the usual 255-byte file-name limit for a suffix that makes a name unique


def unsafe_char(ch: str) -> bool:
    """Control characters, line separators and lone surrogates (undecodable bytes of a file name): they
    would break a line of a text file or the file's UTF-8."""
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def _folder_name(name: str) -> str:
    safe = "".join("_" if ch in "/\\" or unsafe_char(ch) else ch for ch in name)
    safe = safe.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore")
    # The indexer skips hidden folders ('.', '..', '.x'); an empty name cannot be a folder.
    return "_" + safe if not safe or safe.startswith(".") else safe


def class_folder_names(names) -> list:
    """One folder name per class name, in order: the name itself where it can be a folder, else with
    separators and control characters replaced by '_' (and '_' before a leading '.'); ' (2)', ' (3)'...
    after a name that would repeat an earlier one, so no two classes share a folder."""
    out, taken = [], set()
    for name in names:
        base = _folder_name(str(name))
        folder, k = base, 1
        while folder.casefold() in taken:  # case-insensitive file systems (macOS, Windows) too
            k += 1
            folder = f"{base} ({k})"
        taken.add(folder.casefold())
        out.append(folder)
    return out

