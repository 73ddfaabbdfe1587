"""What `keras-birds clean` writes into its folder, for people and for `train --exclude`:

    OUT/
      report.md          counts per issue type and split, what exclude.txt leaves out and why,
                         the species most affected, the thumbnail sheets, how each type is decided
      issues.csv         one row per file and issue: file, split, species, issue, score, excluded,
                         others (the rest of its duplicate set / the copy), detail
      exclude.txt        files to leave out: paths relative to OUT, `# reason` after each
                         (sources.format_exclude_line: a path that needs it is a JSON string)
      audit.json         the figures of report.md as data (counts, exclusions, species missing
                         from a split, timing)
      sheets/<issue>.png thumbnails of the worst cases of each issue type, duplicates side by side
      .cache/<split>.json  the per-split audit cache (delete it to audit again from scratch)

Paths in issues.csv and report.md are relative to the data root that report.md names.
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from keras_birds.cleaning import similar
from keras_birds.cleaning.issues import ISSUE_TYPES, OPTIONAL_EXCLUDES
from keras_birds.data.sources import SPLITS, exclude_reason, format_exclude_line
from keras_birds.run_dir import atomic_save, atomic_write_json, atomic_write_text

SET_TYPES = ("leakage", "label_conflict", "exact_duplicates", "near_duplicates")
HOW_DECIDED = {
    "unreadable": "the training loader's decoder fails: truncated, corrupt or not an image (excluded)",
    "leakage": f"the same picture in two splits: pixel md5 equal, or 256-bit dHash <= {similar.NEAR_BITS} bits "
               f"apart (excluded: the train side, or the valid side of a valid/test pair)",
    "label_conflict": "the same or a near-same picture under two species, within or across splits "
                      "(both sides excluded, for review)",
    "exact_duplicates": "cleanvision: identical pixels inside one split (all copies but the first excluded)",
    "near_duplicates": "cleanvision: equal perceptual hash (phash) inside one split (reported)",
    "odd_size": "cleanvision: sqrt(width*height) far outside the split's interquartile range (reported)",
    "odd_aspect_ratio": "cleanvision: min(w/h, h/w) < 0.35 (reported)",
    "blurry": "cleanvision: low edge variance at 64 px, offset by a histogram-spread term, so strong blur on a "
              "busy, colourful picture can go unflagged (reported)",
    "dark": "cleanvision: 99th-percentile brightness < 0.32 (reported)",
    "light": "cleanvision: 5th-percentile brightness > 0.95 (reported)",
    "low_information": "cleanvision: histogram entropy < 3 bits (reported)",
    "grayscale": "cleanvision: a single-channel (mode L) image (reported)",
}


def counts_by_type(result) -> dict:
    """{issue: {split: files}} for every issue type, zeros included."""
    table = {t: {s: 0 for s in SPLITS} for t in ISSUE_TYPES}
    for f in result.findings:
        table[f.issue][f.split] += 1
    return table


def exclusion_counts(result) -> dict:
    by_split, by_reason = Counter(), Counter()
    for path, reasons in result.excluded.items():
        by_split[result.species_of[path][0]] += 1
        by_reason[exclude_reason(reasons[0])] += 1
    return {"by_split": {s: by_split[s] for s in SPLITS}, "by_reason": dict(by_reason.most_common())}


def write_report(result) -> None:
    out = Path(result.out)
    sheets = write_sheets(result, out / "sheets")
    atomic_write_text(out / "issues.csv", printable(issues_csv(result)))
    atomic_write_text(out / "exclude.txt", exclude_txt(result))
    atomic_write_json(out / "audit.json", {
        "data": result.data, "root": str(result.root),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "images": result.images, "issues": counts_by_type(result),
        "excluded_files": len(result.excluded), "excluded": exclusion_counts(result),
        "species_missing": {k: {"missing_from": v, "present_in": [s for s in SPLITS if s not in v]}
                            for k, v in result.species_missing.items()},
        "exclude_also": list(result.exclude_also), "timing": result.timing, "sheets": sheets,
        "thresholds": {"near_bits_of_256": similar.NEAR_BITS, "prefilter_bits_of_64": similar.PREFILTER_BITS},
    })
    atomic_write_text(out / "report.md", printable(report_md(result, sheets)))


def printable(text: str) -> str:
    """Text for people: a file name's undecodable bytes (lone surrogates) shown as \\udcXX escapes,
    which UTF-8 cannot hold. exclude.txt keeps them exactly (format_exclude_line)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def issues_csv(result) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "split", "species", "issue", "score", "excluded", "others", "detail"])
    for f in result.findings:
        w.writerow([result.rel(f.file), f.split, f.species, f.issue, f"{f.score:.4f}",
                    "yes" if f.file in result.excluded else "no", "; ".join(result.rel(o) for o in f.others),
                    f.detail])
    return buf.getvalue()


