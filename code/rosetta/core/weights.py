"""Shared initial weights, data and batch order: one seeded NumPy draw for every framework.

Canonical layouts (each chapter converts to its framework's own):

* convolution kernels ``(out_channels, in_channels, height, width)`` (OIHW),
* dense kernels ``(inputs, outputs)``; biases are vectors,
* LeNet's flatten order is channel-major (C, H, W), as in NCHW frameworks.

Everything is a pure function of the seed, so two chapters (or two runs) that
pass the same seed get bit-identical arrays.
"""
import numpy as np

# The classic 2-layer problem
N, D_IN, H, D_OUT = 64, 1000, 100, 10

# LeNet: (name, shape) in canonical layout, in the order the layers are applied
LENET_SHAPES = (
    ("conv1_w", (20, 1, 5, 5)), ("conv1_b", (20,)),
    ("conv2_w", (50, 20, 5, 5)), ("conv2_b", (50,)),
    ("fc1_w", (800, 500)), ("fc1_b", (500,)),
    ("fc2_w", (500, 10)), ("fc2_b", (10,)),
)
LENET_FLATTEN = (50, 4, 4)  # (C, H, W) of conv2's pooled output


def rng(seed: int, *stream: int) -> np.random.Generator:
    """A generator for ``seed`` and a named sub-stream, independent of the others."""
    return np.random.default_rng([int(seed), *stream])


def two_layer(seed: int = 0):
    """``x, y, w1, w2`` of the 2-layer problem, float32, all drawn from N(0, 1).

    x: (N, D_in), y: (N, D_out), w1: (D_in, H), w2: (H, D_out).
    """
    g = rng(seed, 1)
    shapes = ((N, D_IN), (N, D_OUT), (D_IN, H), (H, D_OUT))
    return tuple(g.standard_normal(s).astype(np.float32) for s in shapes)


def glorot_limit(shape) -> float:
    """Glorot/Xavier uniform limit sqrt(6 / (fan_in + fan_out)) for a canonical shape."""
    if len(shape) == 4:  # OIHW
        receptive = shape[2] * shape[3]
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    else:  # (in, out)
        fan_in, fan_out = shape
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def lenet(seed: int = 0) -> dict:
    """LeNet's initial parameters: Glorot-uniform kernels, zero biases, float32."""
    g = rng(seed, 2)
    params = {}
    for name, shape in LENET_SHAPES:
        if name.endswith("_b"):
            params[name] = np.zeros(shape, np.float32)
        else:
            lim = glorot_limit(shape)
            params[name] = g.uniform(-lim, lim, size=shape).astype(np.float32)
    return params


def lenet_parameter_count() -> int:
    return sum(int(np.prod(s)) for _, s in LENET_SHAPES)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which the ``n`` training examples are visited in ``epoch``."""
    return rng(seed, 3, epoch).permutation(n)


def batch_indices(seed: int, epoch: int, n: int, batch_size: int):
    """Index arrays of the full batches of ``epoch`` (the last partial batch is dropped,
    so that every step has the same shape in every framework)."""
    order = epoch_order(seed, epoch, n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


# Layout conversions used by the channels-last frameworks

def oihw_to_hwio(kernel: np.ndarray) -> np.ndarray:
    """Convolution kernel from OIHW to HWIO (TensorFlow/Keras)."""
    return np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))


def chw_rows_to_hwc(dense: np.ndarray, chw=LENET_FLATTEN) -> np.ndarray:
    """Reorder a dense kernel's input rows from a (C, H, W) flatten to an (H, W, C) flatten,
    so that a channels-last network computes the same function."""
    c, h, w = chw
    return np.ascontiguousarray(dense.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(c * h * w, -1))
