"""report.html in a real headless browser: every image loads, no console error, and the comparison table
shows the figures of comparison.json. Chromium from Debian's packages (`apt-get install -y chromium`),
started by the test; skipped where it is missing."""
import json
import re
import shutil
import subprocess
from html import unescape

import pytest

from keras_birds.reporting.sections import comparison_columns
from keras_birds.reporting.study import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Injected first in <head>, before anything of the page runs: records errors of any kind (a script's,
# a resource that fails to load, console.error) and, once the page has loaded, each image's decoded
# width and the comparison table as shown, into a <pre> that --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => __errors.push(e.message || ("failed to load " + (e.target && e.target.tagName))), true);
const __ce = console.error; console.error = (...a) => { __errors.push(a.join(" ")); __ce(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0}));
  const table = document.getElementById("comparison-table");
  const heads = table ? [...table.tHead.rows[0].cells].map(c => c.textContent) : null;
  const rows = table ? [...table.tBodies[0].rows].map(tr => [...tr.cells].map(c => c.textContent)) : null;
  const pre = document.createElement("pre"); pre.id = "__probe";
  pre.textContent = JSON.stringify({errors: __errors, imgs, heads, rows});
  document.body.appendChild(pre);
});
</script>"""


def _browser():
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _shown_number(text: str):
    """The figure a cell shows: '83.3%' -> 0.833, '3,573,149' -> 3573149, '14.29' -> 14.29."""
    text = text.replace(",", "")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def _decimals(text: str) -> int:
    digits = text.rstrip("%").partition(".")[2]
    return len(digits) + (2 if text.endswith("%") else 0)


@pytest.mark.skipif(_browser() is None, reason="no Chromium on PATH: install it with `apt-get install -y chromium` "
                                               "(Debian) to render report.html in a real browser")
def test_page_in_a_real_browser_loads_every_image_has_no_console_error_and_shows_comparison_json(study, tmp_path):
    page = write_report([r.path for r in study["runs"]], clean=study["clean"], out=tmp_path / "out")
    html = page.html.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    done = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
                           "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading:\n{done.stderr[-2000:]}"
    probe = json.loads(unescape(found.group(1)))
    # No error of any kind, and nothing the page logged (it has no script of its own to log anything).
    assert probe["errors"] == []
    assert not [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    # Every image loads: the plots, the audit sheet and the thumbnails.
    assert len(probe["imgs"]) == html.count("<img ") >= 3 + 6 + 3 * 2
    assert [i["alt"] for i in probe["imgs"] if not i["loaded"]] == []
    # The table shows comparison.json: its columns, and each row's figures to the digits shown.
    rows = study["comparison"]["rows"]
    keys = [k for k, _, _ in comparison_columns(rows)]
    assert len(probe["heads"]) == len(keys) and len(probe["rows"]) == len(rows)
    for shown, row in zip(probe["rows"], rows):
        for text, key in zip(shown, keys):
            value = row[key]
            if value is None:
                assert text == ""
            elif isinstance(value, str):
                assert text == value
            else:
                assert _shown_number(text) == pytest.approx(value, abs=0.51 * 10 ** -_decimals(text)), (key, text)
