"""tools/check_mediapipe.py on the tiny run's files: MediaPipe Tasks' ImageClassifier (the API phone
apps call) loads every .tflite and names the same top-1 species as our LiteRT runner.

Needs the separate MediaPipe venv (`bash tools/setup_mediapipe.sh`, or KERAS_BIRDS_MEDIAPIPE_PYTHON);
skipped where it is not installed, e.g. in CI.
"""
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MP_PYTHON = Path(os.environ.get("KERAS_BIRDS_MEDIAPIPE_PYTHON", REPO / ".venv-mediapipe" / "bin" / "python"))


@pytest.mark.skipif(not MP_PYTHON.exists(), reason=f"no MediaPipe venv at {MP_PYTHON} (bash tools/setup_mediapipe.sh)")
def test_mediapipe_reads_labels_and_agrees_with_litert(exported, birds_mini):
    spec = importlib.util.spec_from_file_location("check_mediapipe", REPO / "tools" / "check_mediapipe.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    report = tool.check([exported.out_dir], birds_mini, "test", MP_PYTHON)
    assert set(report["files"]) == {"model_fp32.tflite", "model_fp16.tflite", "model_dynamic.tflite", "model_int8.tflite"}
    for name, row in report["files"].items():
        assert row["error"] is None, (name, row["error"])
        assert row["ok"] and row["images"] == 25, (name, row)
        assert row["metadata"]["normalization"] == {"mean": [0.0], "std": [1.0]}
        assert row["metadata"]["output_files"] == [["labels.txt", 2]]
