"""MicroBatcher: requests that arrive while the model runs share the next call; limits and stop() hold."""
import asyncio
import threading
import time

import numpy as np
import pytest

from keras_birds.serving.batcher import MicroBatcher, Overloaded


class SlowModel:
    """probabilities = the images' first pixel, after `seconds`; records each call's batch size and thread."""

    def __init__(self, seconds=0.05, fail_on=None):
        self.seconds, self.fail_on, self.calls, self.threads = seconds, fail_on, [], set()

    def __call__(self, x):
        self.calls.append(len(x))
        self.threads.add(threading.get_ident())
        time.sleep(self.seconds)
        if self.fail_on is not None and (x[:, 0, 0, 0] == self.fail_on).any():
            raise RuntimeError("model failed")
        return x[:, 0, 0, :1].astype("float32")


def _images(*values):
    return np.stack([np.full((2, 2, 3), v, np.uint8) for v in values])


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_requests_arriving_together_share_a_batch_and_get_their_own_rows():
    model = SlowModel()

    async def main():
        batcher = MicroBatcher(model, max_batch=8, max_wait_s=0.0)
        batcher.start()
        first = asyncio.create_task(batcher.submit(_images(0)))
        await asyncio.sleep(0.01)  # the model is busy with the first request while ten more arrive
        rest = [asyncio.create_task(batcher.submit(_images(i, 100 + i))) for i in range(1, 11)]
        out = await asyncio.gather(first, *rest)
        await batcher.stop()
        return out

    out = _run(main())
    assert [o[:, 0].tolist() for o in out] == [[0]] + [[i, 100 + i] for i in range(1, 11)]
    assert model.calls[0] == 1 and sum(model.calls) == 21
    assert max(model.calls) >= 8 and len(model.calls) <= 4, model.calls  # 20 waiting images in <= 3 calls
    assert len(model.threads) == 1  # one inference thread


def test_a_lone_request_waits_at_most_max_wait():
    model = SlowModel(seconds=0.0)

    async def main():
        batcher = MicroBatcher(model, max_batch=32, max_wait_s=0.05)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit(_images(1))
        took = time.perf_counter() - start
        await batcher.stop()
        return took

    assert 0.04 < _run(main()) < 1.0
    assert model.calls == [1]


def test_overload_is_refused_and_a_failing_batch_fails_only_its_requests():
    model = SlowModel(fail_on=7)

    async def main():
        batcher = MicroBatcher(model, max_batch=2, max_wait_s=0.0, max_queue=4)
        batcher.start()
        busy = asyncio.create_task(batcher.submit(_images(1, 2, 3)))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="limit is 4"):
            await batcher.submit(_images(4, 5))
        assert (await busy)[:, 0].tolist() == [1, 2, 3]
        bad = asyncio.create_task(batcher.submit(_images(7)))
        with pytest.raises(RuntimeError, match="model failed"):
            await bad
        good = await batcher.submit(_images(8))  # the loop goes on after a failed batch
        await batcher.stop()
        return good

    assert _run(main())[:, 0].tolist() == [8]


def test_stop_answers_what_is_queued_first():
    model = SlowModel()

    async def main():
        batcher = MicroBatcher(model, max_batch=1, max_wait_s=0.0)
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit(_images(i))) for i in range(5)]
        await asyncio.sleep(0.01)
        await batcher.stop()
        assert not batcher.running
        return [t.result()[0, 0] for t in tasks]

    assert _run(main()) == [0, 1, 2, 3, 4]
