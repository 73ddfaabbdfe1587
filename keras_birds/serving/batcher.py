"""Micro-batching: the images of requests that arrive together go through the model as one batch.

One inference thread runs the model (a LiteRT interpreter is not thread-safe, and one batch at a time uses
every core the runtime was given). While it runs, new requests queue; when it is free it takes everything
queued, up to `max_batch` images, and waits at most `max_wait_s` for more only if the batch is not full. So
at low load a request is not held back waiting for company, and under load throughput grows with the batch.
Our own rather than LitServe's batcher: LitServe runs the model in worker processes fed through
multiprocessing queues (every decoded image pickled once more), for a 4 MB model that a thread serves.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np


class Overloaded(Exception):
    """More images are queued than the server will hold (`max_queue`): the client should retry later."""


class MicroBatcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int = 32, max_wait_s: float = 0.0,
                 max_queue: int = 512, on_batch: Callable[[int, float], None] = lambda n, seconds: None):
        if max_batch < 1 or max_queue < max_batch or max_wait_s < 0:
            raise ValueError(f"need max_batch >= 1, max_queue >= max_batch, max_wait_s >= 0; got {max_batch}, "
                             f"{max_queue}, {max_wait_s}")
        self.predict, self.max_batch, self.max_wait_s, self.max_queue = predict, max_batch, max_wait_s, max_queue
        self.on_batch = on_batch  # (images in the batch, seconds the model took), for metrics
        self.queued = 0  # images waiting or running
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self):
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="keras-birds-inference")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="keras-birds-batcher")

    async def stop(self):
        """Finish what is queued, then stop (the server stops taking requests first)."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._executor.shutdown(wait=True)
        self._task = None

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for (N, S, S, 3) images, computed in a batch with whatever else is queued."""
        if not self.running:
            raise RuntimeError("the batcher is not running")
        n = len(images)
        if self.queued + n > self.max_queue:
            raise Overloaded(f"{self.queued} images are queued, the limit is {self.max_queue}")
        future = asyncio.get_running_loop().create_future()
        self.queued += n
        self._queue.put_nowait((images, future))
        try:
            return await future
        finally:
            self.queued -= n

    async def _loop(self):
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            items, n = [first], len(first[0])
            deadline = loop.time() + self.max_wait_s
            while n < self.max_batch:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                else:
                    item = self._queue.get_nowait()
                if item is None:
                    stopping = True  # run what was taken, then stop
                    break
                items.append(item)
                n += len(item[0])
            await self._run(loop, items, n)
        while not self._queue.empty():  # stop() came while requests were still queued: answer them too
            item = self._queue.get_nowait()
            if item is not None:
                await self._run(loop, [item], len(item[0]))

    async def _run(self, loop, items, n):
        batch = items[0][0] if len(items) == 1 else np.concatenate([images for images, _ in items])
        start = time.perf_counter()
        try:
            probs = await loop.run_in_executor(self._executor, self.predict, batch)
        except Exception as e:  # every request of the batch gets the error; the loop goes on
            for _, future in items:
                if not future.done():
                    future.set_exception(e)
            return
        self.on_batch(n, time.perf_counter() - start)
        offset = 0
        for images, future in items:
            if not future.done():  # a client that went away cancelled its future
                future.set_result(probs[offset:offset + len(images)])
            offset += len(images)
