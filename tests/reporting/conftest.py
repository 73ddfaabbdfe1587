"""Fixtures of tests/reporting (helpers: fake_runs.py)."""
import pytest

from fake_runs import write_audit, write_comparison, write_run


@pytest.fixture
def study(tmp_path, make_dataset):
    """Three runs of a 6-species data set (each with eval, export), their comparison and an audit."""
    data = make_dataset(tmp_path, ["BLACK SWAN", "MANDRIN DUCK", "PARAKETT  AUKLET", "BALD EAGLE", "KAGU", "ROBIN"],
                        {"train": 2, "valid": 1, "test": 1}, size=48)
    names = sorted(p.name for p in (data / "train").iterdir())
    runs = [write_run(tmp_path / "runs", f"recipe_{k}", names, data, seed=k) for k in range(3)]
    comparison = write_comparison(tmp_path / "comparison", runs)
    audit = write_audit(tmp_path / "clean", data)
    return {"root": tmp_path, "data": data, "runs": runs, "comparison": comparison, "clean": audit}
