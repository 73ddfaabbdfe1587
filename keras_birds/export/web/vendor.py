"""The page's runtime: LiteRT.js files from pinned npm packages, fetched once and cached like model weights.

    files = runtime_files(log)     # {path inside the page's vendor/ folder: bytes on disk}

Each package is pinned by version and by the sha512 the npm registry published for its tarball (the
`integrity` of package-lock.json): the registry's record must name that hash and the downloaded tarball
must have it, else nothing is written. Only the files the page loads are extracted, into
$KERAS_BIRDS_CACHE/npm/<package>@<version>/ (default ~/.cache/keras_birds/npm/); a cache entry is a
complete folder or none (written beside, then renamed). The page never loads anything from a CDN.

Why @litertjs/core (LiteRT.js): it runs the exported .tflite itself, the int8 file that passed the export
gate, with the same TFLite kernels (XNNPACK) as ai-edge-litert in Python, on tensors the page builds
with predict's own resize; MediaPipe Tasks' ImageClassifier resizes and crops by itself (its answers
differ from predict's), onnxruntime-web would run the float .onnx, not the gated int8 file.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from keras_birds.errors import UserError, brief

REGISTRY = "https://registry.npmjs.org"
REGISTRY_ENV = "KERAS_BIRDS_NPM_REGISTRY"  # a mirror (or, in tests, an unreachable address)
TIMEOUT_S = 60


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of this version's tarball
    files: dict  # path inside the tarball (under package/) -> path under the page's vendor/ folder
    license: str


# Without threads (they need cross-origin isolation headers that GitHub Pages and plain servers do not send)
# and without JSPI (only for WebNN / WebGPU partitioning): the relaxed-SIMD build, which Chromium-based
# browsers load, and the compat build for browsers without relaxed SIMD (Safari, Firefox).
LITERT = Package(
    "@litertjs/core", "2.5.3",
    "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ==",
    {"dist/index.js": "litertjs-core/index.js",
     "wasm/litert_wasm_internal.js": "litertjs-core/wasm/litert_wasm_internal.js",
     "wasm/litert_wasm_internal.wasm": "litertjs-core/wasm/litert_wasm_internal.wasm",
     "wasm/litert_wasm_compat_internal.js": "litertjs-core/wasm/litert_wasm_compat_internal.js",
     "wasm/litert_wasm_compat_internal.wasm": "litertjs-core/wasm/litert_wasm_compat_internal.wasm"},
    "Apache-2.0")
WASM_UTILS = Package(  # the one dependency of @litertjs/core: loads the Emscripten script
    "@litertjs/wasm-utils", "2.5.3",
    "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ==",
    {"dist/index.js": "litertjs-wasm-utils/index.js"},
    "Apache-2.0")
PACKAGES = (LITERT, WASM_UTILS)
# The bare module names index.js imports, mapped by the page's import map to the vendored files.
IMPORT_MAP = {LITERT.name: "./vendor/litertjs-core/index.js", WASM_UTILS.name: "./vendor/litertjs-wasm-utils/index.js"}


def cache_root() -> Path:
    from keras_birds.data.sources import default_cache_dir

    return default_cache_dir() / "npm"


def package_dir(pkg: Package) -> Path:
    return cache_root() / f"{pkg.name.replace('/', '+')}@{pkg.version}"


def runtime_files(log=lambda msg: None) -> dict:
    """{path under vendor/: cached file} of every pinned package, fetching the missing ones."""
    out = {}
    for pkg in PACKAGES:
        folder = ensure_cached(pkg, log)
        out.update({dest: folder / dest for dest in pkg.files.values()})
    return out


def notice() -> str:
    """vendor/NOTICE.txt: what the folder holds, from where, under which licence."""
    lines = ["Files in this folder come unchanged from these npm packages, checked against the sha512 the npm",
             "registry published for each tarball:", ""]
    for pkg in PACKAGES:
        lines += [f"{pkg.name}@{pkg.version}  ({pkg.license}; https://www.npmjs.com/package/{pkg.name})",
                  f"  integrity {pkg.integrity}"]
        lines += [f"  {src} -> {dest}" for src, dest in pkg.files.items()]
        lines.append("")
    return "\n".join(lines)


def ensure_cached(pkg: Package, log=lambda msg: None) -> Path:
    folder = package_dir(pkg)
    if all((folder / dest).is_file() for dest in pkg.files.values()):
        return folder
    log(f"fetching {pkg.name}@{pkg.version} from the npm registry (once; cached in {folder}) ...")
    tarball = _download(pkg)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _extract(pkg, tarball, partial)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _registry() -> str:
    return os.environ.get(REGISTRY_ENV, REGISTRY).rstrip("/")


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": "application/json, application/octet-stream",
                                               "User-Agent": "keras-birds"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        return resp.read()


def _download(pkg: Package) -> bytes:
    """The package's tarball, after the registry's record and the bytes both match the pinned sha512."""
    where = f"{_registry()}/{pkg.name}/{pkg.version}"
    try:
        record = json.loads(_get(where))
        dist = record["dist"]
        if dist.get("integrity") != pkg.integrity:
            raise UserError(f"the npm registry's {pkg.name}@{pkg.version} has integrity {dist.get('integrity')}, "
                            f"not the pinned {pkg.integrity}: refusing to use it")
        data = _get(dist["tarball"])
    except UserError:
        raise
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"cannot fetch the web page's runtime {pkg.name}@{pkg.version} from the npm registry "
                        f"({where}): {brief(e, 120, with_type=True)}; connect once (the files are then cached in "
                        f"{cache_root()}) or set {REGISTRY_ENV} to a reachable npm mirror") from None
    if sri(data) != pkg.integrity:
        raise UserError(f"the tarball of {pkg.name}@{pkg.version} does not match its pinned sha512 "
                        f"({sri(data)[:30]}... != {pkg.integrity[:30]}...): refusing to use it")
    return data


def sri(data: bytes) -> str:
    """Subresource-integrity form of a sha512, as npm writes it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _extract(pkg: Package, tarball: bytes, folder: Path):
    """The package's listed files, and only those, into `folder` (regular files; no path leaves it)."""
    wanted = {f"package/{src}": dest for src, dest in pkg.files.items()}
    found = set()
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar:
            dest = wanted.get(member.name)
            if dest is None or not member.isfile():
                continue
            target = folder / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            found.add(member.name)
    missing = sorted(set(wanted) - found)
    if missing:
        raise UserError(f"{pkg.name}@{pkg.version}'s tarball lacks {', '.join(missing)}")
