"""Training-batch augmentation from a recipe's Augment settings: batched torch ops (TorchAugmenter)
with the parameters of Keras' random flip/perspective/rotation/translation/zoom/shear layers, then the
recipe's photo corruptions (data/corruptions.py: fog, rain, blur, low light, JPEG...).

On the torch backend they run on the training device; on jax and tensorflow on the CPU (torch is always
installed), returning numpy arrays: the same seed gives the same pixels on every backend.
"""
from __future__ import annotations

import itertools
import math

import keras
import numpy as np

from keras_birds.data import corruptions
from keras_birds.recipe import Augment

STEPS = ("flip", "perspective", "rotation", "translate", "zoom", "shear")  # the order they apply in


class TorchAugmenter:
    """The Keras layers' random flip, perspective, rotation, translation, zoom and shear, as one sampling
    grid per image and one bilinear resampling (`grid_sample`), batched on the device Keras trains on.

    Not the Keras layers themselves: on the torch backend they run either through TensorFlow (which GPU
    images often lack) or through a 3-D map_coordinates that took 137 s per 32-image 224px batch on CPU,
    against 0.22 s for the same layers on TF's kernels.

    Random draws come from a CPU torch.Generator seeded from (seed, key): the same seed and key give the
    same batch on any device and in any loader thread. Without a key, each call takes the next one.
    """

    def __init__(self, aug: Augment, seed: int = 0, device=None, as_numpy=False):
        import torch

        self.aug, self.seed, self.as_numpy = aug, seed, as_numpy
        self.steps = tuple(s for s in STEPS if getattr(aug, s))
        self.corrupt = corruption_steps(aug)
        if device is None:  # resolved here, in the thread that builds the model: Keras keeps it per thread
            from keras.src.backend.torch.core import get_device

            device = get_device()
        self.device = torch.device(device)
        self._calls = itertools.count()

    def __call__(self, images, key=None):
        """uint8 (or float) pixels (N, H, W, 3) -> augmented float32 pixels 0-255: a torch tensor on
        self.device, or with as_numpy a numpy array (N, H, W, 3)."""
        import torch

        key = (next(self._calls),) if key is None else key if isinstance(key, tuple) else (key,)
        x = torch.as_tensor(images).to(self.device, non_blocking=True)
        n, h, w = (int(d) for d in x.shape[:3])
        gen = torch.Generator().manual_seed(_mix(self.seed, key))
        affine, homography = self.transforms(n, h, w, gen)
        with torch.no_grad():
            out = x.permute(0, 3, 1, 2).float()
            if self.steps:  # all off: no resampling (corruptions only)
                out = _warp(out, affine, homography).clamp_(0, 255)
            out = corrupt_batch(out, self.corrupt, gen)  # after the geometry draws: those stay as they were
        # An NHWC view of NCHW memory: Keras' torch convolutions permute it back to NCHW for free.
        out = out.clamp_(0, 255).permute(0, 2, 3, 1)
        return out.contiguous().cpu().numpy() if self.as_numpy else out

    def transforms(self, n, h, w, gen):
        """Per image, in pixel coordinates (x right, y down, pixel centres at integers), mapping output
        to input as Keras' affine_transform does: `affine` (N, 3, 3) = rotation @ translation @ zoom @
        shear, applied first (then reflected into the image); `homography` (N, 3, 3) = flip @ perspective
        (outside the image: black, as RandomPerspective fills)."""
        import torch

        a, f64 = self.aug, torch.float64

        def uniform(low, high, *shape):
            return low + (high - low) * torch.rand(*shape, generator=gen, dtype=f64)

        eye = torch.eye(3, dtype=f64).repeat(n, 1, 1)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        flip, persp, rot, trans, zoom, shear = (eye.clone() for _ in range(6))
        if a.flip:  # RandomFlip("horizontal"): mirror where U(0, 1) <= 0.5
            mirrored = uniform(0, 1, n) <= 0.5
            flip[mirrored, 0, 0], flip[mirrored, 0, 2] = -1.0, w - 1.0
        if a.perspective:
            # RandomPerspective(factor=0.5): p ~ U(0, 0.5), warp if U(0, 1) < p, so a quarter of the images.
            # Corner c goes to c + c * U(-scale/2, scale/2) per coordinate (so the top-left corner stays).
            warped = uniform(0, 1, n) < uniform(0, 0.5, n)
            start = torch.tensor([[0.0, 0.0], [w - 1, 0.0], [0.0, h - 1], [w - 1, h - 1]], dtype=f64).expand(n, 4, 2)
            end = start + start * uniform(-0.5 * a.perspective, 0.5 * a.perspective, n, 4, 2)
            persp = torch.where(warped[:, None, None], _homography(end, start), eye)
        if a.rotation:  # RandomRotation(rotation / 360): angle ~ U(-rotation, rotation) degrees about the centre
            t = uniform(-a.rotation, a.rotation, n) * (math.pi / 180)
            c, s = torch.cos(t), torch.sin(t)
            rot[:, 0, 0], rot[:, 0, 1], rot[:, 0, 2] = c, -s, cx - cx * c + cy * s
            rot[:, 1, 0], rot[:, 1, 1], rot[:, 1, 2] = s, c, cy - cx * s - cy * c
        if a.translate:  # RandomTranslation(t, t): content moves by U(-t, t) * size
            trans[:, 1, 2] = -uniform(-a.translate, a.translate, n) * h
            trans[:, 0, 2] = -uniform(-a.translate, a.translate, n) * w
        if a.zoom:  # RandomZoom(z, z): the output shows U(1-z, 1+z) times the input's extent, per axis
            zy, zx = uniform(1 - a.zoom, 1 + a.zoom, n), uniform(1 - a.zoom, 1 + a.zoom, n)
            zoom[:, 0, 0], zoom[:, 0, 2] = zx, cx * (1 - zx)
            zoom[:, 1, 1], zoom[:, 1, 2] = zy, cy * (1 - zy)
        if a.shear:  # RandomShear(s, s): x_in = x + sx * y, y_in = sy * x + y, about the top-left corner
            shear[:, 1, 0], shear[:, 0, 1] = uniform(-a.shear, a.shear, n), uniform(-a.shear, a.shear, n)
        return rot @ trans @ zoom @ shear, flip @ persp


