#!/usr/bin/env bash
# A separate venv with MediaPipe Tasks, for tools/check_mediapipe.py only (not part of the core
# install: mediapipe + OpenCV add ~300 MB, and apps, not this package, run MediaPipe).
#   bash tools/setup_mediapipe.sh [VENV_DIR]      (default .venv-mediapipe)
# mediapipe 1.2.3 needs no protobuf pin, so it would not clash with TensorFlow; it stays apart
# only to keep the core install small. numpy/pillow are for the check's worker.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-mediapipe}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q mediapipe==1.2.3 pillow
"$VENV/bin/pip" check
"$VENV/bin/python" -c "from mediapipe.tasks.python.vision import image_classifier; print('mediapipe ready in $VENV')"