def exclude_txt(result) -> str:
    out = os.path.abspath(result.out)
    lines = [f"# keras-birds clean: {len(result.excluded)} files to leave out of training and evaluation",
             f"# data: {result.data} (root {result.root})",
             "# paths are relative to this file's folder; the comment after each is why it is left out;",
             "# a path holding '#', a leading '\"', control characters or leading/trailing whitespace is a JSON string",
             f"# use: keras-birds train RECIPE --data {result.data} --exclude {Path(result.out) / 'exclude.txt'}"]
    for path, reasons in result.excluded.items():
        try:
            shown = os.path.relpath(path, out)
        except ValueError:  # another drive (Windows): only an absolute path can name it
            shown = path
        lines.append(format_exclude_line(shown, "; ".join(reasons)))
    return "\n".join(lines) + "\n"


def missing_species_md(missing: dict) -> list:
    if not missing:
        return []
    lines = ["", f"## Species missing from a split ({len(missing)})", "",
             "`keras-birds train` refuses splits with different species folders, and a species without images in a "
             "split cannot be learned or evaluated there: add its images, or remove it from every split.", ""]
    for name, splits in missing.items():
        present = ", ".join(s for s in SPLITS if s not in splits) or "none"
        lines.append(f"- {name}: missing from {', '.join(splits)} (present in {present})")
    return lines


def most_affected_species(result, n=15) -> list:
    per = defaultdict(lambda: {"files": set(), "excluded": set(), "issues": Counter()})
    for f in result.findings:
        row = per[f.species]
        row["files"].add(f.file)
        row["issues"][f.issue] += 1
        if f.file in result.excluded:
            row["excluded"].add(f.file)
    rows = sorted(per.items(), key=lambda kv: (-len(kv[1]["files"]), kv[0]))[:n]
    return [{"species": k, "files": len(v["files"]), "excluded": len(v["excluded"]),
             "issues": ", ".join(f"{t} {c}" for t, c in v["issues"].most_common())} for k, v in rows]


def report_md(result, sheets: dict) -> str:
    table, excl, t = counts_by_type(result), exclusion_counts(result), result.timing
    total = sum(result.images.values())
    lines = [f"# Data audit: {result.data}", "",
             f"Data root `{result.root}`: {total} files (" + ", ".join(f"{s} {result.images[s]}" for s in SPLITS)
             + "). No data file was modified. Paths below are relative to the data root.", ""]
    if t.get("audited_images"):
        lines.append(f"Audited {t['audited_images']} files in {t['audit_seconds']:.1f} s "
                     f"({t['images_per_second']} images/s, {t['jobs']} jobs)"
                     + (f"; splits {', '.join(t['cached_splits'])} came from the cache" if t["cached_splits"] else "")
                     + f"; cross-split search {t['cross_split_seconds']:.1f} s.")
    else:
        lines.append(f"Every split came from the cache (`{Path(result.out) / '.cache'}`); "
                     f"cross-split search {t['cross_split_seconds']:.1f} s.")
    lines += ["", "## Issues per type and split (files)", "",
              "| issue | " + " | ".join(SPLITS) + " | total | of them in exclude.txt | sheet |",
              "|---|" + "---:|" * (len(SPLITS) + 2) + "---|"]
    excluded_by_type = Counter(f.issue for f in result.findings if f.file in result.excluded)
    for issue in ISSUE_TYPES:
        row = table[issue]
        sheet = f"[png]({sheets[issue]})" if issue in sheets else ""
        lines.append(f"| {issue} | " + " | ".join(str(row[s]) for s in SPLITS)
                     + f" | {sum(row.values())} | {excluded_by_type[issue]} | {sheet} |")
    lines += missing_species_md(result.species_missing)
    lines += ["", f"## exclude.txt: {len(result.excluded)} files left out", "",
              "By split: " + ", ".join(f"{s} {excl['by_split'][s]}" for s in SPLITS) + ".  ",
              "By reason (first reason of each file): "
              + (", ".join(f"{k} {v}" for k, v in excl["by_reason"].items()) or "none") + ".", "",
              "Always left out: unreadable files, both sides of a label conflict, the train side of leakage "
              "(the valid side of valid/test leakage) and every copy but the first of an exact duplicate set.",
              f"Reported only, unless `--exclude-also` names them: {', '.join(OPTIONAL_EXCLUDES)}."
              + (f" This run also excluded: {', '.join(result.exclude_also)}." if result.exclude_also else ""),
              "", f"Train without them: `keras-birds train RECIPE --data {result.data} --exclude "
              f"{Path(result.out) / 'exclude.txt'}` (the run's summary.json counts what was left out, by reason).",
              "", "## Species most affected", "", "| species | files with issues | excluded | issues |", "|---|---:|---:|---|"]
    for row in most_affected_species(result):
        lines.append(f"| {row['species']} | {row['files']} | {row['excluded']} | {row['issues']} |")
    for issue in ("unreadable", "leakage", "label_conflict"):
        items = [f for f in result.findings if f.issue == issue]
        if items:
            lines += ["", f"## {issue} ({len(items)} files)", ""]
            for f in items[:50]:
                others = "; ".join(result.rel(o) for o in f.others)
                lines.append(f"- `{result.rel(f.file)}` ({f.species}) {f.detail}" + (f" <-> `{others}`" if others else ""))
            if len(items) > 50:
                lines.append(f"- ... {len(items) - 50} more in issues.csv")
    lines += ["", "## How each type is decided", ""] + [f"- **{k}**: {v}" for k, v in HOW_DECIDED.items()]
    return "\n".join(lines) + "\n"


