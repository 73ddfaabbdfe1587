"""The report's building blocks, shared by the section builders and both renderers.

A section is {"id", "title", "sources": [paths read], "blocks": [...]}; a block a plain dict of one kind:
    p        {"text"}                                    a paragraph (plain text: renderers escape it)
    lead     {"text"}                                    the paragraph that carries the conclusion
    table    {"headers", "rows", "id"}                   cells: text, or {"text", "value"} (the raw figure)
    figure   {"name", "data", "mime", "caption"}         image bytes
    thumbs   {"items": [{"caption", "images": [{"data", "label"}]}]}   rows of small photos
    missing  {"text"}                                    "not measured" and why
    details  {"summary", "blocks"}                       folded away (long tables)
"""
from __future__ import annotations

from keras_birds.reporting.collect import NOT_MEASURED


def p(text: str) -> dict:
    return {"kind": "p", "text": text}


def table(headers, rows, id=None) -> dict:
    return {"kind": "table", "headers": list(headers), "rows": [list(r) for r in rows], "id": id}


def figure(name: str, data: bytes, caption: str, mime: str = "image/png") -> dict:
    return {"kind": "figure", "name": name, "data": data, "mime": mime, "caption": caption}


def not_measured(why: str) -> dict:
    return {"kind": "missing", "text": f"{NOT_MEASURED}: {why}"}


def details(summary: str, blocks: list) -> dict:
    return {"kind": "details", "summary": summary, "blocks": blocks}


def section(id: str, title: str, blocks: list, sources=()) -> dict:
    return {"id": id, "title": title, "blocks": blocks, "sources": [s for s in dict.fromkeys(sources) if s]}


def cell(value, fmt: str = "{}") -> dict | str:
    """A table cell: the text shown, and the raw figure it came from (what a test checks against the file)."""
    if value is None:
        return ""
    return {"text": pct(value) if fmt == "pct" else fmt.format(value), "value": value}


def cell_text(c) -> str:
    return c["text"] if isinstance(c, dict) else str(c)


def pct(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def num(x, fmt: str = "{:,}") -> str:
    return "n/a" if x is None else fmt.format(x)
