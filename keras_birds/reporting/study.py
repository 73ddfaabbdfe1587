"""write_report(runs) -> OUT/report.html (self-contained) and OUT/report.md (+ OUT/figures/): the study, generated.

Reads the run directories, the comparison, export and eval files next to them, the runs' data folder
(file lists, image headers, a few thumbnails) and, when given, a `clean` audit. Loads no model.
The three are written into a pending folder and swapped in together (publish.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keras_birds.reporting import html, markdown, publish
from keras_birds.reporting.collect import collect, missing
from keras_birds.reporting.dataset import clean_audit, data_overview
from keras_birds.reporting.sections import build_sections
from keras_birds.run_dir import atomic_write_bytes, atomic_write_text

TITLE = "Bird classifier study"


@dataclass
class Report:
    out_dir: Path
    html: Path
    markdown: Path
    sections: list

    @property
    def not_measured(self) -> list:
        """(section title, why) of every piece the page marks "not measured"."""
        return [(s["title"], b["text"]) for s in self.sections for b in s["blocks"] if b["kind"] == "missing"]


def _overview(runs: list) -> dict:
    roots = list(dict.fromkeys(r["data"] for r in runs if r.get("data")))
    if not roots:
        return missing("the runs' recipe.json names no data")
    overview = data_overview(roots[0])
    if len(roots) > 1 and "why" not in overview:
        overview["other_roots"] = roots[1:]
    return overview


def write_report(run_paths, *, clean=None, comparison=None, out=None, log=None) -> Report:
    out_dir = Path(out) if out else Path("report")
    publish.check_replaceable(out_dir)
    audit = clean_audit(clean) if clean else None  # a wrong --clean fails before any reading
    study = collect(list(run_paths), comparison)
    overview = _overview(study["runs"])
    sections = build_sections(study, overview, audit)
    labels = ", ".join(r["label"] for r in study["runs"])
    subtitle = (f"{len(study['runs'])} run(s): {labels}. Generated {study['created']} by `keras-birds report` "
                f"from the files the toolkit wrote.")
    md_text, md_files = markdown.render(sections, TITLE, subtitle)
    html_text = html.render(sections, TITLE, subtitle)
    folder = publish.pending(out_dir)
    for rel, data in md_files.items():
        atomic_write_bytes(folder / rel, data)
    atomic_write_text(folder / "report.md", md_text)
    atomic_write_text(folder / "report.html", html_text)
    publish.swap_in(folder, out_dir)
    if log:
        log(f"wrote {out_dir / 'report.html'} ({(out_dir / 'report.html').stat().st_size / 1e6:.2f} MB) "
            f"and {out_dir / 'report.md'}")
    return Report(out_dir, out_dir / "report.html", out_dir / "report.md", sections)
