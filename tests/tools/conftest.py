"""Loading a maintainer script of tools/ as a module (tools/ is not a package)."""
import importlib.util
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture(scope="module")
def load_tool():
    """load_tool("bench_openset"): tools/bench_openset.py as a module; tools/ on sys.path for its own imports."""
    def load(name):
        if str(TOOLS) not in sys.path:
            sys.path.insert(0, str(TOOLS))
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
