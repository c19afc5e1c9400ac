"""What the data does to the step time: MNIST batches against the inputs benchmarks often time.

Framework benchmarks often time a step on random tensors. :func:`batches` gives, for the same
number of steps and the same shapes, four streams of batches: the shuffled MNIST batches of
training, one MNIST batch repeated, random-normal images (with the MNIST batches' labels) and
MNIST images with random labels. A chapter times its own step on each, from the same weights,
with and without its framework's flush of denormal numbers to zero, and counts the denormal
numbers in one step's activations and gradients (:func:`subnormal_fraction`);
:func:`compare` says which streams changed the step time and whether flushing denormals
removed the difference.
"""
import numpy as np

from rosetta.core import weights

KINDS = {
    "mnist": "shuffled MNIST batches, as in training",
    "one_batch": "the first MNIST batch, repeated",
    "random_normal": "random-normal images, the MNIST batches' labels",
    "random_labels": "the MNIST batches' images, random labels",
}
SHORT = {"mnist": "shuffled MNIST", "one_batch": "one repeated MNIST batch",
         "random_normal": "random-normal images", "random_labels": "random labels"}
SAME = 0.10          # step times within 10% of MNIST's count as the same
TINY = float(np.finfo(np.float32).tiny)   # the smallest normal float32


def batches(kind: str, x, y, seed: int, batch_size: int, steps: int) -> list:
    """``steps`` (images, labels) batches of stream ``kind`` (:data:`KINDS`), in float32 and int64.

    The MNIST batches are epoch 0's (:func:`rosetta.core.weights.batch_indices`); the random
    images and labels come from a generator seeded with ``seed``, so every framework times the
    same numbers.
    """
    if kind not in KINDS:
        raise ValueError(f"data kind must be one of {list(KINDS)}, got {kind!r}")
    idx = weights.batch_indices(seed, 0, len(x), batch_size)
    if len(idx) < steps:
        raise ValueError(f"{steps} steps asked of {len(idx)} batches of {batch_size}: "
                         f"use more images or fewer steps")
    idx = idx[:1] * steps if kind == "one_batch" else idx[:steps]
    rng = weights.rng(seed, 18)
    out = []
    for i in idx:
        xb, yb = np.asarray(x[i], np.float32), np.asarray(y[i], np.int64)
        if kind == "random_normal":
            xb = rng.standard_normal(xb.shape).astype(np.float32)
        elif kind == "random_labels":
            yb = rng.integers(0, 10, len(yb)).astype(np.int64)
        out.append((xb, yb))
    return out


def subnormal_fraction(arrays) -> float:
    """The share of the non-zero float32 values in ``arrays`` that are denormal (below
    :data:`TINY` in magnitude): the numbers a CPU may handle in slow microcode."""
    values = np.concatenate([np.abs(np.asarray(a, np.float32)).ravel() for a in arrays])
    nonzero = values[values != 0]
    return float((nonzero < TINY).mean()) if nonzero.size else 0.0


def compare(ms: dict, flushed_ms: dict, subnormal: dict) -> dict:
    """Which streams changed the step time, and whether flushing denormals undid it.

    ``ms`` and ``flushed_ms`` map each kind to its median step (ms) without and with the flush,
    ``subnormal`` to its :func:`subnormal_fraction`. A stream's step differs when it is more
    than :data:`SAME` away from MNIST's; flushing explains it when the stream's step had denormal
    numbers and, flushed, it is within :data:`SAME` of flushed MNIST. Returns per kind the ratios
    and those verdicts.
    """
    missing = [k for k in KINDS if k not in ms or k not in flushed_ms or k not in subnormal]
    if missing:
        raise ValueError(f"compare needs every kind of {list(KINDS)}; missing {missing}")
    out = {}
    for k in KINDS:
        ratio, flushed = ms[k] / ms["mnist"], flushed_ms[k] / flushed_ms["mnist"]
        differs = abs(ratio - 1) > SAME
        out[k] = {"ratio": ratio, "flushed_ratio": flushed, "differs": differs,
                  "flush_explains": differs and subnormal[k] > 0 and abs(flushed - 1) <= SAME,
                  "subnormal": float(subnormal[k])}
    return out