def _homography(src, dst):
    """(N, 3, 3) H with H(src[i]) = dst[i] for the 4 corners (N, 4, 2), solved like Keras' TF backend."""
    import torch

    n = src.shape[0]
    rows = []
    for i in range(4):
        x, y = src[:, i, 0], src[:, i, 1]
        u, v = dst[:, i, 0], dst[:, i, 1]
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1))
    target = dst.reshape(n, 8, 1)  # u1, v1, u2, v2, ...
    h8 = torch.linalg.solve(torch.stack(rows, 1), target)[..., 0]
    return torch.cat([h8, torch.ones(n, 1, dtype=h8.dtype)], 1).reshape(n, 3, 3)


def _warp(x, affine, homography):
    """x (N, C, H, W) float resampled (bilinear) at reflect(affine p) then through homography, per image.

    The affine steps fill by reflection, the Keras layers' default (TF's REFLECT: d c b a | a b c d,
    then clamped, which is grid_sample's "reflection" with align_corners=False); the perspective then sees
    a full image and leaves black outside it, as the layers do one after another. Reflection is symmetric
    under the mirror flip, so an image without perspective needs one affine grid (a fast, fused path).
    """
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    to_norm = torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]], dtype=affine.dtype)
    norm = lambda m: (to_norm @ m @ torch.linalg.inv(to_norm)).float().to(x.device)  # noqa: E731
    flat = (homography[:, 2, :2] == 0).all(1)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    if flat.any():
        theta = norm(homography[flat] @ affine[flat])[:, :2]
        grid = F.affine_grid(theta, [len(theta), *x.shape[1:]], align_corners=False)
        out[flat.to(x.device)] = F.grid_sample(x[flat.to(x.device)], grid, mode="bilinear",
                                               padding_mode="reflection", align_corners=False)
    if not flat.all():
        warped = ~flat
        grid = F.affine_grid(norm(affine[warped])[:, :2], [int(warped.sum()), *x.shape[1:]], align_corners=False)
        edge = torch.tensor([1 - 1 / w, 1 - 1 / h], device=x.device)
        grid = torch.remainder(grid + 1, 4)  # reflect about the image edges (-1 and 1), then clamp
        grid = torch.maximum(torch.minimum(torch.where(grid > 2, 4 - grid, grid) - 1, edge), -edge)
        grid = torch.cat([grid, torch.ones_like(grid[..., :1])], -1).flatten(1, 2) @ norm(homography[warped]).mT
        grid = (grid[..., :2] / grid[..., 2:]).unflatten(1, (h, w))
        out[warped.to(x.device)] = F.grid_sample(x[warped.to(x.device)], grid, mode="bilinear",
                                                 padding_mode="zeros", align_corners=False)
    return out


def corruption_steps(aug: Augment) -> tuple:
    """(name, strength, probability) of each photo corruption the recipe turns on, in the order they apply."""
    return tuple((n, *getattr(aug, n)) for n in corruptions.CORRUPTIONS if min(getattr(aug, n)) > 0)


def corrupt_batch(x, steps, gen):
    """x (N, 3, H, W) float 0-255: each corruption on a `probability` share of the images, at a strength
    drawn uniformly in (0, strength]; the draws come from the CPU generator `gen`."""
    import torch

    x = x.clone() if steps else x  # the caller's pixels (a float input shares memory) stay as they were
    for name, strength, probability in steps:
        chosen = torch.rand(len(x), generator=gen) < probability
        level = (1 - torch.rand(len(x), generator=gen)) * strength
        if chosen.any():
            idx = chosen.nonzero().flatten().to(x.device)
            x[idx] = corruptions.apply(x[idx], name, level[chosen], gen)
    return x


def _mix(seed, key) -> int:
    """One 63-bit torch seed from the recipe seed and a batch key (e.g. (epoch, batch index))."""
    words = [int(v) & 0xFFFFFFFFFFFFFFFF for v in (seed, *key)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def build_augmenter(aug: Augment, seed: int = 0, backend: str | None = None):
    """An augmenter over pixel batches, or None when every step is off: on the torch backend on the
    training device; on jax and tensorflow torch ops on the CPU, handing numpy arrays to their fit."""
    if not any(getattr(aug, s) for s in STEPS) and not corruption_steps(aug):
        return None
    if (backend or keras.backend.backend()) == "torch":
        return TorchAugmenter(aug, seed)
    return TorchAugmenter(aug, seed, device="cpu", as_numpy=True)
