"""Timing excludes warm-up and waits for the device; memory peaks belong to one run."""
import time

import numpy as np
import pytest

from rosetta.core import memory, timing


def test_warmup_is_reported_apart_and_sync_is_inside_the_step():
    synced = []

    def sync():
        time.sleep(0.002)
        synced.append(1)

    with timing.Probe(sync=sync, warmup=2) as probe:
        for i in range(8):
            with probe.step():
                time.sleep(0.05 if i == 0 else 0.001)
    s = probe.summary()["timing"]
    assert s["first_step_s"] >= 0.05 and s["n"] == 6
    assert 0.003 <= s["median_s"] < 0.02          # the sync's 2 ms counts in the step
    assert s["warmup_s"] >= s["first_step_s"] and len(s["samples_s"]) == 8
    assert s["q1_s"] <= s["median_s"] <= s["q3_s"]


def test_too_few_steps_is_an_error():
    with timing.Probe(warmup=5) as probe:
        with probe.step():
            pass
    with pytest.raises(ValueError, match="only 1 steps were timed"):
        probe.summary()


def test_peak_memory_of_one_run_does_not_count_in_the_next():
    with memory.Peak() as big:
        a = np.ones(300 * 2**20 // 8)  # 300 MiB
        del a
    with memory.Peak() as small:
        b = np.ones(20 * 2**20 // 8)   # 20 MiB
        del b
    assert big.result()["rss_increase_bytes"] > 250 * 2**20
    assert 15 * 2**20 < small.result()["rss_increase_bytes"] < 100 * 2**20
    assert small.result()["peak_isolated"]
