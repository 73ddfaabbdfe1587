"""reexport_command(run, file) -> the `keras-birds export` line that makes an exported file again.

For messages that tell the user to re-export (a file older than its run's unknown.json): the formats and
quantisations the folder's export.json lists, so the new export.json describes every file beside it
again; without one, those the file's own name says.
"""
from __future__ import annotations

import json
from pathlib import Path

from keras_birds.export.tflite import FILE_NAMES, QUANTIZE


def _listed(folder: Path) -> tuple | None:
    """({formats}, [tflite quantisations]) of the folder's export.json, or None."""
    try:
        files = json.loads((folder / "export.json").read_text(encoding="utf-8"))["files"]
        formats = {f["format"] for f in files}
        quantize = {f["quantize"] for f in files if f["format"] == "tflite"}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return formats, [q for q in QUANTIZE if q in quantize]


def _named(file: Path) -> tuple:
    if file.suffix.lower() == ".onnx":
        return {"onnx"}, []
    by_name = {name: q for q, name in FILE_NAMES.items()}
    return {"tflite"}, [by_name.get(file.name.replace(".unverified", ""), "none")]


def reexport_command(run_path, file) -> str:
    """The command line; --out only where the file is not in the run's default export folder."""
    file = Path(file)
    formats, quantize = _listed(file.parent) or _named(file)
    flags = ["--onnx"] if formats == {"onnx"} else ["--tflite"] if formats == {"tflite"} else []  # none: both
    if quantize and quantize != ["none"] and "tflite" in formats:
        flags.append(f"--quantize {','.join(quantize)}")
    if file.parent.resolve() != (Path(run_path) / "export").resolve():
        flags.append(f"--out {file.parent}")
    return " ".join([f"keras-birds export {run_path}", *flags])
