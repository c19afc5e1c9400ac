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


def race(step, evaluate, data, cfg, probe, rates, what: str = "race", target: float = None) -> dict:
    """Train with a rate per step until test accuracy reaches ``target`` (the race to 99%).

    ``step(xb, yb, lr) -> loss`` is the chapter's step taking this step's learning rate;
    ``rates`` holds one rate per step of ``cfg.epochs`` epochs (:func:`rosetta.core.schedule.rates`).
    Accuracy is measured every :func:`~rosetta.core.schedule.eval_every` steps and after the
    last one, outside the timed steps, so the training seconds exclude evaluation. The run stops
    at the first measurement at or above ``target``. Returns the losses, the rates applied, the
    measurements (step, epochs, training seconds, accuracy) and, if reached, the training seconds
    and epochs it took.
    """
    from rosetta.core import schedule
    target = schedule.TARGET if target is None else float(target)
    x_train, y_train, x_test, y_test = data
    per_epoch = len(x_train) // cfg.batch_size
    rates = np.asarray(rates, np.float64)
    if len(rates) != per_epoch * cfg.epochs:
        raise ValueError(f"{what}: {len(rates)} learning rates for {per_epoch * cfg.epochs} steps "
                         f"({cfg.epochs} epochs of {per_epoch}); compute them with "
                         f"schedule.rates({per_epoch}, {cfg.epochs})")
    every = schedule.eval_every(per_epoch)
    losses, evals, reached = [], [], None
    with progress(len(rates), what) as bar:
        for epoch in range(cfg.epochs):
            for idx in weights.batch_indices(cfg.seed, epoch, len(x_train), cfg.batch_size):
                t = len(losses)
                with probe.step():
                    loss = step(x_train[idx], y_train[idx], float(rates[t]))
                losses.append(_finite(loss, t, what))
                bar.update()
                if (t + 1) % every == 0 or t + 1 == len(rates):
                    evals.append({"step": t + 1, "epochs": (t + 1) / per_epoch,
                                  "train_s": float(sum(probe.times)),
                                  "accuracy": float(evaluate(x_test, y_test))})
                    if evals[-1]["accuracy"] >= target:
                        reached = evals[-1]
                        break
            if reached:
                break
    return {"losses": losses, "rates": rates[:len(losses)].tolist(), "evals": evals,
            "target": target, "reached": reached is not None,
            "time_to_target_s": reached["train_s"] if reached else None,
            "epochs_to_target": reached["epochs"] if reached else None,
            "test_accuracy": evals[-1]["accuracy"]}


def race_extra(run: dict, seed: int, form: str, setting: str) -> dict:
    """The ``extra`` fields of a race record (what :mod:`rosetta.compare` reads back)."""
    from rosetta.core import schedule
    return {"seed": int(seed), "momentum_form": schedule.check_form(form), "setting": str(setting),
            **{k: run[k] for k in ("rates", "evals", "target", "reached", "time_to_target_s",
                                    "epochs_to_target")}}
