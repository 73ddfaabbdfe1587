"""`keras-birds serve` as a client meets it: the real server in a child process on a free 127.0.0.1 port.

It answers birds-mini's test images as `predict` does, refuses each kind of bad input with its 4xx and goes
on serving, drains accepted requests on SIGTERM, and with two workers reports one server's metrics.
The model is conftest's trained tiny run; serving the run directory picks its exported model.onnx.
"""
import http.client
import io
import json
import re
import signal
import socket
import threading
import time
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from keras_birds.prediction.predict import predict
from keras_birds.run_dir import file_sha256
from keras_birds.serving.launch import Launched

UPLOAD_MB = 2


@pytest.fixture(scope="module")
def test_images(birds_mini):
    return sorted(str(p) for p in (birds_mini / "test").rglob("*.jpg"))


@pytest.fixture(scope="module")
def served_file(trained_tiny_run):
    return trained_tiny_run.path / "export" / "model.onnx"


@pytest.fixture(scope="module")
def server(trained_tiny_run):
    with Launched(trained_tiny_run.path, "--max-upload-mb", UPLOAD_MB, "--max-images", 8) as s:
        yield s


def _multipart(paths):
    return [("image", (Path(p).name, Path(p).read_bytes(), "image/jpeg")) for p in paths]


def _good(client, path):
    r = client.post("/v1/classify", content=Path(path).read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    return r.json()


def test_answers_match_predict(server, served_file, test_images, trained_tiny_run):
    expected = predict(test_images, served_file, progress=False).results
    got = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in test_images[:9]:  # one image per request, raw body
            got.extend(_good(client, path)["results"])
        for start in range(9, len(test_images), 8):  # several per request, multipart
            r = client.post("/v1/classify", files=_multipart(test_images[start:start + 8]))
            assert r.status_code == 200, r.text
            body = r.json()
            assert [x["name"] for x in body["results"]] == [Path(p).name for p in test_images[start:start + 8]]
            got.extend(body["results"])
        assert body["model"]["id"] == f"sha256:{file_sha256(served_file)}" and body["time_ms"] > 0
        three = client.post("/v1/classify?top_k=3", files=_multipart(test_images[:1])).json()["results"][0]
    assert len(got) == len(expected) == len(test_images)
    for g, e in zip(got, expected):
        assert g["species"] == e["species"] and g["unknown"] == (e["species"] == "unknown")
        assert [t["species"] for t in g["top_k"]] == [t["species"] for t in e["top_k"]]
        assert max(abs(a["probability"] - b["probability"]) for a, b in zip(g["top_k"], e["top_k"])) < 1e-4
    assert [t["species"] for t in three["top_k"]] == [t["species"] for t in expected[0]["top_k"][:3]]

    info = server.get_json("/v1/model")
    assert info["species"] == trained_tiny_run.read_classes() and info["input"]["image_size"] == 96
    assert info["file"] == "model.onnx" and info["kind"] == "onnx" and info["id"] == body["model"]["id"]
    assert info["unknown_rule"]["threshold"] == 0.0 and info["export_gate"]["verified"] is None
    assert any("--no-verify" in line for line in server.stderr)  # the export was never gated: said at start


def _bomb_png(side=50_000) -> bytes:
    """A valid ~1 KB PNG header claiming side x side greyscale pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def _address(url) -> tuple:
    host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
    return host, int(port)


def _raw_request(url, head: bytes, body_chunks=()) -> tuple[int, str]:
    """Send a request by hand (a declared size it never sends, a chunked body) and read the status line."""
    with socket.create_connection(_address(url), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before the end
            pass
        data = b""
        while True:  # the head, then Content-Length bytes of body (or up to the close)
            head_end = data.find(b"\r\n\r\n")
            length = re.search(rb"content-length: *(\d+)", data[:head_end].lower()) if head_end >= 0 else None
            if length and len(data) >= head_end + 4 + int(length.group(1)):
                break
            more = sock.recv(65536)
            if not more:
                break
            data += more
        return int(data.split(b" ", 2)[1]), data[head_end + 4:].decode(errors="replace")


def test_bad_input_gets_its_4xx_and_the_server_goes_on(server, test_images, tmp_path):
    jpeg = Path(test_images[0]).read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("not a bird")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    cases = [  # (what, request kwargs, status, kind)
        ("not an image", dict(content=b"hello, not a photo", headers={"Content-Type": "image/jpeg"}), 422,
         "not_an_image"),
        ("a truncated JPEG", dict(content=jpeg[:len(jpeg) // 3], headers={"Content-Type": "image/jpeg"}), 422,
         "not_an_image"),
        ("an empty body", dict(content=b"", headers={"Content-Type": "image/jpeg"}), 400, "empty_body"),
        ("a decompression bomb", dict(content=_bomb_png(), headers={"Content-Type": "image/png"}), 413,
         "too_many_pixels"),
        ("a wrong content type", dict(content=b'{"image": "x"}', headers={"Content-Type": "application/json"}),
         415, "unsupported_media_type"),
        ("a multipart form without a file", dict(data={"note": "hi"}, files=[("x", ("", b"", "image/jpeg"))]), 400,
         None),
        ("too many images", dict(files=_multipart(test_images[:9])), 413, "too_many_images"),
        ("a bad top_k", dict(content=jpeg, headers={"Content-Type": "image/jpeg"}, params={"top_k": "lots"}), 400,
         "bad_parameter"),
    ]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for what, kwargs, status, kind in cases:
            r = client.post("/v1/classify", **kwargs)
            assert r.status_code == status, (what, r.text)
            error = r.json()
            assert "\n" not in error["error"] and (kind is None or error["kind"] == kind), (what, error)
            assert _good(client, test_images[1])["results"][0]["species"], what
        r = client.get("/v1/classify")
        assert r.status_code == 405 and r.json()["kind"] == "method_not_allowed"
        assert client.get("/v2/nothing").json()["kind"] == "not_found"
        tiny = client.post("/v1/classify", content=png.getvalue(), headers={"Content-Type": "image/png"})
        assert tiny.status_code == 200  # an 8x8 PNG is a (poor) photo, not an error

    declared = 50 * 1024 * 1024  # a 50 MB upload: refused from its Content-Length, before its bytes are read
    status, body = _raw_request(server.url, (f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                                             f"Content-Length: {declared}\r\nExpect: 100-continue\r\n\r\n").encode())
    assert status == 413 and "52,428,800 bytes" in body
    chunk = b"x" * (256 * 1024)  # no Content-Length: refused once what arrived passes the limit
    n_chunks = UPLOAD_MB * 4 + 8
    status, body = _raw_request(server.url, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                                            b"Transfer-Encoding: chunked\r\n\r\n",
                                (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(n_chunks)))
    assert status == 413 and "too_large" in body
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _good(client, test_images[2])["results"]
    metrics = server.metrics()
    for kind in ("not_an_image", "empty_body", "too_many_pixels", "unsupported_media_type", "too_large",
                 "too_many_images", "bad_parameter", "not_found", "method_not_allowed"):
        assert re.search(rf'keras_birds_errors_total{{kind="{kind}"}} [1-9]', metrics), kind
    assert re.search(r'keras_birds_requests_total\{route="/v1/classify",status="200"\} ([1-9]\d*)', metrics)
    assert server.ready()


def test_sigterm_lets_accepted_requests_finish(served_file, test_images):
    n_clients, per_request = 12, 32
    images = (test_images * 2)[:per_request]
    boundary = "kbirds"
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"i\"; filename=\"{i}.jpg\"\r\n"
                    f"Content-Type: image/jpeg\r\n\r\n".encode() + Path(p).read_bytes() + b"\r\n"
                    for i, p in enumerate(images)) + f"--{boundary}--\r\n".encode()
    results, connected = [None] * n_clients, threading.Barrier(n_clients + 1, timeout=60)

    def client(i):
        conn = http.client.HTTPConnection(*_address(server.url), timeout=60)
        try:
            conn.connect()
            connected.wait()
            conn.request("POST", "/v1/classify", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            resp = conn.getresponse()
            results[i] = (resp.status, len(json.loads(resp.read())["results"]), time.monotonic())
        except Exception as e:  # a request lost in the shutdown: the test fails on it below
            results[i] = (type(e).__name__, 0, time.monotonic())
        finally:
            conn.close()

    with Launched(served_file, "--max-images", per_request) as server:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
        for t in threads:
            t.start()
        connected.wait()
        time.sleep(0.3)  # the requests are sent and being answered
        sigterm_at = time.monotonic()
        server.terminate()
        for t in threads:
            t.join(90)
        code = server.process.wait(60)
        log = server.log()
    assert [r[:2] for r in results] == [(200, per_request)] * n_clients, (results, log)
    assert any(r[2] > sigterm_at for r in results), "every request had finished before SIGTERM: nothing drained"
    # uvicorn re-raises the signal once drained (exit by SIGTERM, as systemd and Kubernetes expect)
    assert code in (0, -signal.SIGTERM) and "Finished server process" in log, log
    with pytest.raises(OSError):  # and it no longer listens
        socket.create_connection(_address(server.url), timeout=5)


def test_two_workers_serve_one_port_and_report_one_servers_metrics(served_file, test_images):
    with Launched(served_file, "--workers", 2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answers = {tuple(t["species"] for t in _good(client, p)["results"][0]["top_k"]) for p in test_images[:3]
                       for _ in range(4)}
        assert len(answers) == 3  # each image the same answer whichever worker took it
        assert "with 2 worker(s)" in server.log()
        metrics = server.metrics()
        assert re.search(r"^keras_birds_images_total 12\.0$", metrics, re.M), metrics[-2000:]
        assert server.stop() in (0, -signal.SIGTERM)
