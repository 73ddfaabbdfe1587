"""Photo corruptions of app users' pictures, batched torch ops: training augmentation and `eval --corruptions`.

Every corruption takes float pixels (N, 3, H, W) 0-255 on any device and a strength per image in [0, 1]
(0: the image unchanged; 1: severity 5 of `eval --corruptions`, severity k = strength k/5), and draws its
randomness from a CPU torch.Generator, so a seed gives the same pixels on any device. Sizes in pixels
are for 224 px images and scale with the image side, so a corruption means the same at 260 px.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from keras_birds.errors import UserError

SEVERITIES = (1, 2, 3, 4, 5)


class Corruption(NamedTuple):
    fn: Callable
    doc: str  # one line: report.md lists it under the figures


def _rand(gen, device, *shape):
    import torch

    return torch.rand(*shape, generator=gen).to(device)


def _randn(gen, device, *shape):
    import torch

    return torch.randn(*shape, generator=gen).to(device)


def _linear(x):
    """sRGB-ish pixels 0-255 -> linear light 0-1 (gamma 2.2): light adds and scales there."""
    return (x / 255).clamp(0, 1) ** 2.2


def _pixels(lin):
    return lin.clamp(0, 1) ** (1 / 2.2) * 255


def _smooth_field(gen, n, h, w, device):
    """(N, 1, H, W) random cloud-like field in [0, 1]: octaves of upsampled noise (ImageNet-C's plasma)."""
    import torch.nn.functional as F

    field = 0
    for k, side in enumerate((2, 4, 8, 16)):
        field = field + F.interpolate(_randn(gen, device, n, 1, side, side), size=(h, w), mode="bicubic",
                                      align_corners=False) * 0.6 ** k
    low, high = field.amin((2, 3), keepdim=True), field.amax((2, 3), keepdim=True)
    return (field - low) / (high - low + 1e-6)


def _per_image_conv(x, kernels):
    """x (N, C, H, W) convolved with its own kernel (N, K, K) per image (all channels), edges reflected."""
    import torch.nn.functional as F

    n, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels[:, None].repeat_interleave(c, 0)  # (N*C, 1, K, K)
    padded = F.pad(x.reshape(1, n * c, h, w), (k // 2,) * 4, mode="reflect")
    return F.conv2d(padded, weight.to(x.dtype), groups=n * c).reshape(n, c, h, w)


def _kernel_grid(size, device):
    import torch

    r = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    return r[None, :].expand(size, size), r[:, None].expand(size, size)  # u (x), v (y)


def _line_kernels(length, angle, device):
    """(N, K, K) anti-aliased line segments of `length` pixels at `angle` radians, each summing to 1."""
    import torch

    size = 2 * math.ceil(float(length.max()) / 2) + 3
    u, v = _kernel_grid(size, device)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along, across = u * cos + v * sin, (-u * sin + v * cos).abs()
    half = length[:, None, None] / 2
    k = (1 - across).clamp(min=0) * (half + 0.5 - along.abs()).clamp(0, 1)
    return k / k.sum((1, 2), keepdim=True)


def fog(x, s, gen):
    """Fog/haze: the scene fades towards a bright airlight through an uneven, cloud-like veil (up to 85%)."""
    n, _, h, w = x.shape
    veil = 0.85 * s * (0.5 + 0.5 * _smooth_field(gen, n, h, w, x.device))
    airlight = 255 * (0.8 + 0.15 * _rand(gen, x.device, n, 1, 1, 1))
    return x * (1 - veil) + airlight * veil


def rain(x, s, gen):
    """Rain streaks: a darker, duller scene behind bright near-vertical streaks whose number and length grow."""
    n, _, h, w = x.shape
    scale = h / 224
    # One uniform field per image: a stronger rain keeps the weaker one's drops and adds more.
    drops = (_rand(gen, x.device, n, 1, h, w) < 0.006 * s).to(x.dtype)
    length = ((6 + 18 * s.flatten()) * scale).clamp(min=1)
    angle = math.pi / 2 + (_rand(gen, x.device, n) - 0.5) * math.radians(40)
    streaks = _per_image_conv(drops, _line_kernels(length, angle, x.device)) * length[:, None, None, None]
    alpha = streaks.clamp(0, 1) * (0.4 + 0.4 * s)
    scene = x * (1 - 0.25 * s) + 30 * s
    return scene * (1 - alpha) + 225 * alpha


def defocus_blur(x, s, gen):
    """Defocus blur: a disc-shaped lens blur of radius 0.5-6 px (out of focus, a dirty lens)."""
    import torch

    radius = (0.5 + 5.5 * s.flatten()) * x.shape[2] / 224
    size = 2 * math.ceil(float(radius.max()) + 0.5) + 1
    u, v = _kernel_grid(size, x.device)
    disc = (radius[:, None, None] + 0.5 - torch.sqrt(u ** 2 + v ** 2)).clamp(0, 1)
    return _per_image_conv(x, disc / disc.sum((1, 2), keepdim=True))


def motion_blur(x, s, gen):
    """Motion blur: camera shake, a straight smear of 1-20 px in a random direction."""
    length = ((1 + 19 * s.flatten()) * x.shape[2] / 224).clamp(min=1)
    angle = _rand(gen, x.device, x.shape[0]) * math.pi
    return _per_image_conv(x, _line_kernels(length, angle, x.device))


def low_light(x, s, gen):
    """Low light with sensor noise: up to 4 stops under-exposed, shot and read noise, then brightened halfway."""
    exposure = 2 ** (-4 * s)
    photons = 4000 * exposure * _linear(x)  # electrons collected at full scale 4000
    noisy = photons + _randn(gen, x.device, *x.shape) * (photons.clamp(min=0) + 9).sqrt()  # shot + 3 e- read
    return _pixels(noisy / 4000 * exposure ** -0.5)


def overexposure(x, s, gen):
    """Overexposure/backlight: up to 1.5 stops brighter plus glare from one side; highlights blow out."""
    import torch

    n, _, h, w = x.shape
    u, v = _kernel_grid(max(h, w), x.device)
    angle = _rand(gen, x.device, n)[:, None, None] * 2 * math.pi
    ramp = (u[:h, :w] * torch.cos(angle) + v[:h, :w] * torch.sin(angle)) / max(h, w) + 0.5  # 0..1 towards the light
    glare = ramp.clamp(0, 1)[:, None] ** 2
    return _pixels(_linear(x) * 2 ** (1.5 * s) + s * (0.1 + 0.5 * glare))


def colour_cast(x, s, gen):
    """Colour cast: a wrong white balance, warm or cool (red/blue gains up to 2x/0.5x) with a green-magenta tint."""
    import torch

    n = x.shape[0]
    warm = torch.where(_rand(gen, x.device, n) < 0.5, -1.0, 1.0) * (0.6 + 0.4 * _rand(gen, x.device, n))
    tint = _rand(gen, x.device, n) - 0.5
    log_gain = 0.7 * torch.stack([warm, 0.5 * tint, -warm], 1)[:, :, None, None] * s
    return _pixels(_linear(x) * torch.exp(log_gain))


# JPEG's standard quantisation tables (ITU T.81 Annex K), luminance and chrominance.
_Q_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_Q_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _dct_matrix(device):
    import torch

    k, i = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    d = torch.cos((2 * i + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device)


def _quantise_blocks(plane, table, dct):
    """plane (N, H, W), H and W multiples of 8; table (N, 8, 8): 8x8 DCT, rounded to the table, inverted."""
    n, h, w = plane.shape
    blocks = plane.reshape(n, h // 8, 8, w // 8, 8).transpose(2, 3)
    coef = dct @ blocks @ dct.T
    t = table[:, None, None]
    blocks = dct.T @ ((coef / t).round() * t) @ dct
    return blocks.transpose(2, 3).reshape(n, h, w)


def jpeg(x, s, gen):
    """JPEG re-compression: quality 60 down to 7 (libjpeg's tables, 4:2:0 chroma), blocking and ringing."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    quality = (60 - 53 * s.flatten()).clamp(1, 100)
    scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)[:, None, None] / 100  # libjpeg's rule
    luma_q = (torch.tensor(_Q_LUMA, device=x.device).reshape(8, 8) * scale).clamp(1, 255)
    chroma_q = (torch.tensor(_Q_CHROMA, device=x.device).reshape(8, 8) * scale).clamp(1, 255)
    ph, pw = -h % 16, -w % 16
    img = F.pad(x, (0, pw, 0, ph), mode="replicate")
    r, g, b = img.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    dct = _dct_matrix(x.device)
    y = _quantise_blocks(y - 128, luma_q, dct) + 128
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # 4:2:0
    chroma = torch.stack([_quantise_blocks(c, chroma_q, dct) for c in chroma.unbind(1)], 1)
    cb, cr = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return out[:, :, :h, :w]


def gaussian_noise(x, s, gen):
    """Gaussian noise: independent per pixel and channel, standard deviation up to 97 levels (ImageNet-C's 0.38)."""
    return x + _randn(gen, x.device, *x.shape) * (97 * s)


# In the order training applies them: the scene (weather, light), the lens, the sensor, the file.
CORRUPTIONS = {f.__name__: Corruption(f, f.__doc__) for f in (
    fog, rain, low_light, overexposure, colour_cast, defocus_blur, motion_blur, gaussian_noise, jpeg)}
GROUPS = {"blur": ("defocus_blur", "motion_blur"), "weather": ("fog", "rain"),
          "light": ("low_light", "overexposure", "colour_cast"), "noise": ("gaussian_noise", "low_light")}


def generator(seed: int, key=()):
    """A CPU torch.Generator seeded from (seed, *key): one stream per corruption and batch."""
    import torch

    words = [int(v) & 0xFFFFFFFFFFFFFFFF for v in (seed, *key)]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1)))


def apply(x, name: str, strength, gen):
    """One corruption on float pixels (N, 3, H, W) 0-255 with a strength per image (N,) in [0, 1];
    images of strength 0 come back exactly as they were. Returns float pixels clamped to 0-255."""
    import torch

    s = torch.as_tensor(strength, dtype=x.dtype).to(x.device).reshape(-1, 1, 1, 1).expand(len(x), 1, 1, 1)
    out = CORRUPTIONS[name].fn(x, s, gen).clamp(0, 255)
    return torch.where(s > 0, out, x)


def corrupt(images, name: str, severity: int, seed: int = 0, key=()):
    """uint8 images (N, H, W, 3) -> the same images under `name` at `severity` (0 = unchanged, 1-5),
    uint8 again (a photo file's pixels). The same (seed, key) draw the same randomness whatever the
    severity, so only the strength differs between severities."""
    import torch

    check_severity(severity, allow_zero=True)
    if name not in CORRUPTIONS:
        parse_names(name)  # the one-line error naming the known ones
    x = torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2)
    gen = generator(seed, (list(CORRUPTIONS).index(name), *key))
    with torch.no_grad():
        out = apply(x, name, torch.full((len(x),), severity / 5), gen)
    return out.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def parse_names(text: str) -> tuple:
    """'all' or comma-separated corruption names and groups (blur, weather, light, noise) -> names, in order."""
    wanted = set()
    for part in (p.strip().lower().replace("-", "_") for p in str(text).split(",")):
        if part == "all":
            wanted |= set(CORRUPTIONS)
        elif part in CORRUPTIONS:
            wanted.add(part)
        elif part in GROUPS:
            wanted |= set(GROUPS[part])
        elif part:
            raise UserError(f"unknown corruption '{part}' (known: all, {', '.join(CORRUPTIONS)}; "
                            f"groups: {', '.join(GROUPS)})")
    if not wanted:
        raise UserError(f"--corruptions {text!r}: name at least one corruption, or all")
    return tuple(n for n in CORRUPTIONS if n in wanted)


def check_severity(severity, allow_zero=False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not low <= severity <= 5:
        raise UserError(f"severity must be a whole number from {low} to 5, got {severity!r}")
    return int(severity)


def parse_severities(text: str) -> tuple:
    """'all', one severity 1-5, or a comma-separated list of them -> sorted severities."""
    if str(text).strip().lower() == "all":
        return SEVERITIES
    found = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part.isdigit() or not 1 <= int(part) <= 5:
            raise UserError(f"--severity {text}: expected a whole number from 1 to 5, a comma-separated list of them, "
                            f"or all")
        found.add(int(part))
    return tuple(sorted(found))
