"""The input pipeline, measured: a framework's own loader against NumPy batches in the same order.

A loader helps when preparing a batch costs time that it can hide behind the step (worker
processes that prepare the next batch while this one trains). Whether that pays depends on
how long a batch takes to prepare next to the step, and on whether there is a free core for
the workers. A chapter times one epoch of the same batches fed each way, feeding included, and
:func:`compare` turns the times into a verdict per loader.
"""
SAME = 0.05      # within 5% of NumPy's time per step: no difference


def compare(numpy_s: float, loaders: dict, prepare_s: float) -> dict:
    """Per loader: its time per step (feeding included) against NumPy batches', and a verdict.

    ``numpy_s`` and ``loaders`` (name -> seconds) are seconds per step over the same batches,
    ``prepare_s`` the median time NumPy takes to gather one batch: the most a loader could hide.
    A loader "helps" when it is more than :data:`SAME` faster than NumPy batches, "costs" when
    more than :data:`SAME` slower, and makes "no difference" otherwise.
    """
    if not numpy_s > 0 or any(not s > 0 for s in loaders.values()):
        raise ValueError(f"times per step must be positive, got NumPy {numpy_s} and {loaders}")
    out = {"numpy_s": numpy_s, "prepare_s": prepare_s, "prepare_share": prepare_s / numpy_s,
           "loaders": {}}
    for name, s in loaders.items():
        ratio = s / numpy_s
        verdict = "helps" if ratio < 1 - SAME else "costs" if ratio > 1 + SAME else "no difference"
        out["loaders"][name] = {"s": s, "ratio": ratio, "verdict": verdict}
    return out
