#!/usr/bin/env bash
# CI: keras-birds as users get it. Build the sdist and wheel and check them, install the wheel into a fresh
# venv (no editable install, no source tree on the path), then from an empty folder train a shipped recipe by
# name on birds-mini and eval, export and predict that run.
#   bash .ci/wheel_chain.sh [DATA]        (DATA: a Kaggle-layout folder, default ../shared/data/birds-mini)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "${1:-$repo/../shared/data/birds-mini}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$repo"
rm -rf dist
.venv/bin/python -m build --outdir dist . >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
.venv/bin/twine check --strict dist/*
wheel=$(ls dist/keras_birds-*.whl)
echo "== $wheel: $(.venv/bin/python -m zipfile -l "$wheel" | grep -c 'keras_birds/recipes/') recipe files"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"   # the package pins torch==2.13.0 (the CPU build)
"$work/venv/bin/pip" check
mkdir "$work/empty" && cd "$work/empty"
kb="$work/venv/bin/keras-birds"
"$work/venv/bin/python" - <<'PY'
import keras_birds, keras_birds.recipe as r
assert "site-packages" in keras_birds.__file__, keras_birds.__file__
pkg = __import__("pathlib").Path(keras_birds.__file__).parent
assert r.RECIPES_DIR.parent == pkg, r.RECIPES_DIR
# what the commands read at run time besides modules: the TFLite worker, the web page's template
for needed in ("export/_tflite_worker.py", "export/web/template/index.html", "export/web/template/app.js"):
    assert (pkg / needed).is_file(), f"the wheel lacks keras_birds/{needed}"
print(f"== installed at {keras_birds.__file__}; {len(r.shipped_recipes())} shipped recipes")
PY
# to a file first: grep -q quits at its match, and under pipefail the writer's broken pipe failed CI
"$kb" recipes > recipes.txt
grep -q "^effnet_lite0_fewshot " recipes.txt
set -x
"$kb" train effnet_lite0_fewshot --data "$data" --out run -q
"$kb" eval run --split test --latency-runs 0 -q
"$kb" export run --quantize int8 --latency-runs 0 -q
image=$(find "$data/test" -name '*.jpg' | sort | sed -n 1p)   # sed reads all: no broken pipe
"$kb" predict "$image" --model run/export/model_int8.tflite --json > predict.json
set +x
"$work/venv/bin/python" - "$image" "$data" <<'PY'
import json, sys
from pathlib import Path
image, data = Path(sys.argv[1]), Path(sys.argv[2])
out = json.load(open("predict.json"))
species = {p.name for p in (data / "train").iterdir()}
(result,) = out["results"]
top = [t["species"] for t in result["top_k"]]
print(f"== predict {image.parent.name}/{image.name}: {top[:3]} (p={result['probability']})")
assert result["path"] == str(image) and len(top) == 5 and set(top) <= species, out
PY
echo "== wheel chain passed"
