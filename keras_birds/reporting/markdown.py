"""Sections -> report.md, with its images as files under figures/ beside it (Markdown cannot inline them
portably). Pure: returns the text and the files; study.py writes them."""
from __future__ import annotations

import re

from keras_birds.reporting.blocks import cell_text

FIGURES = "figures"


def _md_cell(c) -> str:
    return cell_text(c).replace("|", "\\|").replace("\n", " ")


def _table(b: dict) -> list:
    lines = ["| " + " | ".join(_md_cell(h) for h in b["headers"]) + " |", "|" + "---|" * len(b["headers"])]
    return lines + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b["rows"]] + [""]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "image"


class _Files:
    """Image files of the Markdown, named uniquely under figures/."""

    def __init__(self):
        self.files = {}

    def add(self, stem: str, data: bytes, ext: str) -> str:
        same = next((n for n, d in self.files.items() if d == data), None)
        if same:  # a species' thumbnail in several confused pairs: one file
            return same
        name, k = f"{FIGURES}/{_slug(stem)}.{ext}", 1
        while name in self.files:
            k += 1
            name = f"{FIGURES}/{_slug(stem)}_{k}.{ext}"
        self.files[name] = data
        return name


def _block(b: dict, files: _Files) -> list:
    kind = b["kind"]
    if kind == "p":
        return [b["text"], ""]
    if kind == "lead":
        return [f"**{b['text']}**", ""]
    if kind == "missing":
        return [f"> **{b['text']}**", ""]
    if kind == "table":
        return _table(b)
    if kind == "figure":
        ext = "jpg" if b["mime"] == "image/jpeg" else "png"
        return [f"![{b['name']}]({files.add(b['name'], b['data'], ext)})", "", f"*{b['caption']}*", ""]
    if kind == "thumbs":
        out = []
        for item in b["items"]:
            stems = [item["caption"]] if b.get("style") == "samples" else [i["label"] for i in item["images"]]
            imgs = " ".join(f"![{i['label']}]({files.add(stem, i['data'], 'jpg')})"
                            for stem, i in zip(stems, item["images"]))
            out.append(f"- {item['caption']}: {imgs}")
        return out + [""]
    if kind == "details":
        return [f"<details><summary>{b['summary']}</summary>", ""] + [
            line for x in b["blocks"] for line in _block(x, files)] + ["</details>", ""]
    raise ValueError(f"unknown block kind {kind!r}")


def render(sections: list, title: str, subtitle: str) -> tuple:
    """(Markdown text, {relative path: image bytes})."""
    files = _Files()
    lines = [f"# {title}", "", subtitle, ""]
    lines += [f"- [{s['title']}](#{_slug(s['title']).replace('_', '-')})" for s in sections] + [""]
    for s in sections:
        lines += [f"## {s['title']}", ""]
        for b in s["blocks"]:
            lines += _block(b, files)
        if s["sources"]:
            lines += ["from: " + ", ".join(f"`{x}`" for x in s["sources"]), ""]
    return "\n".join(lines), files.files
