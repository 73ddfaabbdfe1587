"""The page is one study: report.md, report.html and figures/ replaced together (a `report` killed mid-write
leaves the old page whole), a comparison found by itself is used only when it is of the report's runs, and
the sample images are spread over the species list as the page says."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from keras_birds.reporting.dataset import SAMPLE_SPECIES, data_overview
from keras_birds.reporting.study import write_report

# Run in a real process: the page's files are written through study.atomic_write_text; before report.html this
# one says so (a marker file) and waits to be killed, so the kill lands between two files of the page.
SLOW_REPORT = """
import sys, time
from pathlib import Path
from keras_birds.cli import main
from keras_birds.reporting import study
write = study.atomic_write_text
def slow(path, text):
    if Path(path).name == "report.html":
        Path(sys.argv[1]).write_text("writing report.html")
        time.sleep(120)
    write(path, text)
study.atomic_write_text = slow
main(sys.argv[2:], prog_name="keras-birds")
"""


def _runs_named(path) -> int:
    """How many runs the page's subtitle names."""
    return int(re.search(r"(\d+) run\(s\): ", path.read_text()).group(1))


def test_a_report_killed_mid_write_leaves_the_old_page_whole(study, tmp_path):
    runs = [str(r.path) for r in study["runs"]]
    out = tmp_path / "page"
    write_report(runs[:1], out=out)  # the old study: one run
    old = {name: (out / name).read_text() for name in ("report.md", "report.html")}
    old_figures = sorted(p.name for p in (out / "figures").iterdir())
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_REPORT, str(marker), "report", *runs, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "report never reached report.html"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert {name: (out / name).read_text() for name in old} == old  # both from the old study, not one of each
    assert sorted(p.name for p in (out / "figures").iterdir()) == old_figures
    assert _runs_named(out / "report.md") == _runs_named(out / "report.html") == 1
    # The next report sweeps what the killed one left and replaces the page whole.
    assert (tmp_path / f".page.pending-{proc.pid}").is_dir()
    write_report(runs, out=out)
    assert _runs_named(out / "report.md") == _runs_named(out / "report.html") == 3
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def test_a_comparison_of_more_runs_is_not_taken_for_one_of_them(study, tmp_path, monkeypatch):
    runs = [r.path for r in study["runs"]]
    monkeypatch.chdir(study["root"])  # ./comparison is the comparison of all three runs
    alone = write_report(runs[:1], out=tmp_path / "one")
    why = dict(alone.not_measured)["Accuracy, size and speed"]
    assert "recipe_1" in why and "--comparison" in why  # says which runs it also holds, and how to use it anyway
    assert "| recipe_1 |" not in alone.markdown.read_text()
    every = write_report(runs, out=tmp_path / "all")
    assert "Accuracy, size and speed" not in dict(every.not_measured)
    asked = write_report(runs[:1], comparison=study["root"] / "comparison", out=tmp_path / "asked")
    assert "Accuracy, size and speed" not in dict(asked.not_measured)


def test_sample_species_are_evenly_spaced_over_the_list(tmp_path, make_dataset):
    data = make_dataset(tmp_path, 25, {"train": 1, "valid": 1, "test": 1}, size=8)
    overview = data_overview(data)
    species = overview["species"]
    shown = [species.index(name) for name, _ in overview["samples"]]
    assert len(shown) == SAMPLE_SPECIES == len(set(shown))
    assert shown[0] == 0 and shown[-1] == len(species) - 1  # the whole list, not its first 16
    gaps = {b - a for a, b in zip(shown, shown[1:])}
    assert gaps <= {1, 2}, shown
    small = data_overview(make_dataset(tmp_path / "small", 5, {"train": 1, "valid": 1, "test": 1}, size=8))
    assert [name for name, _ in small["samples"]] == small["species"]  # fewer species than samples: all of them
    assert json.dumps(small["samples"])  # plain data
