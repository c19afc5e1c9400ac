"""Default and tuned: which of a chapter's LeNet settings shows its framework at its best.

A chapter measures its framework's settings (compilers, layouts, memory planning, BLAS) as float32
LeNet runs from the same weights over the same batches. Its *default* is what a new user gets
without changing anything; its *tuned* setting is the fastest one whose run passes the same
parity check as the default: within the tolerance of the reference over the steps that a float32
run can follow it (the steps before the first decision within float32 rounding of its
threshold, :func:`rosetta.core.reference.decided_steps`).
"""
import numpy as np


class TuningError(ValueError):
    """No setting a chapter measured can be chosen."""


def held_steps(rec, steps: int = None) -> float:
    """The largest relative deviation of ``rec`` from the reference over its first ``steps`` checked steps."""
    dev = np.asarray(rec["parity"]["rel_dev"], np.float64)
    dev = dev[:steps] if steps else dev
    return float(dev.max()) if dev.size else 0.0


def qualifies(rec, steps: int = None) -> bool:
    """Whether ``rec``'s losses stay within its tolerance over the first ``steps`` checked steps."""
    return held_steps(rec, steps) <= rec["parity"]["tolerance"]


def choose(recs, steps: int = None) -> dict:
    """The fastest record (median step) among ``recs`` that :func:`qualifies`."""
    recs = list(recs)
    if not recs:
        raise TuningError("no settings were measured: pass the records of the chapter's LeNet settings")
    ok = [r for r in recs if qualifies(r, steps)]
    if not ok:
        worst = ", ".join(f"{r['variant']} {held_steps(r, steps):.1e}" for r in recs)
        raise TuningError(f"no setting kept parity over the first {steps or 'checked'} steps ({worst}); "
                          f"a setting that changes the numbers cannot be the tuned one")
    return min(ok, key=lambda r: r["timing"]["median_s"])


def summary(default: dict, tuned: dict, candidates=None) -> dict:
    """Default and tuned median step, how many times faster the tuned setting is and, given the
    ``candidates`` the tuned one was chosen among, how many settings were measured (``measured``:
    one means the default was the only one, and "kept its default" compares nothing)."""
    d, t = default["timing"]["median_s"], tuned["timing"]["median_s"]
    out = {"default": default["variant"], "tuned": tuned["variant"], "default_ms": 1e3 * d,
           "tuned_ms": 1e3 * t, "speedup": d / t}
    if candidates is not None:
        out["measured"] = len(list(candidates))
    return out
