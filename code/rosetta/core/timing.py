"""Step timing: the device waited for, warm-up reported on its own, median and spread.

Use one :class:`Probe` around a measured run::

    with timing.Probe(sync=fw.sync(device)) as probe:
        for xb, yb in batches:
            with probe.step():
                loss = train_step(xb, yb)
    stats = probe.summary()

Each step is timed from its start until ``sync()`` returns (the GPU has
finished). The first :data:`~rosetta.core.params.WARMUP_STEPS` steps (the first one
includes tracing/compiling) are reported apart and left out of the median.
The probe also measures peak memory (:mod:`rosetta.core.memory`) over the run.
"""
from contextlib import contextmanager
import time

import numpy as np

from rosetta.core import memory
from rosetta.core.params import WARMUP_STEPS


def stats(samples) -> dict:
    """Median, quartiles and extremes of a list of seconds."""
    a = np.asarray(samples, np.float64)
    if a.size == 0:
        raise ValueError("no timed steps left after warm-up: run more steps than the warm-up")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_s": float(med), "q1_s": float(q1), "q3_s": float(q3),
            "iqr_s": float(q3 - q1), "min_s": float(a.min()), "max_s": float(a.max()), "n": int(a.size)}


class Probe:
    """Times steps and measures peak memory over one measured run."""

    def __init__(self, sync=None, warmup: int = WARMUP_STEPS, device_memory=None):
        self.sync = sync or (lambda: None)
        self.warmup = warmup
        self.times = []
        self.memory = memory.Peak(device=device_memory)
        self.wall_s = None

    def __enter__(self):
        self.memory.__enter__()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.sync()
        self.wall_s = time.perf_counter() - self._t0
        self.memory.__exit__(*exc)
        return False

    @contextmanager
    def step(self):
        t0 = time.perf_counter()
        yield
        self.sync()
        self.times.append(time.perf_counter() - t0)

    def summary(self) -> dict:
        """Step-time statistics after warm-up, the warm-up's own cost, memory and wall time."""
        if len(self.times) <= self.warmup:
            raise ValueError(f"only {len(self.times)} steps were timed; need more than the "
                             f"{self.warmup} warm-up steps")
        out = {"first_step_s": self.times[0], "warmup_steps": self.warmup,
               "warmup_s": float(sum(self.times[:self.warmup])), **stats(self.times[self.warmup:]),
               "wall_s": self.wall_s, "samples_s": [float(t) for t in self.times]}
        return {"timing": out, "memory": self.memory.result()}


def level(a: dict, b: dict) -> bool:
    """Whether two timing summaries (``q1_s``, ``q3_s``, as :func:`stats` gives them) are level:
    their interquartile ranges overlap, so no difference between them was measured."""
    return bool(a["q1_s"] <= b["q3_s"] and b["q1_s"] <= a["q3_s"])


def time_call(fn, sync=None) -> float:
    """Seconds one call of ``fn`` takes (for one-off costs: compiling, tracing, hybridizing)."""
    t0 = time.perf_counter()
    fn()
    if sync:
        sync()
    return time.perf_counter() - t0
