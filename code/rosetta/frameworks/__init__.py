"""One module per framework (``pytorch``, ``tensorflow``, ``mxnet``, ``theano``, ``pytensor``,
``jax``, ``keras``, ``lasagne``): what a chapter needs beyond the framework itself (threads, device,
synchronisation, memory counters). ``compat`` holds the shims that let the retired frameworks
import today; ``worker`` runs a chapter's program in another environment. Each module is
imported only by the chapter that needs it.

Every framework module (pytorch, tensorflow, mxnet, theano, pytensor, jax) has the same small interface;
``keras`` has ``setup`` only (its backends run in processes of their own), ``lasagne`` none of it
(it runs on Theano, on the CPU)::

    setup(threads, *, ...)   # before the framework's first operation: its thread pools (and, by
                             # keyword, its own start-up options); returns what it set
    resolve_device(device)   # the chapter's 'auto' / 'cpu' / 'cuda' -> the framework's device;
                             # ParameterError where the framework cannot run there
    device_type(device)      # 'cpu' or 'cuda', as records name devices
    device_name(device)      # the processor's name, for records
    sync(device)             # wait(value=None): waits until ``device`` has finished its queued
                             # work (and ``value`` is computed), returns ``value``; a
                             # timing.Probe(sync=...) calls it after every step
    device_memory(device)    # (reset, read) of the device's peak-memory counter, for
                             # timing.Probe(device_memory=...); None where there is none

This package's ``__init__`` imports nothing (the CNTK environment imports :mod:`.worker` on
Python 3.6).
"""
INTERFACE = ("setup", "resolve_device", "device_type", "device_name", "sync", "device_memory")


def no_wait(value=None):
    """The ``sync`` of a device whose work is done when a call returns: nothing to wait for."""
    return value


def waiting_on(block):
    """The ``sync`` that calls ``block()`` (the framework's own wait) before it returns ``value``."""
    def wait(value=None):
        block()
        return value
    return wait


def compile_timed(build, cache):
    """Call ``build()`` (a compilation) and time it; returns ``(result, seconds, kind)``, ``kind`` the
    one-off cost's kind by what the compilation did to its compile cache folder ``cache``:
    ``"compile_cold"`` where it wrote new files there (it compiled code that no earlier run had
    left), ``"compile_warm"`` where it found everything it needed (records.ONE_OFF_KINDS).
    ``cache=None`` is a compiler that keeps nothing between runs: always ``"compile_cold"``."""
    import time
    from pathlib import Path

    def files():
        return {p for p in Path(cache).rglob("*") if p.is_file()} if cache and Path(cache).is_dir() else set()
    before = files()
    t0 = time.perf_counter()
    result = build()
    seconds = time.perf_counter() - t0
    return result, seconds, "compile_cold" if cache is None or files() - before else "compile_warm"
