"""The README tells the truth: what it says to run runs, and its figures say where they were measured."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PARAGRAPHS = [p for p in re.split(r"\n\s*\n", README) if p.strip()]
TIMING = re.compile(r"~?\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)? ?(?:ms|s|seconds|min|minutes)\b")
HARDWARE = re.compile(r"CPU|GPU|cores?\b", re.IGNORECASE)


def test_ci_runs_exactly_the_readme_test_command():
    test_command = ".venv/bin/python -m pytest -q"
    assert f"\n    {test_command}\n" in README
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test_command


def test_tool_scripts_are_run_with_the_venv_python():
    """`python tools/x.py` with the system python fails: No module named keras_birds."""
    calls = re.findall(r"([\w./]*python3?) tools/\w+\.py", README)
    assert calls, "the README names no tool script"
    assert set(calls) == {".venv/bin/python"}, calls


def test_every_timing_names_the_hardware_it_was_measured_on():
    timed = [p for p in PARAGRAPHS if TIMING.search(p) and not p.startswith("    ")]
    assert timed, "no timing in the README: this test no longer guards anything"
    for paragraph in timed:
        assert HARDWARE.search(paragraph), f"a timing without its hardware: {paragraph[:160]!r}"


def test_predict_threshold_default_is_stated_as_it_is():
    from keras_birds.cli import predict

    default = next(p.default for p in predict.params if p.name == "threshold")
    assert default == 0.0
    paragraph = next(p for p in PARAGRAPHS if "--threshold P] [--json]` prints" in p)
    assert "default threshold is 0" in paragraph and "never names" not in paragraph
