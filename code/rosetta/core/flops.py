"""Floating-point operations of the book's two networks, counted from their layer shapes.

Only the multiply-adds of the convolution and dense layers are counted: they are
what a matrix-multiply unit executes, and they are more than 99% of the work.
One multiply-add (MAC) is two floating-point operations (FLOPs). Bias additions,
ReLU, max-pooling and the softmax are left out (a few thousand operations per
image against millions).

Training a layer costs about three times its forward pass: the forward product,
the product that gives the weights' gradient, and the product that passes the
gradient on to the layer's input. The first layer needs no input gradient (the
images are not learned), so the exact count is a little below three times the
forward count; :func:`training_flops` returns the exact count and
:data:`TRAINING_FACTOR` the usual approximation.
"""
from rosetta.core.weights import D_IN, D_OUT, H, LENET_FLATTEN, LENET_SHAPES, N

INPUT_HW = (28, 28)    # MNIST images
POOL = 2               # LeNet's 2x2 max-pooling, stride 2
TRAINING_FACTOR = 3    # forward + weight gradient + input gradient


def lenet_layers(input_hw=INPUT_HW) -> list:
    """LeNet's convolution and dense layers with their output shapes and multiply-adds per image.

    Derived from :data:`rosetta.core.weights.LENET_SHAPES`: 'valid' convolutions with stride 1,
    each followed by 2x2 max-pooling.
    """
    shapes = dict(LENET_SHAPES)
    h, w = input_hw
    layers = []
    for name in ("conv1", "conv2"):
        out_c, in_c, kh, kw = shapes[f"{name}_w"]
        oh, ow = h - kh + 1, w - kw + 1
        layers.append({"layer": name, "kind": "convolution", "output": (out_c, oh, ow),
                       "macs": out_c * oh * ow * in_c * kh * kw})
        h, w = oh // POOL, ow // POOL
    flat = (out_c, h, w)
    if flat != tuple(LENET_FLATTEN):
        raise ValueError(f"input {input_hw} gives a {flat} feature map before the dense layers; "
                         f"LeNet's dense layers expect {tuple(LENET_FLATTEN)}")
    for name in ("fc1", "fc2"):
        n_in, n_out = shapes[f"{name}_w"]
        layers.append({"layer": name, "kind": "dense", "output": (n_out,), "macs": n_in * n_out})
    return layers


def forward_flops(layers=None) -> int:
    """FLOPs of one forward pass (per image for LeNet): 2 per multiply-add."""
    layers = lenet_layers() if layers is None else layers
    return 2 * sum(layer["macs"] for layer in layers)


def training_flops(layers=None) -> int:
    """FLOPs of one training step's forward and backward pass (per image for LeNet).

    Every layer pays its forward product and its weight-gradient product; every layer
    but the first also pays the product that passes the gradient to its input.
    """
    layers = lenet_layers() if layers is None else layers
    macs = [layer["macs"] for layer in layers]
    return 2 * (3 * sum(macs) - macs[0])


def two_layer_layers() -> list:
    """The 2-layer net's two matrix products for the whole batch of N rows (one step)."""
    return [{"layer": "w1", "kind": "dense", "output": (N, H), "macs": N * D_IN * H},
            {"layer": "w2", "kind": "dense", "output": (N, D_OUT), "macs": N * H * D_OUT}]


def lenet_table():
    """:func:`lenet_layers` as a DataFrame with FLOPs, for the reader."""
    import pandas as pd
    df = pd.DataFrame(lenet_layers())
    df["output"] = df["output"].map(lambda s: " x ".join(map(str, s)))
    df["forward MFLOP"] = 2 * df["macs"] / 1e6
    return df
