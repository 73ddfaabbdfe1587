"""Load benchmark of `keras-birds serve`: throughput and latency by concurrency, against one predict call per request.

    .venv/bin/python tools/bench_serve.py MODEL [--images ../shared/data/birds-dev/test] [--out docs/serve]

MODEL: what `keras-birds serve` takes (a run directory serves its gate-passing int8 .tflite). Everything runs
on 127.0.0.1, bounded in requests and in time; the servers are child processes stopped by SIGTERM at the end.
  batched     the server as shipped: requests that arrive together share a model call
  baseline    the same server with --max-batch 1 --max-wait-ms 0: one predict call per request, as a server
              that calls the runner's predict once per request would run
  workers     the batched server with --workers N --threads 1 (N: --workers, default the machine's cores)
At each concurrency (--concurrency, default 1 4 16 64) --clients keep that many requests in flight, each a
raw-body POST of a photo from --images (cycled), for --seconds or --requests, whichever comes first, after a
short warm-up; latency is per request, as the client sees it. Errors: non-200 answers or failed requests
(valid photos only, so there must be none). Batch size seen: images per model call from the server's /metrics
(mean, and the histogram bucket holding the largest). Memory: a fresh batched server's resident memory after
its warm-up and after each tenth of --memory-requests (default 10,000) at concurrency 16.
The load generator (asyncio, one keep-alive connection per client) shares the machine's cores with the server: say so beside the figures.
Writes OUT/bench.json and prints the table.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([\d.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _batch_buckets(text: str) -> dict:
    return {float(le): float(v) for le, v in re.findall(r'^keras_birds_batch_size_bucket\{le="([\d.]+)"\} ([\d.]+)$',
                                                        text, re.M)}


def batch_seen(before: str, after: str) -> dict:
    """Images per model call between two /metrics scrapes: mean, and the largest bucket that got any."""
    calls = _metric(after, "keras_birds_batch_size_count") - _metric(before, "keras_birds_batch_size_count")
    images = _metric(after, "keras_birds_batch_size_sum") - _metric(before, "keras_birds_batch_size_sum")
    b0, b1 = _batch_buckets(before), _batch_buckets(after)
    counts = {le: b1[le] - b0.get(le, 0.0) for le in sorted(b1)}
    largest, previous = None, 0.0
    for le, cumulative in counts.items():
        if cumulative > previous:
            largest = le
        previous = cumulative
    return {"model_calls": int(calls), "mean": round(images / calls, 2) if calls else None,
            "largest_at_most": int(largest) if largest is not None else None}


class Connection:
    """One keep-alive HTTP/1.1 connection sending raw-body POSTs. Our own rather than httpx: at concurrency 64
    httpx's pool spent a whole core of this 2-core machine (8.3 CPU-s in 8.8 s) and starved the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port, self.reader, self.writer = host, port, None, None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        payload = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection") == "close":
            await self.close()
        return status, payload

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


