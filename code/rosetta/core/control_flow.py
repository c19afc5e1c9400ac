"""One small recurrence and its gradient in every framework's own loop construct.

The recurrence is :math:`h_{t+1} = \\tanh(h_t W + x_t)` over the rows of ``xs``, the
loss is the sum of the last state, and the gradient is d loss / d W. Two versions:

* the plain loop: every row of ``xs`` (its length is known only when the function is
  called);
* the early exit: the loop also stops after the first step whose state has a norm of at
  least ``limit``, a value computed inside the loop.

A :class:`Loop` may carry ``variants``: other ways to run the same loop (MXNet's
``imperative``, the same blocks not hybridized).

Each framework writes both with its own construct (:mod:`rosetta.frameworks.control_flow`):
a Python loop in PyTorch, ``tf.while_loop`` in TensorFlow, ``contrib.foreach`` and
``contrib.while_loop`` in a hybridized MXNet block, ``theano.scan`` (with ``until``) in
Theano (and, the same program, in PyTensor), ``lax.scan`` and ``lax.while_loop`` in a jitted JAX function. Every builder returns a :class:`Loop` whose ``run(xs, w, h0, limit)`` gives
``(loss, grad, steps)`` as float64 NumPy values, so that :func:`reference` can check them.
This module imports no framework: it holds the problem, the NumPy reference, the checks and
:func:`save`, which each framework chapter uses to record its loop (model ``recurrence``)
for the comparison chapter.

``body_calls`` counts how often Python executed the loop's body: once per step in a
define-by-run framework, once per trace or compilation in a graph framework.
"""
from dataclasses import dataclass, field

import numpy as np

from rosetta.core import records, timing, weights

HIDDEN = 16
STREAM = 20                      # weights.rng sub-stream of this problem
FRAMEWORKS = ("pytorch", "tensorflow", "mxnet", "theano")
CONSTRUCTS = {"pytorch": "Python for loop (define-by-run)",
              "tensorflow": "tf.while_loop in a tf.function",
              "mxnet": "contrib.foreach / contrib.while_loop in a hybridized HybridBlock",
              "theano": "theano.scan (+ theano.scan.until)",
              "pytensor": "pytensor.scan (+ pytensor.scan.until), compiled to C",
              "jax": "lax.scan / lax.while_loop in a jitted function"}


@dataclass
class Loop:
    """One framework's recurrence: ``run(xs, w, h0, limit) -> (loss, grad, steps)``."""
    framework: str
    construct: str
    run: object
    body_calls: list = field(default_factory=lambda: [0])
    setup_s: float = 0.0         # one-off cost paid before the first call (compilation)
    version: str = ""
    variants: dict = field(default_factory=dict)   # other ways to run the same loop, by name
    setup_kind: str = None       # what the one-off cost is: a kind of records.ONE_OFF_KINDS, None if none


def problem(seed: int, steps: int, hidden: int = HIDDEN):
    """``xs`` (steps, 1, hidden), ``w`` (hidden, hidden) and ``h0`` (1, hidden), float64, from the seed."""
    g = weights.rng(seed, STREAM, steps)
    xs = 0.5 * g.standard_normal((steps, 1, hidden))
    w = g.standard_normal((hidden, hidden)) / np.sqrt(hidden)
    return xs, w, np.zeros((1, hidden))


def early_exit_limit(xs, w, h0, quantile: float = 0.9) -> float:
    """A norm the state reaches part-way through the plain loop: the early exit's ``limit``.

    Halfway between two neighbouring state norms, around the given quantile of the norms of
    all steps but the last: some step before the last reaches it, so the early exit always
    stops before the plain loop would, and no norm lies so close to it that rounding (which
    differs between frameworks) could change the step where the loop stops. Needs at least
    three steps.
    """
    if len(xs) < 3:
        raise ValueError(f"the early exit needs at least 3 steps to stop early, got {len(xs)}")
    h, norms = h0, []
    for x_t in xs[:-1]:
        h = np.tanh(h @ w + x_t)
        norms.append(np.linalg.norm(h))
    norms = np.sort(norms)
    k = min(max(1, int(round(quantile * (len(norms) - 1)))), len(norms) - 1)
    return float((norms[k - 1] + norms[k]) / 2)


def reference(xs, w, h0, limit=np.inf):
    """NumPy: the loop forward, then back-propagation through time by hand."""
    hs = [h0]
    for x_t in xs:
        hs.append(np.tanh(hs[-1] @ w + x_t))
        if np.linalg.norm(hs[-1]) >= limit:
            break
    steps = len(hs) - 1
    grad, dh = np.zeros_like(w), np.ones_like(h0)
    for t in range(steps, 0, -1):
        da = dh * (1.0 - hs[t] ** 2)
        grad += hs[t - 1].T @ da
        dh = da @ w.T
    return float(hs[-1].sum()), grad, steps


LENGTHS = {True: (8, 32, 128), False: (8, 32, 128, 512)}    # by quick mode
REPEATS = {True: 5, False: 20}
TOLERANCE = 1e-9      # float64 throughout: anything above this is a wrong result, not rounding


