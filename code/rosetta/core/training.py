"""The training loop every chapter shares; the framework-specific step is the chapter's.

A chapter writes ``step(xb, yb) -> loss`` (one SGD step on NumPy batch arrays,
in its framework's idiom) and ``evaluate(x, y) -> accuracy``; :func:`fit` feeds
both the shared batches in the shared order, times every step, and stops at
once if the loss stops being finite.
"""
import math
import os

import numpy as np

from rosetta.core import mnist, weights


class DivergedError(FloatingPointError):
    """The loss became NaN or infinite: the run is stopped and not recorded."""


def _finite(loss, step, what):
    loss = float(loss)
    if not math.isfinite(loss):
        raise DivergedError(f"{what}: loss is {loss} at step {step}; training diverged "
                            f"(learning rate too high?) and was stopped, nothing recorded")
    return loss


def repeat(step, n: int, probe, what: str = "run") -> list:
    """Call ``step()`` ``n`` times under ``probe``; returns the losses."""
    losses = []
    for t in range(n):
        with probe.step():
            loss = step()
        losses.append(_finite(loss, t, what))
    return losses


def mnist_data(cfg):
    """MNIST cut to the chapter's ``train_subset`` and ``test_subset`` (the first images of each set)."""
    x_train, y_train, x_test, y_test = mnist.load()
    return (x_train[:cfg.train_subset], y_train[:cfg.train_subset],
            x_test[:cfg.test_subset], y_test[:cfg.test_subset])


def parity_batches(x, y, cfg, steps: int):
    """The first ``steps`` batches of epoch 0, as (x, y) NumPy pairs (for the reference)."""
    idx = weights.batch_indices(cfg.seed, 0, len(x), cfg.batch_size)[:steps]
    return [(x[i], y[i]) for i in idx]


def float64_parity(step, batches, probe, what: str = "run") -> list:
    """Train over the parity ``batches`` with ``step(x, y)``, the images in float64; returns the losses.

    The float64 run of a chapter's own LeNet code: free of float32 rounding, it follows the float64
    reference to about 1e-15 when the program is the reference's program.
    """
    pending = iter([(np.asarray(x, np.float64), y) for x, y in batches])
    return repeat(lambda: step(*next(pending)), len(batches), probe, what)


def progress(total: int, what: str):
    """A progress bar for someone running a chapter by hand; none when the build runs it
    (the rendered book stays quiet, and the build prints its own progress per chapter)."""
    import warnings
    with warnings.catch_warnings():
        # in a kernel without ipywidgets, tqdm.auto warns once (into the rendered book) and uses text bars
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=what, leave=False, disable="ROSETTA_BUILD" in os.environ)


def fit(step, evaluate, data, cfg, probe, what: str = "run") -> dict:
    """Train for ``cfg.epochs`` epochs; returns losses, per-epoch test accuracy and training seconds."""
    x_train, y_train, x_test, y_test = data
    losses, accuracy, seconds = [], [], []
    per_epoch = len(x_train) // cfg.batch_size
    with progress(cfg.epochs * per_epoch, what) as bar:
        for epoch in range(cfg.epochs):
            for idx in weights.batch_indices(cfg.seed, epoch, len(x_train), cfg.batch_size):
                xb, yb = x_train[idx], y_train[idx]
                with probe.step():
                    loss = step(xb, yb)
                losses.append(_finite(loss, len(losses), what))
                bar.update()
            seconds.append(float(sum(probe.times)))
            accuracy.append(float(evaluate(x_test, y_test)))
    return {"losses": losses, "epoch_accuracy": accuracy, "epoch_end_train_s": seconds,
            "test_accuracy": accuracy[-1]}
