"""Where a model's class names come from, first found wins:

  - a run directory, or a .keras file inside one: the run's classes.txt;
  - an exported file: its own metadata (ONNX metadata_props, TFLite metadata entry, key `labels`,
    `class_names` or `classes`, a JSON list or one name per line; or a `labels.txt` packed into
    the .tflite as a TFLite Support associated file), then `labels.txt` beside the file (one class
    per line), then the classes.txt of a run directory the file sits in (or one level below it).
Otherwise there are none and the caller must trust the data's class order.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from keras_birds.inference.context import RunContext

LABEL_KEYS = ("labels", "class_names", "classes")


def parse_labels(text) -> list | None:
    """A JSON list of names, or one name per line (trailing blank lines dropped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip("\n")
    if not text.strip():
        return None
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
            if isinstance(names, list):
                return [str(n) for n in names]
        except ValueError:
            pass
    return text.splitlines()


def enclosing_run(path: Path) -> RunContext | None:
    """The run directory a model file sits in (or one folder below), if any."""
    for folder in (path.parent, path.parent.parent):
        run = RunContext(folder)
        if run.is_run():
            return run
    return None


def labels_beside(path: Path, run: RunContext | None):
    """(names, where from) of a labels.txt beside `path`, else of the run's classes.txt, else (None, None)."""
    beside = path.parent / "labels.txt"
    if beside.is_file():
        names = parse_labels(beside.read_text(encoding="utf-8"))
        if names:
            return names, str(beside)
    if run is not None and run.classes_txt.is_file():
        return run.class_names(), str(run.classes_txt)
    return None, None


def labels_of_file(path: Path, inside: list | None, run: RunContext | None):
    """(names, where from): the names the file carries, else those beside it (labels_beside)."""
    return (inside, f"{path.name} metadata") if inside else labels_beside(path, run)


def onnx_labels(metadata: dict) -> list | None:
    """Class names from an ONNX file's metadata_props."""
    return next((parse_labels(metadata[k]) for k in LABEL_KEYS if metadata.get(k)), None)


def tflite_labels(buf: bytes) -> list | None:
    """Class names from a .tflite flatbuffer's metadata entries, else from a packed labels file."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        model = schema.Model.GetRootAs(buf, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() and entry.Name().decode() in LABEL_KEYS:
                data = model.Buffers(entry.Buffer()).DataAsNumpy()
                names = parse_labels(data.tobytes()) if isinstance(data, np.ndarray) else None
                if names:
                    return names
    except Exception:
        pass
    if zipfile.is_zipfile(io.BytesIO(buf)):
        try:  # TFLite Support metadata packs associated files (labels.txt) as a zip after the model
            with zipfile.ZipFile(io.BytesIO(buf)) as z:
                label_files = [n for n in z.namelist() if n.lower().endswith(".txt")]
                if label_files:
                    return parse_labels(z.read(sorted(label_files, key=lambda n: "label" not in n.lower())[0]))
        except Exception:
            pass
    return None