def check(loop: Loop, seed: int, steps: int, limit=np.inf, variant: str = None) -> dict:
    """Run ``loop`` (or one of its ``variants``) once against the NumPy reference.

    Returns the step count of both, the loss, the relative deviations of the loss and of the
    gradient (largest element, relative to the gradient's largest element) and ``agrees``:
    same step count and both deviations within :data:`TOLERANCE`.
    """
    xs, w, h0 = problem(seed, steps)
    ref_loss, ref_grad, ref_steps = reference(xs, w, h0, limit)
    run = loop.variants[variant] if variant else loop.run
    loss, grad, ran = run(xs, w, h0, limit)
    loss_dev = abs(loss - ref_loss) / abs(ref_loss)
    grad_dev = float(np.abs(grad - ref_grad).max() / np.abs(ref_grad).max())
    return {"framework": loop.framework, "variant": variant or ("eager" if loop.framework == "pytorch" else "graph"),
            "T": steps, "limit": limit, "steps": ran, "reference steps": ref_steps, "loss": loss,
            "loss deviation": loss_dev, "gradient deviation": grad_dev,
            "agrees": bool(ran == ref_steps and loss_dev <= TOLERANCE and grad_dev <= TOLERANCE)}


def time_loop(loop: Loop, seed: int, steps: int, repeats: int) -> dict:
    """One forward + backward call, timed ``repeats`` times after one untimed call: the step-time summary.

    Returns the :meth:`rosetta.core.timing.Probe.summary` (first call apart as warm-up) with the
    framework and the length.
    """
    xs, w, h0 = problem(seed, steps)
    with timing.Probe(warmup=1) as probe:
        for _ in range(repeats + 1):
            with probe.step():
                loop.run(xs, w, h0)
    return {"framework": loop.framework, "T": steps, **probe.summary()}


def measure(loop: Loop, seed: int, lengths, repeats: int) -> dict:
    """Check ``loop`` against the reference at every length (plain loop, early exit, every variant),
    count how often Python ran its body while the built loop ran once per length, and time it."""
    checks = []
    for T in lengths:
        xs, w, h0 = problem(seed, T)
        limit = early_exit_limit(xs, w, h0)
        checks.append({"construct": "plain loop", **check(loop, seed, T)})
        for variant in [None, *loop.variants]:
            checks.append({"construct": "early exit", **check(loop, seed, T, limit, variant)})
    loop.body_calls[0] = 0
    for T in lengths:
        loop.run(*problem(seed, T))
    body_calls = loop.body_calls[0]
    timed = [time_loop(loop, seed, T, repeats) for T in lengths]
    return {"checks": checks, "body_calls": body_calls, "timed": timed, "lengths": list(lengths)}


def record(loop: Loop, recorder, seed: int, quick: bool):
    """:func:`measure` the loop at the book's lengths (fewer in quick mode) and :func:`save` it."""
    return save(recorder, loop, measure(loop, seed, LENGTHS[bool(quick)], REPEATS[bool(quick)]), seed)


def summary(rec):
    """A recurrence record's checks per variant and construct: largest deviations, all agree."""
    import pandas as pd
    checks = pd.DataFrame(rec["extra"]["checks"])
    table = checks.groupby(["variant", "construct"]).agg(
        lengths=("T", lambda t: ", ".join(str(v) for v in t)), loss_dev=("loss deviation", "max"),
        grad_dev=("gradient deviation", "max"), agrees=("agrees", "all")).reset_index()
    return table.rename(columns={"loss_dev": "max loss deviation", "grad_dev": "max gradient deviation"})


def sentence(rec) -> str:
    """What a recurrence record says, in one sentence for its chapter."""
    checks = rec["extra"]["checks"]
    good = [c for c in checks if c["agrees"]]
    worst = max((max(c["loss deviation"], c["gradient deviation"]) for c in good), default=float("nan"))
    bad = sorted({f"{c['construct']} ({c['variant']})" for c in checks if not c["agrees"]})
    cost = rec["one_off"][0] if rec["one_off"] else None
    return (f"{len(good)} of {len(checks)} checks agree with the NumPy reference within {TOLERANCE:.0e}"
            + (f" (largest deviation {worst:.1e})" if good else "")
            + (f"; wrong: {', '.join(bad)}" if bad else "")
            + (f". Building the loop ({records.ONE_OFF_WORDS[cost['kind']]}) took {cost['seconds']:.2g} s" if cost else "")
            + f"; at {rec['extra']['lengths'][-1]} steps a call takes {1e6 * rec['timing']['median_s']:.0f} µs.")


def save(recorder, loop: Loop, measured: dict, seed: int):
    """Write the loop's record (model ``recurrence``, variant ``loop``) with ``recorder``.

    Its losses are the plain loop's at every length, checked against the NumPy reference's
    within :data:`TOLERANCE` (a miss fails the chapter); its timing is the longest length's;
    ``extra`` holds every check, the timing per length and the body count; the build's one-off
    cost is typed (``one_off``).
    """
    on_cpu = records.Recorder(**{**recorder.common, "device": "cpu", "device_name": records.cpu_name()},
                              folder=recorder.folder)          # the loop runs on NumPy arrays, on the CPU
    plain = [c for c in measured["checks"] if c["construct"] == "plain loop"]
    ref = [reference(*problem(seed, c["T"]))[0] for c in plain]
    longest = measured["timed"][-1]
    timings = [{"framework": t["framework"], "T": t["T"], **{k: t["timing"][k] for k in ("median_s", "q1_s", "q3_s")}}
               for t in measured["timed"]]
    checks = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in c.items()}
              for c in measured["checks"]]
    rec = on_cpu.save(
        variant="loop", model="recurrence", losses=[c["loss"] for c in plain], reference=ref, tolerance=TOLERANCE,
        probe_summary={"timing": longest["timing"], "memory": longest["memory"]},
        extra={"construct": loop.construct, "lengths": measured["lengths"], "checks": checks, "timings": timings,
               "body_calls": measured["body_calls"], "dtype": "float64"},
        one_off=[("build the loop", loop.setup_kind, loop.setup_s)] if loop.setup_kind else [])
    recorder.saved.append(rec)
    return rec
