"""Sections -> one self-contained report.html: images inline as data: URIs, CSS inline, no script, no
network. Table cells holding a figure carry it raw in data-value, so a reader (or a test) can check the
page against the file it came from."""
from __future__ import annotations

import base64
import json
import re
from html import escape

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2228;background:#f6f7f9}
header{background:#17324d;color:#fff;padding:18px 32px 12px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;opacity:.85}header code{color:#17324d}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:8px 32px;position:sticky;top:0;z-index:1}
nav a{margin-right:14px;color:#17324d;text-decoration:none;font-weight:600}
main{max-width:1180px;margin:0 auto;padding:8px 32px 40px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:6px 20px 14px;margin:16px 0}
h2{font-size:18px;margin:10px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #dde1e6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0}figure img{max-width:100%;border:1px solid #eef1f5}
figcaption{font-size:12px;color:#55606b}
.lead{font-size:16px;background:#e8f4ec;border-left:4px solid #2f8f4e;padding:8px 12px}
.missing{color:#8a5300;background:#fff6e6;border-left:3px solid #e0a030;padding:4px 10px}
.sources{font-size:11px;color:#6b7580;margin-top:10px;word-break:break-all}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}.pair{border:1px solid #dde1e6;border-radius:6px;padding:6px;width:250px}
.pair .imgs{display:flex;gap:6px}.pair figure{margin:0}.pair img{width:112px;height:112px;object-fit:cover}
.pair figcaption{width:112px;overflow-wrap:anywhere}.pair>div.cap{font-size:12px;margin-top:4px;color:#55606b}
.sample{width:118px;margin:0}.sample img{width:112px;height:112px;object-fit:cover}.sample figcaption{overflow-wrap:anywhere}
code{background:#eef1f5;padding:0 3px;border-radius:3px}
"""


def _text(text: str) -> str:
    """Plain text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(c, tag="td") -> str:
    if isinstance(c, dict):
        numeric = isinstance(c["value"], (int, float)) and not isinstance(c["value"], bool)
        attrs = (' class="num"' if numeric else "") + f' data-value="{escape(json.dumps(c["value"]))}"'
        return f"<{tag}{attrs}>{escape(c['text'])}</{tag}>"
    return f"<{tag}>{escape(str(c))}</{tag}>"


def _table(b: dict) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in b["headers"])
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in b["rows"])
    ident = f' id="{escape(b["id"])}"' if b.get("id") else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(data: bytes, label: str) -> str:
    return f'<img src="{_uri(data, "image/jpeg")}" alt="{escape(label)}">'


def _thumbs(b: dict) -> str:
    """Samples: one photo captioned with its species. Pairs: two photos, each under its species, and a caption."""
    out = []
    for item in b["items"]:
        if b.get("style") == "samples":
            i = item["images"][0]
            out.append(f'<figure class="sample">{_img(i["data"], i["label"])}'
                       f"<figcaption>{escape(item['caption'])}</figcaption></figure>")
            continue
        figs = "".join(f"<figure>{_img(i['data'], i['label'])}<figcaption>{escape(i['label'])}</figcaption></figure>"
                       for i in item["images"])
        # The names are under the photos already; without photos the caption says them.
        count = item["caption"].rpartition(": ")[2] if len(item["images"]) == 2 else item["caption"]
        out.append(f'<div class="pair" title="{escape(item["caption"])}"><div class="imgs">{figs}</div>'
                   f'<div class="cap">{escape(count)}</div></div>')
    return f'<div class="thumbs">{"".join(out)}</div>'


def _block(b: dict) -> str:
    kind = b["kind"]
    if kind == "p":
        return f"<p>{_text(b['text'])}</p>"
    if kind == "lead":
        return f'<p class="lead">{_text(b["text"])}</p>'
    if kind == "missing":
        return f'<p class="missing">{_text(b["text"])}</p>'
    if kind == "table":
        return _table(b)
    if kind == "figure":
        return (f'<figure><img src="{_uri(b["data"], b["mime"])}" alt="{escape(b["name"])}">'
                f"<figcaption>{_text(b['caption'])}</figcaption></figure>")
    if kind == "thumbs":
        return _thumbs(b)
    if kind == "details":
        return f"<details><summary>{escape(b['summary'])}</summary>{''.join(_block(x) for x in b['blocks'])}</details>"
    raise ValueError(f"unknown block kind {kind!r}")


def render(sections: list, title: str, subtitle: str) -> str:
    nav = "".join(f'<a href="#{escape(s["id"])}">{escape(s["title"])}</a>' for s in sections)
    body = []
    for s in sections:
        sources = ("<div class=\"sources\">from: " + ", ".join(f"<code>{escape(x)}</code>" for x in s["sources"])
                   + "</div>") if s["sources"] else ""
        body.append(f'<section id="{escape(s["id"])}"><h2>{escape(s["title"])}</h2>'
                    + "\n".join(_block(b) for b in s["blocks"]) + sources + "</section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>"
            f"<header><h1>{escape(title)}</h1><p>{_text(subtitle)}</p></header><nav>{nav}</nav>\n<main>"
            + "\n".join(body) + "</main></body></html>\n")