# -- thumbnail sheets -----------------------------------------------------------------------------
TILE, CAPTION, COLUMNS, MAX_TILES = 128, 30, 8, 48


def _tile(path: str, caption: list, error: str = ""):
    from PIL import Image, ImageDraw

    from keras_birds.data.images import BadImage, open_rgb

    tile = Image.new("RGB", (TILE, TILE + CAPTION), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    try:
        if error:
            raise BadImage(error)
        img = open_rgb(path)
        img.thumbnail((TILE, TILE))
        tile.paste(img, ((TILE - img.width) // 2, (TILE - img.height) // 2))
    except BadImage as e:
        draw.rectangle([0, 0, TILE - 1, TILE - 1], fill=(200, 200, 200))
        words, line, y = str(e).split(), "", 4
        for word in words + [""]:  # wrap the reason into the grey square
            if word and len(line) + len(word) < 22:
                line += (" " if line else "") + word
                continue
            draw.text((4, y), line, fill=(120, 0, 0))
            line, y = word, y + 12
            if y > TILE - 14:
                break
    for k, text in enumerate(caption[:2]):
        draw.text((2, TILE + 2 + 13 * k), text[:24], fill=(0, 0, 0))
    return tile


def _groups(result, issue):
    """Lists of (file, caption lines): one per picture, or one per duplicate set / pair."""
    seen, groups = set(), []
    for f in (f for f in result.findings if f.issue == issue):
        members = [f.file] + (f.others if issue in SET_TYPES else [])
        key = frozenset(members)
        if key in seen:
            continue
        seen.add(key)
        groups.append([(p, [f"{result.species_of[p][0]} {result.species_of[p][1]}",
                            f"{Path(p).name} {f.score:.2f}"], f.detail if issue == "unreadable" else "")
                       for p in members[:COLUMNS]])
    return groups


def write_sheets(result, folder: Path) -> dict:
    """{issue: relative png path} for every issue type with findings."""
    from PIL import Image

    written = {}
    for issue in ISSUE_TYPES:
        groups = _groups(result, issue)
        if not groups:
            continue
        if issue in SET_TYPES:  # one row per set, so copies sit side by side
            rows = [g for g in groups[:MAX_TILES // 2]]
        else:
            flat = [item for g in groups for item in g][:MAX_TILES]
            rows = [flat[i:i + COLUMNS] for i in range(0, len(flat), COLUMNS)]
        width = max(len(r) for r in rows)
        sheet = Image.new("RGB", (width * TILE + (width - 1) * 4, len(rows) * (TILE + CAPTION + 6)), (255, 255, 255))
        for r, row in enumerate(rows):
            for c, (path, caption, error) in enumerate(row):
                sheet.paste(_tile(path, caption, error), (c * (TILE + 4), r * (TILE + CAPTION + 6)))
        target = folder / f"{issue}.png"
        atomic_save(target, lambda tmp, s=sheet: s.save(tmp, format="PNG"))
        written[issue] = str(target.relative_to(result.out))
    for stale in folder.glob("*.png") if folder.is_dir() else []:
        if stale.stem not in written:  # a type the data no longer has
            stale.unlink()
    return written


def terminal_summary(result) -> str:
    table, excl = counts_by_type(result), exclusion_counts(result)
    head = f"{'issue':18s}" + "".join(f"{s:>7s}" for s in SPLITS) + f"{'total':>7s}"
    lines = [head, "-" * len(head)]
    for issue in ISSUE_TYPES:
        row = table[issue]
        if sum(row.values()):
            lines.append(f"{issue:18s}" + "".join(f"{row[s]:7d}" for s in SPLITS) + f"{sum(row.values()):7d}")
    if len(lines) == 2:
        lines.append("no issues found")
    t = result.timing
    speed = (f"{t['audited_images']} files audited in {t['audit_seconds']:.1f} s ({t['images_per_second']} images/s)"
             if t.get("audited_images") else "all splits from the cache")
    missing = result.species_missing
    if missing:
        shown = [f"{k}: not in {', '.join(v)}" for k, v in list(missing.items())[:3]]
        more = f"; +{len(missing) - 3} more" if len(missing) > 3 else ""
        lines += ["", f"species missing from a split: {len(missing)} ({'; '.join(shown)}{more}); "
                      f"train needs every species in every split"]
    lines += ["", f"exclude.txt: {len(result.excluded)} files ("
              + (", ".join(f"{k} {v}" for k, v in excl["by_reason"].items()) or "none") + ")",
              f"{speed}; report in {Path(result.out) / 'report.md'}"]
    return printable("\n".join(lines))


__all__ = ["write_report", "terminal_summary"]