async def load(url: str, photos: list, concurrency: int, seconds: float, max_requests: int, warmup: float = 1.0):
    """`concurrency` clients, each on its own connection sending one request after another; (latencies of the
    measured requests, their errors, wall seconds of the measured part)."""
    host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
    latencies, errors, counter = [], [], {"sent": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def one_client(i):
        conn, k = Connection(host, int(port)), i
        while time.perf_counter() < stop_at and counter["sent"] < max_requests:
            body = photos[k % len(photos)]
            k += concurrency
            t0 = time.perf_counter()
            measured = t0 >= measure_from
            if measured:
                counter["sent"] += 1
            try:
                status, payload = await conn.post("/v1/classify", body)
                what = None if status == 200 else f"HTTP {status}: {payload[:120].decode(errors='replace')}"
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                what = f"{type(e).__name__}: {e}"
                await conn.close()
            if measured:
                latencies.append(time.perf_counter() - t0) if what is None else errors.append(what)
        await conn.close()

    await asyncio.gather(*(one_client(i) for i in range(concurrency)))
    return latencies, errors, time.perf_counter() - measure_from


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else None


def run_level(server, photos, concurrency, seconds, max_requests) -> dict:
    before = server.metrics()
    latencies, errors, wall = asyncio.run(load(server.url, photos, concurrency, seconds, max_requests))
    after = server.metrics()
    done = len(latencies)
    return {"concurrency": concurrency, "requests": done + len(errors), "ok": done, "errors": len(errors),
            "error_examples": sorted(set(errors))[:3], "seconds": round(wall, 2),
            "req_per_s": round(done / wall, 1) if wall > 0 else None,
            "p50_ms": round(1000 * _percentile(latencies, 0.5), 1) if latencies else None,
            "p99_ms": round(1000 * _percentile(latencies, 0.99), 1) if latencies else None,
            "batch": batch_seen(before, after)}


def memory_run(server, photos, n_requests: int, concurrency: int = 16, samples: int = 10) -> dict:
    """Resident memory of a fresh server after its warm-up, then after each tenth of `n_requests`: a leak grows
    with every tenth, allocator warm-up stops after the first ones."""
    before, rss, errors, done, wall = server.rss_bytes(), [], 0, 0, 0.0
    for _ in range(samples):
        latencies, errs, seconds = asyncio.run(load(server.url, photos, concurrency, seconds=3600,
                                                    max_requests=n_requests // samples, warmup=0.0))
        done, errors, wall = done + len(latencies) + len(errs), errors + len(errs), wall + seconds
        rss.append(server.rss_bytes())
    mb = lambda b: round(b / 2**20, 1)  # noqa: E731
    half = rss[len(rss) // 2:]
    return {"requests": done, "errors": errors, "concurrency": concurrency, "seconds": round(wall, 1),
            "rss_before_mb": mb(before), "rss_after_mb": mb(rss[-1]), "growth_mb": mb(rss[-1] - before),
            "rss_mb_after_each_tenth": [mb(b) for b in rss],
            "second_half_range_mb": [mb(min(half)), mb(max(half))]}


def cli_predict_per_request(model, photo_paths, n: int) -> dict:
    """`keras-birds predict FILE` once per request: what a team without a server would shell out to."""
    import subprocess

    times = []
    for path in photo_paths[:n]:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "keras_birds.cli", "predict", str(path), "--model", str(model), "-q"],
                       check=True, capture_output=True, timeout=300)
        times.append(time.perf_counter() - t0)
    return {"requests": len(times), "median_ms": round(1000 * statistics.median(times), 1)}


def table(rows: list, machine: str) -> str:
    lines = [f"| server ({machine}) | concurrency | req/s | p50 ms | p99 ms | errors | images per model call (mean, largest) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        b = r["batch"]
        lines.append(f"| {r['server']} | {r['concurrency']} | {r['req_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['errors']} | {b['mean']}, <= {b['largest_at_most']} |")
    return "\n".join(lines)


def main(argv=None):
    from keras_birds.inference.latency import cpu_description
    from keras_birds.serving.launch import Launched

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--images", default=str(REPO.parent / "shared" / "data" / "birds-dev" / "test"))
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level at most")
    p.add_argument("--requests", type=int, default=3000, help="measured requests per level at most")
    p.add_argument("--memory-requests", type=int, default=10_000)
    p.add_argument("--cli-requests", type=int, default=5, help="`keras-birds predict` subprocess calls (0: skip)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="a third server with this many workers of one thread each (1: skip it)")
    p.add_argument("--out", default=str(REPO / "docs" / "serve"))
    args = p.parse_args(argv)

    paths = sorted(Path(args.images).rglob("*.jpg"))
    if not paths:
        sys.exit(f"no .jpg under {args.images}")
    photos = [p.read_bytes() for p in paths]
    rows, memory = [], None
    configs = (("batched", []), ("baseline: one predict per request", ["--max-batch", 1, "--max-wait-ms", 0]),
               (f"batched, {args.workers} workers x 1 thread", ["--workers", args.workers, "--threads", 1]))
    for name, extra in configs[:3 if args.workers > 1 else 2]:
        with Launched(args.model, *extra) as server:
            for c in args.concurrency:
                row = {"server": name, **run_level(server, photos, c, args.seconds, args.requests)}
                print(json.dumps(row), flush=True)
                rows.append(row)
            served = server.get_json("/v1/model")
    if args.memory_requests:
        with Launched(args.model) as server:  # a fresh server: "before" is right after its warm-up
            memory = memory_run(server, photos, args.memory_requests)
        print(json.dumps({"memory": memory}), flush=True)
    by = {(r["server"], r["concurrency"]): r for r in rows}
    ratios = {c: round(by[("batched", c)]["req_per_s"] / by[("baseline: one predict per request", c)]["req_per_s"], 2)
              for c in args.concurrency}
    cli = cli_predict_per_request(args.model, paths, args.cli_requests) if args.cli_requests else None
    result = {
        "model": {k: served[k] for k in ("name", "file", "kind", "quantize", "size_bytes", "id")},
        "images": os.path.relpath(args.images, REPO), "n_photos": len(photos),
        "machine": f"{cpu_description()}, {platform.python_implementation()} {platform.python_version()}",
        "load_generator": "asyncio keep-alive connections, one per client, in another process on the same cores",
        "settings": {"seconds": args.seconds, "requests": args.requests}, "rows": rows,
        "throughput_ratio_batched_vs_baseline": ratios, "memory": memory, "cli_predict_per_request": cli,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows, result['machine']))
    print(f"batched / baseline req/s: {ratios}")
    print(f"memory: {memory}")
    print(f"cli predict per request: {cli}")
    print(f"wrote {out / 'bench.json'}")


if __name__ == "__main__":
    main()
