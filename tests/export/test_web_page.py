"""`keras-birds export --web`: the page in headless Chromium gives predict's answers, offline, and copes with
odd files; the runtime is fetched once, checked against its pinned hash, and served from 127.0.0.1 only.

The browser tests need Chromium (Debian's `chromium`) and the `playwright` package; they are skipped, saying
so, where either is missing. The page is conftest's export of the tiny birds-mini run, made through the CLI.
"""
import base64
import json
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keras_birds.cli import main
from keras_birds.errors import UserError
from keras_birds.export.metadata import add_packed_file
from keras_birds.export.web import vendor
from keras_birds.export.web.browser import PageSession, find_chromium
from keras_birds.export.web.page import build_page, choose_model
from keras_birds.export.web.serve import Background, page_folder
from keras_birds.openset.rule import UNKNOWN_JSON, rule_payload
from keras_birds.prediction.predict import predict

TOLERANCE = 0.02  # the bound on |page - predict| of the top probability


def _browser_or_skip():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright): no browser to test the page in")
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium): no browser to test the page in")


@pytest.fixture(scope="module")
def web(exported):
    """OUT/web/ of conftest's `keras-birds export RUN --web ... --out OUT`, with the int8 file that passed the gate."""
    return exported.out_dir / "web"


@pytest.fixture(scope="module")
def session(web):
    _browser_or_skip()
    with PageSession(web) as page:
        yield page


def _compare(page_results, images, model):
    """(top-1 agreements, largest top-probability difference, answer agreements) against predict."""
    ours = predict([str(p) for p in images], model, progress=False)
    assert not ours.errors
    by_path = {r["path"]: r for r in ours.results}
    agree = answers = 0
    worst = 0.0
    for path, got in zip(images, page_results):
        want = by_path[str(path)]
        assert got["state"] == "done", (path, got)
        agree += got["top"][0]["species"] == want["top_k"][0]["species"]
        answers += got["species"] == want["species"]
        worst = max(worst, abs(got["top"][0]["probability"] - want["top_k"][0]["probability"]))
    return agree, worst, answers, ours


def test_folder_is_static_and_complete(web):
    info = json.loads((web / "model.json").read_text())
    assert info["file"] == "model_int8.tflite" and info["quantize"] == "int8" and info["verified"] is True
    export = json.loads((web.parent / "export.json").read_text())
    gated = next(f for f in export["files"] if f["file"] == "model_int8.tflite")
    assert (web / "model_int8.tflite").read_bytes() == (web.parent / "model_int8.tflite").read_bytes()
    assert info["sha256"] == gated["sha256"] and info["size_bytes"] == gated["size_bytes"]
    assert info["exported"] == export["created"] and info["model"] == "efficientnet_lite0"
    for src in vendor.LITERT.files.values():
        assert (web / "vendor" / src).is_file()
    html = (web / "index.html").read_text()
    assert '<script type="importmap">' in html and "./vendor/litertjs-core/index.js" in html
    page = " ".join(p.read_text() for p in web.glob("*.*") if p.suffix in (".html", ".js", ".css"))
    assert "https://" not in page and "http://" not in page  # nothing from elsewhere at page-load time


def test_page_answers_like_predict(session, web, birds_mini):
    images = sorted((birds_mini / "test").glob("*/*"))
    assert len(images) == 25
    results = session.classify(images)
    agree, worst, answers, ours = _compare(results, images, web / "model_int8.tflite")
    assert agree == len(images), f"top-1 differs from predict on {len(images) - agree} images"
    assert worst <= TOLERANCE
    assert answers == len(images)  # no unknown rule in this file: every answer names a species
    assert all(len(r["top"]) == 5 and r["modelMs"] > 0 for r in results)
    # what a person sees: the model's name, size and date, and one card per photo with five bars
    assert "efficientnet_lite0" in session.page.inner_text("#model")
    assert session.page.locator(".card[data-state=done]").count() >= len(images)
    assert session.page.locator(".card .bars li").count() >= 5 * len(images)
    assert session.outside == [] and session.failed == [] and session.errors == []
    assert session.requests_since_ready == []  # offline once loaded: photos in, answers out, no request


