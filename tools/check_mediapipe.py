"""Do our exported .tflite files work in MediaPipe Tasks' ImageClassifier, the API phone apps call?

    bash tools/setup_mediapipe.sh                      # once: .venv-mediapipe with mediapipe==1.2.3
    python tools/check_mediapipe.py runs/effnet_lite0/export [more dirs or .tflite files]
        [--data ../shared/data/birds-mini] [--split test] [--mediapipe-python PATH] [--json OUT]

For every .tflite: decode the split's images once with our loader (at the file's input size, so
both sides see the same pixels), run them through our LiteRT runner (keras_birds.inference.runners)
here, and through MediaPipe's ImageClassifier in the MediaPipe venv (this same file, `--worker`).
MediaPipe reads the class names from the labels.txt associated with the output tensor and
normalises float inputs with the NormalizationOptions of the metadata, so a file with missing or
wrong metadata fails here (float models without NormalizationOptions are refused outright).
The worker also reads the metadata back with MediaPipe's own generated schema classes.

Exit 0 when every file loads and MediaPipe's top-1 species name equals ours on every image (an
exact tie between two classes of a uint8 output counts as equal), else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# -- worker: runs inside the MediaPipe venv, imports nothing of ours --------------------------------
def _metadata_summary(path: str) -> dict:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta_fb
    from mediapipe.tasks.metadata import schema_py_generated as model_fb

    buf = Path(path).read_bytes()
    model = model_fb.Model.GetRootAs(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == b"TFLITE_METADATA":
            raw = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            meta = meta_fb.ModelMetadataT.InitFromObj(meta_fb.ModelMetadata.GetRootAs(raw, 0))
            sub = meta.subgraphMetadata[0]
            tin, tout = sub.inputTensorMetadata[0], sub.outputTensorMetadata[0]
            norm = next((u.options for u in tin.processUnits or [] if u.optionsType == 1), None)
            return {"identifier_ok": bool(meta_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)),
                    "min_parser_version": meta.minParserVersion.decode() if meta.minParserVersion else None,
                    "normalization": None if norm is None else {"mean": [float(v) for v in norm.mean],
                                                                "std": [float(v) for v in norm.std]},
                    "output_files": [(f.name.decode(), int(f.type)) for f in tout.associatedFiles or []]}
    return {"identifier_ok": False}


def worker(job_path: str) -> int:
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks.python import BaseOptions, vision

    job = json.loads(Path(job_path).read_text())
    results = {}
    for item in job["models"]:
        images = np.load(item["images"])
        entry = {"metadata": _metadata_summary(item["path"])}
        try:
            options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=item["path"]),
                                                    max_results=1)
            with vision.ImageClassifier.create_from_options(options) as classifier:
                top = []
                for image in images:
                    result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                          data=np.ascontiguousarray(image)))
                    c = result.classifications[0].categories[0]
                    top.append([c.category_name, float(c.score), int(c.index)])
            entry["top1"] = top
        except Exception as e:  # refused files are the finding, not a crash of the check
            entry["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e) else ''}"
        results[item["path"]] = entry
    Path(job["out"]).write_text(json.dumps(results))
    return 0


# -- driver: runs in the project venv --------------------------------------------------------------
def _tflite_files(paths) -> list:
    files = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.tflite")) if p.is_dir() else [p]
    return files


def check(paths, data, split="test", mediapipe_python=None) -> dict:
    import numpy as np

    from keras_birds.data.loader import BatchLoader
    from keras_birds.data.sources import folder_source
    from keras_birds.inference.runners import open_runner

    python = Path(mediapipe_python or os.environ.get("KERAS_BIRDS_MEDIAPIPE_PYTHON")
                  or REPO / ".venv-mediapipe" / "bin" / "python")
    if not python.exists():
        raise SystemExit(f"no MediaPipe venv at {python}: run `bash tools/setup_mediapipe.sh` first "
                         f"(or pass --mediapipe-python)")
    files = _tflite_files(paths)
    if not files:
        raise SystemExit(f"no .tflite files in {', '.join(map(str, paths))}")
    index = folder_source(data, splits=(split,))[split]
    ours, images_by_size = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        job = {"models": [], "out": str(Path(tmp) / "mediapipe.json")}
        for f in files:
            runner = open_runner(f)
            size = runner.image_size
            if size not in images_by_size:
                loader = BatchLoader(index, size, 64, workers=1)
                images_by_size[size] = np.concatenate([loader.load_batch(i)[0] for i in range(len(loader))])
                np.save(Path(tmp) / f"images_{size}.npy", images_by_size[size])
            probs = runner.predict(images_by_size[size])
            ours[str(f.resolve())] = (probs, runner.class_names)
            job["models"].append({"path": str(f.resolve()), "images": str(Path(tmp) / f"images_{size}.npy")})
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        proc = subprocess.run([str(python), __file__, "--worker", str(Path(tmp) / "job.json")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"MediaPipe worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        theirs = json.loads(Path(job["out"]).read_text())
    report = {"data": str(data), "split": split, "images": len(index), "files": {}}
    for path, (probs, names) in ours.items():
        mp_entry = theirs[path]
        row = {"metadata": mp_entry["metadata"], "error": mp_entry.get("error")}
        if "top1" in mp_entry:
            our_top = probs.argmax(1)
            same = ties = 0
            diffs = []
            for i, (name, score, idx) in enumerate(mp_entry["top1"]):
                if names is not None and name == names[our_top[i]]:
                    same += 1
                elif 0 <= idx < probs.shape[1] and probs[i, idx] == probs[i, our_top[i]]:
                    ties += 1
                diffs.append(abs(score - float(probs[i, our_top[i]])))
            row.update(images=len(mp_entry["top1"]), same_top1=same, ties=ties,
                       max_abs_score_diff=round(max(diffs), 6) if diffs else None,
                       example=[[mp_entry["top1"][i][0], names[our_top[i]] if names else None]
                                for i in range(min(3, len(our_top)))])
        row["ok"] = row["error"] is None and row.get("same_top1", 0) + row.get("ties", 0) == row.get("images", -1)
        report["files"][Path(path).name] = row
    report["ok"] = all(r["ok"] for r in report["files"].values())
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="export folders or .tflite files")
    parser.add_argument("--data", default=str(REPO / ".." / "shared" / "data" / "birds-mini"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--mediapipe-python", help="python of the MediaPipe venv [default: .venv-mediapipe]")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if not args.paths:
        parser.error("give at least one export folder or .tflite file")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    report = check(args.paths, args.data, args.split, args.mediapipe_python)
    print(f"MediaPipe Tasks ImageClassifier vs our LiteRT runner, {report['images']} {report['split']} images "
          f"of {report['data']}")
    for name, row in report["files"].items():
        if row["error"]:
            print(f"  {name:32s} FAIL  MediaPipe refused it: {row['error']}")
            continue
        meta = row["metadata"]
        ties = f" (+{row['ties']} exact ties)" if row["ties"] else ""
        print(f"  {name:32s} {'OK  ' if row['ok'] else 'FAIL'}  same top-1 species {row['same_top1']}/{row['images']}"
              f"{ties}, "
              f"max |score diff| {row['max_abs_score_diff']:.2g}; metadata as MediaPipe reads it: "
              f"normalization {meta.get('normalization')}, labels {meta.get('output_files')}; "
              f"e.g. {row['example'][0][0]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print("all files pass" if report["ok"] else "some files FAIL")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
