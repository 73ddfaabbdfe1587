"""Speed on the device it runs on: batch-1 latency (median, p90) and batched throughput.

Batch 1 is what a phone app does per photo; throughput is what a bulk job sees. Both are timed
after warm-up runs (first calls allocate buffers, pick kernels, fill caches), on the images given.
"""
from __future__ import annotations

import os
import platform
import time
from functools import lru_cache

import numpy as np

from keras_birds.cores import usable_cores


@lru_cache(maxsize=None)
def cpu_description() -> str:
    """e.g. 'Intel(R) Xeon(R) Platinum 8488C (2 of 32 cores usable)', from /proc/cpuinfo."""
    name, logical = None, 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "processor":
                    logical += 1
                elif key in ("model name", "Hardware", "cpu model") and not name:
                    name = value.strip()
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    logical = logical or os.cpu_count() or 1
    usable = usable_cores()
    cores = f"{logical} cores" if usable >= logical else f"{usable} of {logical} cores usable"
    return f"{name} ({cores})"


def torch_device() -> str:
    """The device Keras-on-torch runs on: the CUDA card's name, else the CPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA)"
        return f"{cpu_description()}, torch {torch.get_num_threads()} threads"
    except ImportError:
        return cpu_description()


def _time_calls(fn, n: int) -> np.ndarray:
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return times


def measure_latency(predict, images: np.ndarray, *, runs: int = 50, warmup: int = 5,
                    batch_size: int = 32, throughput_seconds: float | None = None) -> dict:
    """Time `predict` on real images.

    Batch 1: min(warmup, runs) untimed calls, then `runs` timed calls cycling over the images;
    median and p90 in ms. Throughput: one untimed batch of `batch_size` (images repeated if fewer),
    then batches until `throughput_seconds` have passed (at least one); images/s. The default
    duration is 2 s at 50 runs and scales with `runs`. runs=0 skips timing.
    """
    warmup = min(warmup, runs)
    if throughput_seconds is None:
        throughput_seconds = 2.0 * min(1.0, runs / 50)
    if runs <= 0 or len(images) == 0:
        return {"latency_ms_b1_median": None, "latency_ms_b1_p90": None, "latency_ms_b1_runs": 0,
                "throughput_img_s": None, "throughput_batch_size": None}
    singles = [images[i % len(images)][None] for i in range(max(runs, warmup))]
    for i in range(warmup):
        predict(singles[i])
    it = iter(range(runs))
    times = _time_calls(lambda: predict(singles[next(it)]), runs) * 1000.0
    batch = images[np.arange(batch_size) % len(images)]
    predict(batch)
    done, t0 = 0, time.perf_counter()
    while done < 1 or time.perf_counter() - t0 < throughput_seconds:
        predict(batch)
        done += 1
    elapsed = time.perf_counter() - t0
    return {
        "latency_ms_b1_median": round(float(np.median(times)), 3),
        "latency_ms_b1_p90": round(float(np.percentile(times, 90)), 3),
        "latency_ms_b1_runs": int(runs),
        "throughput_img_s": round(done * batch_size / elapsed, 2),
        "throughput_batch_size": int(batch_size),
    }


def interleaved_latency(predicts: dict, images: np.ndarray, *, runs: int = 50, block: int = 5) -> dict:
    """{name: median batch-1 ms} of several models timed in turns of `block` calls each.

    Load from other processes on a shared machine then hits every model alike, so their ratio
    (e.g. int8 vs fp32) is fair even where the absolute figures drift. Each turn starts with one
    untimed call: an app runs one model again and again, so its weights are warm in the cache
    (single interleaved calls measured int8/fp32 1.7x where runs of one model measure 2x).
    """
    if runs <= 0 or len(images) == 0 or not predicts:
        return {name: None for name in predicts}
    times = {name: [] for name in predicts}
    i = 0
    while len(next(iter(times.values()))) < runs:
        for name, predict in predicts.items():
            predict(images[i % len(images)][None])  # warm this model's weights
            for k in range(block):
                single = images[(i + k) % len(images)][None]
                t0 = time.perf_counter()
                predict(single)
                times[name].append(time.perf_counter() - t0)
        i += block
    return {name: round(float(np.median(t[:runs])) * 1000.0, 3) for name, t in times.items()}
