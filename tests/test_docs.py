"""The manual in docs/ builds as a MkDocs site with `mkdocs build --strict` (no broken link or anchor, every
page in the nav), and the README stays a landing page whose links all land (issue 30)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = (REPO / "README.md").read_text(encoding="utf-8")
# [text](target) and ![alt](target); a target may end with "title"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _nav_files(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _nav_files(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _nav_files(value)


def test_mkdocs_build_strict_passes(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[test]' installs it)")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2.0, not a build warning
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_docs_page_is_in_the_nav():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (mkdocs installs it)")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = set(_nav_files(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - in_nav == set(), "pages missing from mkdocs.yml's nav"
    assert in_nav - pages == set(), "nav entries with no page"


def test_readme_is_a_landing_page():
    lines = README.count("\n") + (not README.endswith("\n"))
    assert lines <= 200, f"README.md has {lines} lines: move the details into docs/"


def _anchors(markdown_text):
    """The heading anchors GitHub and MkDocs both give (lower case, punctuation dropped, spaces -> hyphens)."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.sub(r"(?m)^    .*$", "", markdown_text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}


def test_every_relative_link_in_the_readme_lands():
    targets = LINK.findall(README)
    relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)]
    assert any(t.startswith("docs/") for t in relative), "the README links to no docs page"
    for target in relative:
        path, _, anchor = target.partition("#")
        file = REPO / path if path else REPO / "README.md"
        assert file.is_file(), f"README.md links to {target}: no such file"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file.read_text(encoding="utf-8")), f"README.md links to {target}: no such heading"
