"""The HTTP API (Starlette): routes, JSON errors and metrics around a ServedModel and its MicroBatcher.

    POST /v1/classify[?top_k=5]   one image (raw body) or several (multipart) -> species, unknown, model id, time
    GET  /v1/model                name, species, input size, unknown rule, the export gate's figures
    GET  /healthz                 200 while the inference loop runs (a load balancer restarts it otherwise)
    GET  /readyz                  200 once the model answered its warm-up and until shutdown begins
    GET  /metrics                 Prometheus text format

Every error is a JSON object {"error": one line, "kind": ...} with a 4xx (the client's fault) or 503
(overloaded, not ready); the server goes on serving.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from keras_birds.cores import usable_cores
from keras_birds.prediction.predict import UNKNOWN, answers
from keras_birds.serving.batcher import MicroBatcher, Overloaded
from keras_birds.serving.metrics import Metrics
from keras_birds.serving.model import ServedModel
from keras_birds.serving.uploads import ApiError, Limits, decode_all, read_uploads

MAX_TOP_K = 50
ROUTES = "POST /v1/classify, GET /v1/model, /healthz, /readyz, /metrics"


@dataclass(frozen=True)
class Settings:
    max_batch: int = 32  # images per model call
    max_wait_ms: float = 0.0  # extra wait for a fuller batch once the model is free (0: none, as Triton's default)
    max_queue: int = 512  # images waiting beyond which requests get 503
    top_k: int = 5
    limits: Limits = Limits()


def _json(body, status=200):
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status)


def _error(e: ApiError, metrics: Metrics, headers=None):
    from starlette.responses import JSONResponse

    metrics.errors.labels(e.kind).inc()
    return JSONResponse({"error": e.message, "kind": e.kind}, status_code=e.status, headers=headers)


def _top_k(request, default: int, n_species: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return min(default, n_species)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP_K:
        raise ApiError(400, "bad_parameter", f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {raw!r}")
    return min(int(raw), n_species)


class Api:
    """The handlers, around one model, one batcher and one set of metrics."""

    def __init__(self, served: ServedModel, settings: Settings):
        self.served, self.settings, self.metrics = served, settings, Metrics()
        self.batcher = MicroBatcher(served.predict, settings.max_batch, settings.max_wait_ms / 1000,
                                    settings.max_queue, self.metrics.on_batch)
        # decoding on as many threads as cores: Starlette's pool of 40 oversubscribes the CPU under load, and
        # LiteRT's spinning inference threads then lose their cores (c=64: half the throughput, p99 3 s)
        self.decoder = ThreadPoolExecutor(usable_cores(), thread_name_prefix="keras-birds-decode")
        self.ready = False

    def observed(self, route: str, handler):
        """Count the request and its latency; turn ApiError into its JSON answer."""
        async def endpoint(request):
            start = time.perf_counter()
            try:
                response = await handler(request, start)
            except ApiError as e:
                response = _error(e, self.metrics, {"Retry-After": "1"} if e.status == 503 else None)
            self.metrics.requests.labels(route, str(response.status_code)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            return response
        return endpoint

    async def classify(self, request, start):
        served, settings = self.served, self.settings
        top_k = _top_k(request, settings.top_k, len(served.names))
        uploads = await read_uploads(request, settings.limits)
        images = await asyncio.get_running_loop().run_in_executor(
            self.decoder, decode_all, uploads, served.image_size, settings.limits)
        self.metrics.queued.inc(len(images))
        try:
            probs = await self.batcher.submit(images)
        except Overloaded as e:
            raise ApiError(503, "overloaded", f"the server is busy ({e}); retry in a second") from None
        except Exception as e:  # the model itself failed: the server's fault, said in one line
            raise ApiError(500, "inference_failed", f"the model failed on this batch ({type(e).__name__}: {e})")
        finally:
            self.metrics.queued.dec(len(images))
        results = [{"name": u.name, "unknown": a["species"] == UNKNOWN, **a}
                   for u, a in zip(uploads, answers(np.asarray(probs), served.names, served.rule, top_k))]
        return _json({"model": {"id": served.id, "name": served.info["name"], "file": served.info["file"]},
                      "unknown_rule": served.info["unknown_rule"], "results": results,
                      "time_ms": round(1000 * (time.perf_counter() - start), 2)})

    async def model_info(self, request, start):
        return _json(self.served.info)

    async def healthz(self, request, start):
        if not self.batcher.running:
            raise ApiError(503, "unhealthy", "the inference loop has stopped")
        return _json({"status": "ok"})

    async def readyz(self, request, start):
        if not (self.ready and self.batcher.running):
            raise ApiError(503, "not_ready", "the model is not ready (starting or shutting down)")
        return _json({"status": "ready", "model": self.served.id})

    async def metrics_page(self, request):
        from starlette.responses import Response

        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

    async def http_error(self, request, exc):
        """Starlette's 404 and 405, as JSON like every other error."""
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {exc.detail} (routes: {ROUTES})"
        return _error(ApiError(exc.status_code, kind, message), self.metrics, exc.headers)

    @asynccontextmanager
    async def lifespan(self, app):
        from starlette.concurrency import run_in_threadpool

        size = self.served.image_size
        await run_in_threadpool(self.served.predict, np.zeros((1, size, size, 3), np.uint8))  # warm-up
        self.batcher.start()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await self.batcher.stop()  # uvicorn has drained the connections by now: nothing is lost
            self.decoder.shutdown(wait=True)


def create_app(served: ServedModel, settings: Settings = Settings()):
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    api = Api(served, settings)
    routes = [Route("/v1/classify", api.observed("/v1/classify", api.classify), methods=["POST"]),
              Route("/v1/model", api.observed("/v1/model", api.model_info), methods=["GET"]),
              Route("/healthz", api.observed("/healthz", api.healthz), methods=["GET"]),
              Route("/readyz", api.observed("/readyz", api.readyz), methods=["GET"]),
              Route("/metrics", api.metrics_page, methods=["GET"])]
    app = Starlette(routes=routes, lifespan=api.lifespan, exception_handlers={HTTPException: api.http_error})
    app.state.api = api
    return app
