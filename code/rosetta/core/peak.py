"""The machine's single-precision matrix-multiply rate, measured where the book runs.

A square float32 product of size n costs 2 n^3 floating-point operations. Timing
it with the thread count pinned to the chapters' count gives the rate that a
framework could at best reach on this machine: the yardstick for "fraction of
peak". Two BLAS libraries are measured: NumPy's OpenBLAS and PyTorch's (oneDNN/MKL
on x86); the higher rate is the attainable peak.

NumPy's OpenBLAS takes its thread count from ``OPENBLAS_NUM_THREADS`` when it
loads; :func:`openblas_threads` also sets it at run time through OpenBLAS's own
``openblas_set_num_threads``, so the measurement is pinned even when NumPy was
imported before :func:`rosetta.core.threads.pin`.
"""
from contextlib import contextmanager
import ctypes
from pathlib import Path
import time

import numpy as np

SIZE = 1024
REPEATS = 7
BUILD = {True: (2048, 5), False: (3072, 9)}      # (size, repeats) of the build's yardstick, by quick mode


def _openblas():
    """NumPy's bundled OpenBLAS and its symbol suffix, or (None, '') where there is none."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libopenblas*.so*")) if libs.is_dir() else []:
        lib = ctypes.CDLL(str(path))
        for suffix in ("64_", ""):
            if hasattr(lib, f"openblas_set_num_threads{suffix}"):
                return lib, suffix
    return None, ""


@contextmanager
def openblas_threads(n: int):
    """Run NumPy's OpenBLAS with ``n`` threads inside the block (where it can be set)."""
    lib, suffix = _openblas()
    if lib is None:
        yield None
        return
    get = getattr(lib, f"openblas_get_num_threads{suffix}")
    put = getattr(lib, f"openblas_set_num_threads{suffix}")
    before = get()
    put(int(n))
    try:
        yield get()
    finally:
        put(before)


def _time_numpy(n, repeats, threads):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    seconds = []
    with openblas_threads(threads) as used:
        np.matmul(a, b, out=out)                       # warm-up: page in, start the threads
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            seconds.append(time.perf_counter() - t0)
    return seconds, used


def _time_torch(n, repeats, threads):
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=g) for _ in range(2))
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            seconds.append(time.perf_counter() - t0)
        return seconds, torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


BACKENDS = {"numpy": _time_numpy, "torch": _time_torch}


def matmul_rate(n: int = SIZE, repeats: int = REPEATS, threads: int = 1, backend: str = "numpy") -> dict:
    """Median GFLOP/s of an n x n float32 matrix product over ``repeats`` timed calls.

    Returns the rate, the median seconds, every sample, and the thread count the
    library reported while it ran (None where it cannot say).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    if n < 1 or repeats < 1 or threads < 1:
        raise ValueError(f"n, repeats and threads must be at least 1; got n={n}, repeats={repeats}, "
                         f"threads={threads}")
    seconds, used = BACKENDS[backend](int(n), int(repeats), int(threads))
    median = float(np.median(seconds))
    return {"backend": backend, "n": int(n), "threads": threads, "threads_used": used,
            "median_s": median, "samples_s": [float(s) for s in seconds],
            "gflops": 2.0 * n ** 3 / median / 1e9}


def machine_peak(threads: int, n: int = SIZE, repeats: int = REPEATS, backends=("numpy", "torch")) -> dict:
    """Every available backend's rate and the highest of them (``peak_gflops``)."""
    rates = []
    for backend in backends:
        try:
            rates.append(matmul_rate(n, repeats, threads, backend))
        except ImportError:
            continue
    if not rates:
        raise RuntimeError(f"none of the backends {backends} could be measured")
    best = max(rates, key=lambda r: r["gflops"])
    return {"peak_gflops": best["gflops"], "peak_backend": best["backend"], "rates": rates}


def save(machine: dict, recorder) -> list:
    """Keep :func:`machine_peak`'s rates as records (model ``matmul``, one per backend) of ``recorder``'s chapter.

    The framework is the backend's library (``numpy`` or ``pytorch``); the timing holds the
    timed products; there are no losses. The comparison chapter takes its yardstick from them.
    A recorder on a GPU whose ``accelerator`` carries the GPU's measured rates with their samples
    (``pytorch.gpu_matmul_rate``) also gets one record per precision on that GPU (device
    ``cuda``, variant the precision: ``float32``, ``tf32``): the yardstick of the runs on it.
    """
    from rosetta.core import records
    saved = []
    for rate in machine["rates"]:
        framework, version = ("numpy", np.__version__) if rate["backend"] == "numpy" else \
            ("pytorch", __import__("torch").__version__)
        saved.append(_save(recorder, rate["samples_s"], framework=framework, framework_version=version,
                           device="cpu", device_name=records.cpu_name(), accelerator=None, variant=rate["backend"],
                           extra={k: rate[k] for k in ("backend", "n", "threads_used", "gflops")}))
    acc = recorder.common.get("accelerator") or {}
    if recorder.common["device"] != "cpu" and acc.get("matmul_n") and acc.get("matmul_samples_s"):
        for precision, gflops in (acc.get("matmul_gflops") or {}).items():
            saved.append(_save(recorder, acc["matmul_samples_s"][precision], variant=precision,
                               extra={"backend": recorder.common["framework"], "precision": precision,
                                      "n": acc["matmul_n"], "threads_used": None, "gflops": gflops}))
    return saved


def _save(recorder, samples, *, variant, extra, **fields):
    from rosetta.core import records, timing
    probe_summary = {
        "timing": {"first_step_s": samples[0], "warmup_steps": 0, "warmup_s": 0.0, **timing.stats(samples),
                   "wall_s": float(sum(samples)), "samples_s": list(samples)},
        "memory": {"peak_rss_bytes": None, "baseline_rss_bytes": None, "rss_increase_bytes": None,
                   "peak_isolated": False, "device_peak_bytes": None}}
    rec = records.make(**{**recorder.common, **fields}, variant=variant, model="matmul", losses=[], reference=[],
                       tolerance=0.0, probe_summary=probe_summary, gates=False, extra=extra)
    records.write(rec, recorder.folder)
    recorder.saved.append(rec)
    return rec
