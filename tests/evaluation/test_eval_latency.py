"""Latency figures from a fake model whose cost is known: 2 ms per call + 1 ms per image."""
import time

import numpy as np

from keras_birds.inference.latency import cpu_description, measure_latency


def test_latency_and_throughput_of_a_known_cost():
    calls = []

    def predict(images):
        calls.append(len(images))
        time.sleep(0.002 + 0.001 * len(images))
        return np.zeros((len(images), 3), "float32")

    images = np.zeros((5, 8, 8, 3), "uint8")
    lat = measure_latency(predict, images, runs=10, warmup=3, batch_size=8, throughput_seconds=0.1)
    assert calls[:13] == [1] * 13 and set(calls[13:]) == {8}  # warm-up, timed singles, then batches of 8
    assert 3.0 <= lat["latency_ms_b1_median"] <= lat["latency_ms_b1_p90"] < 50
    assert 20 < lat["throughput_img_s"] <= 8 / 0.010 * 1.05  # at most 8 images per 10 ms
    assert lat["latency_ms_b1_runs"] == 10 and lat["throughput_batch_size"] == 8


def test_no_runs_no_timing():
    lat = measure_latency(lambda x: 1 / 0, np.zeros((2, 8, 8, 3)), runs=0)
    assert lat["latency_ms_b1_median"] is None and lat["throughput_img_s"] is None


def test_cpu_description_names_cores():
    assert "core" in cpu_description()
