"""Guards on the package's shape, measured by tools/code_shape.py (static, no imports)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shape():
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "tools" / "code_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.analyse(ROOT / "keras_birds")


def test_no_import_cycle(shape):
    assert shape["cycles"] == [], f"module-level import cycles: {shape['cycles']}"
    # A function-local import only hides a cycle; the modules still depend on each other.
    assert shape["cycles_with_local_imports"] == [], (
        f"import cycles closed by function-local imports: {shape['cycles_with_local_imports']}")


def test_functions_and_modules_within_limits(shape):
    limits = shape["limits"]
    offenders = [f"function {name}: {n} lines" for name, n in shape["long_functions"]]
    offenders += [f"module {name}: {n} lines" for name, n in shape["long_modules"]]
    assert not offenders, (
        f"keras_birds/ limits are {limits['function']} lines per function and "
        f"{limits['module']} per module; offenders:\n  " + "\n  ".join(offenders))


def test_tool_finds_a_cycle_and_a_long_function(tmp_path):
    # The guards above are only as good as the tool: check it on a tiny package.
    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "tools" / "code_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import a\n" + "    x = 1\n" * 70)
    (pkg / "c.py").write_text("from .sub.a import thing\n")
    (pkg / "sub" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n")
    got = module.analyse(pkg)
    assert got["cycles"] == []
    assert got["cycles_with_local_imports"] == [["pkg.sub.a", "pkg.sub.b", "pkg.sub.a"]]
    assert got["long_functions"] == [("pkg.sub.b:f", 72)]
    assert got["graph"]["c"] == ["sub"]
    assert got["graph"]["sub"] == []  # d's import of c is for type checkers only
