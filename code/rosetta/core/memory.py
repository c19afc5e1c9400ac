"""Peak memory of one measured run, kept apart from every other run.

On Linux the kernel keeps a high-water mark of the resident set (``VmHWM``);
writing ``5`` to ``/proc/self/clear_refs`` resets it. :class:`Peak` returns freed
memory to the system, resets the mark, notes the resident set, runs, and reads
the mark: the figure belongs to that run alone, not to whatever ran before in
the same process. GPU memory comes from the framework's own counter, passed in
as a ``(reset, read)`` pair by the chapter's ``rosetta.frameworks`` module.
"""
import ctypes
import gc
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str):
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes():
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


class Peak:
    """Context manager measuring the resident-set peak (and device peak) of its body."""

    def __init__(self, device=None):
        self.device = device
        self.baseline = self.peak = None
        self.isolated = False
        self.device_peak = None

    def __enter__(self):
        release_free_memory()
        self.isolated = reset_peak()
        self.baseline = rss_bytes()
        if self.device:
            self.device[0]()
        return self

    def __exit__(self, *exc):
        kib = _status_kib("VmHWM")
        self.peak = None if kib is None else kib * 1024
        if self.device:
            self.device_peak = int(self.device[1]())
        return False

    def result(self) -> dict:
        inc = None if None in (self.peak, self.baseline) else self.peak - self.baseline
        return {"peak_rss_bytes": self.peak, "baseline_rss_bytes": self.baseline,
                "rss_increase_bytes": inc, "peak_isolated": self.isolated,
                "device_peak_bytes": self.device_peak}
