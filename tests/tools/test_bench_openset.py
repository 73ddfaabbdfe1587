"""tools/bench_openset.py's protocol: the folds partition birds-dev's species as the issue asks, and the known
view links (not copies) the known species' folders."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / ".." / "shared" / "data" / "birds-dev"


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("bench_openset")


@pytest.fixture(scope="module")
def species():
    if not (DEV / "train").is_dir():
        pytest.skip(f"{DEV} not present")
    return sorted(p.name for p in (DEV / "train").iterdir() if p.is_dir())


def test_every_species_is_unseen_in_exactly_one_fold_and_the_pool_is_never_unseen(tool, species):
    folds = [tool.fold_species(species, f) for f in range(tool.N_FOLDS)]
    unseen = Counter(s for f in folds for s in f["unseen"])
    assert len(species) == 125 and set(unseen) == set(species) and set(unseen.values()) == {1}
    for f in folds:
        pool = f["pool_fit"] + f["pool_check"]
        assert (len(f["known"]), len(f["unseen"]), len(pool)) == (75, 25, 25)
        assert not set(pool) & set(f["unseen"]) and not set(pool) & set(f["known"])
        assert not set(f["known"]) & set(f["unseen"]) and not set(f["pool_fit"]) & set(f["pool_check"])
    assert folds == [tool.fold_species(species, f) for f in range(tool.N_FOLDS)]  # seeded: the same every run


def test_known_view_links_the_known_species_and_nothing_else(tool, species, tmp_path):
    parts = tool.fold_species(species, 2)
    root = tool.known_view(DEV.resolve(), parts["known"], tmp_path / "known")
    for split in ("train", "valid", "test"):
        linked = sorted(p.name for p in (root / split).iterdir())
        assert linked == parts["known"]
        assert all((root / split / s).is_symlink() for s in linked)
    index = tool.index_of(DEV.resolve(), parts["unseen"][:2], ["valid", "test"])
    assert len(index) == 4 and set(index.labels.tolist()) == {0}  # birds-dev: one valid, one test photo each
    named = tool.index_of(DEV.resolve(), parts["known"][:3], ["train"], parts["known"])
    assert np.bincount(named.labels).tolist() == [3, 3, 3]


def test_set_overrides_name_the_runs_and_reach_train(tool, tmp_path, monkeypatch):
    assert tool.run_name("effnet_lite0_fewshot") == "effnet_lite0_fewshot"
    assert tool.run_name("effnet_lite0_fewshot", ["pooling=max", "lr=1e-3,1e-4"]) == \
        "effnet_lite0_fewshot+pooling-max+lr-1e-3,1e-4"
    args, *_ = tool.arguments(["--set", "pooling=max", "--out", str(tmp_path)], "")
    assert args.overrides == ["pooling=max"]
    for bad in ("pooling", "poolng=max", "pooling=mean"):  # train's checks, before any fold: argparse's error
        with pytest.raises(SystemExit):
            tool.arguments(["--set", bad, "--out", str(tmp_path)], "")
    calls = []
    monkeypatch.setattr(tool.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    assert tool.train("effnet_lite0_fewshot", tmp_path / "data", tmp_path / "run", ["pooling=max"])
    assert calls[0][-2:] == ["--set", "pooling=max"] and "train" in calls[0]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").touch()
    assert not tool.train("effnet_lite0_fewshot", tmp_path / "data", tmp_path / "run", ["pooling=max"])  # reused
    assert len(calls) == 1
