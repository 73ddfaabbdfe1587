"""Which of a run's exported files to use: export.json's gate-passing files, the smallest and fastest first.

The web page ships a .tflite (a phone downloads it); the HTTP server answers with whichever passed the
gate, int8 .tflite first (the fastest file on a CPU, measured in docs/commands/export.md).
"""
from __future__ import annotations

import json
from pathlib import Path

from keras_birds.errors import UserError

QUANTIZE_ORDER = ("int8", "dynamic", "fp16", "none")  # smallest first
FORMAT_ORDER = ("tflite", "onnx")


def read_report(export_dir) -> dict:
    """export_dir/export.json, parsed; a one-line error when it is missing or not JSON."""
    export_dir = Path(export_dir)
    try:
        return json.loads((export_dir / "export.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{export_dir} has no export.json: run `keras-birds export RUN` first") from None
    except ValueError as e:
        raise UserError(f"{export_dir / 'export.json'} is not JSON ({e})") from None


def choose_exported(export_dir, report: dict, log, formats=FORMAT_ORDER) -> dict:
    """export.json's entry of the file to use among `formats`: gate-passing files first (int8 .tflite first),
    then files exported with --no-verify (with a warning); an error when every one failed the gate."""
    export_dir = Path(export_dir)
    present = [f for f in report.get("files", []) if f.get("format") in formats and (export_dir / f["file"]).is_file()]
    q_rank = {q: i for i, q in enumerate(QUANTIZE_ORDER)}
    present.sort(key=lambda f: (formats.index(f["format"]), q_rank.get(f.get("quantize"), len(q_rank))))
    passed = [f for f in present if f.get("verified") is True]
    if passed:
        return passed[0]
    unchecked = [f for f in present if f.get("verified") is None]
    if unchecked:
        log(f"warning: {unchecked[0]['file']} was exported with --no-verify: the export gate never checked it")
        return unchecked[0]
    kinds = " or ".join(f".{f}" for f in formats)
    why = f"every {kinds} failed the export gate" if present else f"it lists no {kinds} file"
    raise UserError(f"{export_dir / 'export.json'}: {why}; export one that passes "
                    f"(keras-birds export RUN --quantize int8)")