def _page_input(session, path, size):
    """The bytes the page feeds the model for the file at `path` (window.kb.prepare), as an array."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    got = session.page.evaluate(
        """async ([data, size]) => {
             const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
             const px = await kb.prepare(new Blob([bytes]), size);
             let s = '';
             for (let i = 0; i < px.length; i += 8192) s += String.fromCharCode.apply(null, px.slice(i, i + 8192));
             return btoa(s);
           }""", [data, size])
    return np.frombuffer(base64.b64decode(got), np.uint8).reshape(size, size, 3)


def test_page_input_is_predicts_input(session, birds_mini, tmp_path):
    """Decode and resize, bit for bit as load_rgb: JPEGs (one 84 x 140), a vertical-first resize, EXIF
    orientation (ignored, as Pillow does), transparency (on white), a palette GIF."""
    from keras_birds.data.images import load_rgb

    photo = birds_mini / "test" / "PLUSH CRESTED JAY" / "5.jpg"
    rgb = Image.open(birds_mini / "test" / "BALD EAGLE" / "5.jpg").convert("RGB")
    rgb.resize((140, 300)).save(tmp_path / "tall.png")  # height shrinks most: Pillow 13 resizes vertically first
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90" for viewers; Pillow and predict ignore it
    rgb.resize((300, 200)).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    rgba = np.asarray(rgb.convert("RGBA")).copy()
    rgba[..., 3] = np.linspace(0, 255, rgba.shape[1]).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    rgb.convert("P").save(tmp_path / "palette.gif")
    files = [photo, *sorted((birds_mini / "test").glob("[AB]*/*"))[:3], *sorted(tmp_path.iterdir())]
    for path in files:
        for size in (96, 224):
            page = _page_input(session, path, size)
            want = load_rgb(path, size)
            assert np.array_equal(page, want), (path.name, size, int(np.abs(page.astype(int) - want).max()))


def test_unknown_rule_inside_the_file(session, web, birds_mini, tmp_path):
    """A file carrying a margin rule: the page says "unknown" exactly where predict does."""
    images = sorted((birds_mini / "test").glob("*/*"))
    plain = predict([str(p) for p in images], web / "model_int8.tflite", progress=False)
    margins = sorted({r["top_k"][0]["probability"] - r["top_k"][1]["probability"] for r in plain.results})
    threshold = (margins[len(margins) // 2 - 1] + margins[len(margins) // 2]) / 2  # between two: some fall below
    ruled = tmp_path / "web"
    shutil.copytree(web, ruled)
    model = ruled / "model_int8.tflite"
    model.write_bytes(add_packed_file(model.read_bytes(), UNKNOWN_JSON,
                                      json.dumps(rule_payload("margin", threshold)).encode()))
    with session.another(ruled) as page:
        results = page.classify(images)
        agree, worst, answers, ours = _compare(results, images, model)
        assert page.outside == []
        assert "Unknown species" in page.page.inner_text("#results")
    assert ours.unknown_rule["score"] == "margin"
    n_unknown = sum(r["species"] == "unknown" for r in ours.results)
    assert 0 < n_unknown < len(images)
    assert agree == len(images) and worst <= TOLERANCE
    assert answers == len(images), "the page and predict disagree on which images are unknown"


def test_odd_files_then_the_next_photo(session, web, birds_mini, tmp_path):
    """Not an image: said so; a 6000 x 4000 photo: answered as predict does; the photo after: still answered."""
    photo = sorted((birds_mini / "test").glob("*/*"))[0]
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    pixels = np.asarray(Image.open(photo).convert("RGB").resize((6000, 4000), Image.BICUBIC), np.int16)
    Image.fromarray(np.clip(pixels + rng.integers(-6, 7, pixels.shape), 0, 255).astype(np.uint8)).save(big, quality=90)
    results = session.classify([text, big, fake, photo])
    assert [r["state"] for r in results] == ["error", "done", "error", "done"]
    assert "not an image" in results[0]["error"] and "not an image" in results[2]["error"]
    assert (results[1]["width"], results[1]["height"]) == (6000, 4000)
    agree, worst, _, _ = _compare([results[1], results[3]], [big, photo], web / "model_int8.tflite")
    assert agree == 2 and worst <= TOLERANCE
    assert session.page.locator(".card.error").count() >= 2
    assert session.outside == [] and session.errors == []


def test_web_with_tflite_exports_only_the_int8_file_by_default(tiny_run, tmp_path, monkeypatch):
    """`export RUN --web --tflite` without --quantize asks the workflow for int8 .tflite alone (the shared
    export names its --quantize list, so the default is checked here with the conversion stubbed out)."""
    from keras_birds.export import export as workflow

    asked = {}

    def record(run_dir, **settings):
        asked.update(settings, run_dir=run_dir)
        raise SystemExit(5)  # stop before the page: nothing was converted

    monkeypatch.setattr(workflow, "export", record)
    result = CliRunner().invoke(main, ["export", str(tiny_run.path), "--web", "--tflite", "--out", str(tmp_path / "x"),
                                       "--latency-runs", "0", "-q"])
    assert result.exit_code == 5, result.output
    assert asked["run_dir"] == str(tiny_run.path) and asked["quantize"] == ["int8"]
    assert asked["tflite"] is True and asked["onnx"] is False and asked["verify"] is True


def test_runtime_cached_then_offline(web, monkeypatch):
    """Once fetched, the runtime comes from the cache: no registry needed (an unreachable one here)."""
    monkeypatch.setenv(vendor.REGISTRY_ENV, "http://127.0.0.1:9")
    files = vendor.runtime_files()
    assert set(files) == {d for p in vendor.PACKAGES for d in p.files.values()}
    assert all(Path(p).is_file() for p in files.values())


def test_unreachable_registry_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(vendor.REGISTRY_ENV, "http://127.0.0.1:9")
    export = tmp_path / "export"
    _export_json(export, [{"file": "model_int8.tflite", "format": "tflite", "quantize": "int8", "verified": True}])
    with pytest.raises(UserError) as e:
        build_page(export, out=tmp_path / "web")
    message = str(e.value)
    assert "\n" not in message and "cannot fetch the web page's runtime @litertjs/core@2.5.3" in message
    assert not (tmp_path / "web").exists()


class _FakeRegistry(BaseHTTPRequestHandler):
    """The registry's record of a pinned version, whose tarball is not the pinned one."""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.endswith(".tgz"):
            body = b"\x1f\x8b not the package"
        else:
            pkg = next(p for p in vendor.PACKAGES if self.path.startswith(f"/{p.name}/"))
            host, port = self.server.server_address
            body = json.dumps({"dist": {"integrity": pkg.integrity,
                                        "tarball": f"http://{host}:{port}/{pkg.name}.tgz"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_tampered_tarball_is_refused(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("KERAS_BIRDS_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv(vendor.REGISTRY_ENV, f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(UserError, match="does not match its pinned sha512"):
            vendor.runtime_files()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not any((tmp_path / "cache").rglob("*.js"))


def _export_json(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f["file"]).write_bytes(b"x")
    (folder / "export.json").write_text(json.dumps({"files": files}))
    return json.loads((folder / "export.json").read_text())


def test_choose_model_prefers_gated_int8(tmp_path):
    files = [{"file": "model.onnx", "format": "onnx", "quantize": "none", "verified": True},
             {"file": "model_fp32.tflite", "format": "tflite", "quantize": "none", "verified": True},
             {"file": "model_int8.tflite", "format": "tflite", "quantize": "int8", "verified": True}]
    assert choose_model(tmp_path / "a", _export_json(tmp_path / "a", files), print)["file"] == "model_int8.tflite"
    files[2].update(file="model_int8.unverified.tflite", verified=False)
    assert choose_model(tmp_path / "b", _export_json(tmp_path / "b", files), print)["file"] == "model_fp32.tflite"
    with pytest.raises(UserError, match="every .tflite failed the export gate"):
        choose_model(tmp_path / "c", _export_json(tmp_path / "c", files[2:]), print)
    with pytest.raises(UserError, match="no export.json"):
        build_page(tmp_path / "nothing")


def test_serve_web_finds_the_page_and_serves_wasm(web, tmp_path):
    assert page_folder(web) == web and page_folder(web.parent) == web
    with pytest.raises(UserError, match="no exported web page"):
        page_folder(tmp_path)
    with Background(web) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "vendor/litertjs-core/wasm/litert_wasm_internal.wasm") as resp:
            assert resp.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(url + "app.js") as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
    result = CliRunner().invoke(main, ["serve-web", str(tmp_path)])
    assert result.exit_code == 2 and "no exported web page" in result.output
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--serve"])
    assert result.exit_code == 2 and "--serve serves the page --web writes" in result.output
