"""build_page(export_dir) -> EXPORT/web/: a static page that names the birds in photos, in the browser.

    web/
      index.html, app.js, imaging.js, tflite.js, style.css   the page (template/ beside this file)
      model.json                 what the page shows about the model: name, file, size, export date
      model_int8.tflite          the file that passed the export gate, unchanged: labels and unknown rule inside
      vendor/                    LiteRT.js from pinned npm packages (vendor.py) and their NOTICE.txt

Any static server (or GitHub Pages) serves the folder as it is; once loaded, the page needs no network.
The model is the best gated .tflite in the folder's export.json: int8 first, then dynamic, fp16, float32.
The folder is built beside and renamed into place, so a failed build leaves an earlier page whole.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_birds.errors import UserError
from keras_birds.export.web import vendor
from keras_birds.inference.exported import choose_exported, read_report
from keras_birds.run_dir import remove_abandoned

TEMPLATE = Path(__file__).with_name("template")
PAGE_FILES = ("index.html", "app.js", "imaging.js", "tflite.js", "style.css")


@dataclass
class WebPage:
    folder: Path
    model_file: str
    quantize: str
    size_bytes: int  # the whole folder

    def summary(self) -> str:
        return (f"wrote {self.folder}/ ({self.size_bytes / 1e6:.1f} MB: {self.model_file}, the page, LiteRT.js); "
                f"serve it with: keras-birds serve-web {self.folder}")


def choose_model(export_dir: Path, report: dict, log) -> dict:
    """export.json's entry of the .tflite the page ships: verified files first, int8 preferred."""
    return choose_exported(export_dir, report, log, formats=("tflite",))


def build_page(export_dir, out=None, log=lambda msg: None) -> WebPage:
    export_dir = Path(export_dir)
    report = read_report(export_dir)
    entry = choose_model(export_dir, report, log)
    _warn_if_stale(export_dir / entry["file"], report, log)
    runtime = vendor.runtime_files(log)  # a missing network fails here, before the old page is touched
    folder = Path(out) if out else export_dir / "web"
    remove_abandoned(folder.parent, f".{folder.name}.partial-")  # left by a killed build
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        _write_page(partial, export_dir, report, entry, runtime)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return WebPage(folder, entry["file"], entry["quantize"], size)


def _warn_if_stale(model: Path, report: dict, log):
    """A line when the run's unknown.json (calibrate-unknown after the export) is not the rule inside the file:
    the page answers by the file's own, as predict does with it."""
    from keras_birds.openset.rule import stale_file

    try:
        line = stale_file(model, report["run"]) if report.get("run") else None
    except UserError:
        return
    if line:
        log(f"warning: {line}")


def _write_page(folder: Path, export_dir: Path, report: dict, entry: dict, runtime: dict):
    for name in PAGE_FILES:
        shutil.copyfile(TEMPLATE / name, folder / name)
    import_map = json.dumps({"imports": vendor.IMPORT_MAP}, indent=1)
    index = folder / "index.html"
    index.write_text(index.read_text(encoding="utf-8").replace(
        "<!--IMPORT_MAP-->", f'<script type="importmap">\n{import_map}\n</script>'), encoding="utf-8")
    shutil.copyfile(export_dir / entry["file"], folder / entry["file"])
    for dest, src in runtime.items():
        (folder / "vendor" / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / "vendor" / dest)
    (folder / "vendor" / "NOTICE.txt").write_text(vendor.notice(), encoding="utf-8")
    gate = entry.get("gate") or {}
    info = {
        "file": entry["file"], "quantize": entry["quantize"], "size_bytes": entry.get("size_bytes"),
        "sha256": entry.get("sha256"), "verified": entry.get("verified"),
        "gate_top1_agreement": gate.get("top1_agreement"),
        "model": report.get("model"), "run": Path(report["run"]).name if report.get("run") else None,
        "image_size": report.get("image_size"), "n_classes": report.get("n_classes"),
        "exported": report.get("created"), "keras_birds_version": report.get("keras_birds_version"),
        "runtime": f"{vendor.LITERT.name}@{vendor.LITERT.version}",
        "labels": f"inside {entry['file']} (labels.txt, TFLite metadata associated file)",
    }
    (folder / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
