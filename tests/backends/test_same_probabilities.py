"""Every backend gives torch's probabilities (within 1e-4) for the same weights on real images: from a
model.keras written on torch, and from EfficientNet-Lite0 built with its packaged ImageNet weights; and
each applies the head's LR multiplier (head_lr_mult) as torch does."""
import sys
from pathlib import Path

import numpy as np
import pytest

import backend_probe  # tests/backends/, as other_backend
from other_backend import run_under  # tests/backends/ (pytest puts it on sys.path)

PROBE = Path(__file__).with_name("backend_probe.py")


@pytest.fixture(scope="module")
def job(birds_mini, tmp_path_factory):
    """JOB.npz for backend_probe.py and torch's own answers to it (this process is torch)."""
    from keras_birds.data.images import load_rgb
    from keras_birds.models.build import build_classifier

    tmp = tmp_path_factory.mktemp("backends")
    species = sorted(p for p in (birds_mini / "test").iterdir() if p.is_dir())[:8]
    images = np.stack([load_rgb(next(iter(sorted(s.iterdir()))), 224) for s in species]).astype("float32")
    rng = np.random.default_rng(0)
    head_kernel, head_bias = rng.normal(0, 0.2, (1280, 25)).astype("float32"), rng.normal(0, 0.1, 25).astype("float32")
    model = build_classifier("efficientnet_lite0", 25, "imagenet", image_size=224, dropout=0.0)
    model.get_layer("head").set_weights([head_kernel, head_bias])
    model.save(tmp / "model.keras")
    np.savez(tmp / "job.npz", images=images, keras_file=str(tmp / "model.keras"), head_kernel=head_kernel,
             head_bias=head_bias)
    backend_probe.main(tmp / "job.npz", tmp / "torch.npz")
    return tmp, np.load(tmp / "torch.npz")


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_backend_gives_torchs_probabilities_and_head_lr(job, backend):
    tmp, torch_side = job
    proc = run_under(backend, sys.executable, PROBE, tmp / "job.npz", tmp / f"{backend}.npz", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    other = np.load(tmp / f"{backend}.npz")
    assert str(other["backend"]) == backend
    assert torch_side["built"].max(1).mean() > 0.3  # real birds, real features: not a flat answer
    diffs = {k: float(np.abs(other[k] - torch_side[k]).max()) for k in ("from_file", "built")}
    print(f"{backend}: max |p - torch's p| {diffs}")
    for key in ("from_file", "built"):
        np.testing.assert_allclose(other[key], torch_side[key], atol=1e-4, rtol=0, err_msg=key)
    np.testing.assert_allclose(torch_side["from_file"], torch_side["built"], atol=1e-5)
    np.testing.assert_allclose(other["head_lr"], [1e-3, 1e-2], rtol=1e-3)  # Adam's first step = the LR
    np.testing.assert_allclose(torch_side["head_lr"], [1e-3, 1e-2], rtol=1e-3)
