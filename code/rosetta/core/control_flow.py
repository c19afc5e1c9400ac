"""One small recurrence and its gradient in every framework's own loop construct.

The recurrence is :math:`h_{t+1} = \\tanh(h_t W + x_t)` over the rows of ``xs``, the
loss is the sum of the last state, and the gradient is d loss / d W. Two versions:

* the plain loop: every row of ``xs`` (its length is known only when the function is
  called);
* the early exit: the loop also stops after the first step whose state has a norm of at
  least ``limit``, a value computed inside the loop.

A :class:`Loop` may carry ``variants``: other ways to run the same loop (MXNet's
``imperative``, the same blocks not hybridized).

Each framework writes both with its own construct: a Python loop in PyTorch,
``tf.while_loop`` in TensorFlow, ``contrib.foreach`` and ``contrib.while_loop`` in a
hybridized MXNet block, ``theano.scan`` (with ``until``) in Theano, ``lax.scan`` and
``lax.while_loop`` in a jitted JAX function. Every builder
returns a :class:`Loop` whose ``run(xs, w, h0, limit)`` gives ``(loss, grad, steps)``
as float64 NumPy values, so that :func:`reference` can check them. The frameworks
are imported by the builders only, never when this module is imported.

``body_calls`` counts how often Python executed the loop's body: once per step in a
define-by-run framework, once per trace or compilation in a graph framework.
"""
from dataclasses import dataclass, field
import os
import time

import numpy as np

from rosetta.core import weights

HIDDEN = 16
STREAM = 20                      # weights.rng sub-stream of this problem
FRAMEWORKS = ("pytorch", "tensorflow", "mxnet", "theano")   # those that share the main environment
CONSTRUCTS = {"pytorch": "Python for loop (define-by-run)",
              "tensorflow": "tf.while_loop in a tf.function",
              "mxnet": "contrib.foreach / contrib.while_loop in a hybridized HybridBlock",
              "theano": "theano.scan (+ theano.scan.until)",
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


# ------------------------------------------------------------------ PyTorch

def pytorch_loop() -> Loop:
    import torch
    calls = [0]

    def run(xs, w, h0, limit=np.inf):
        w = torch.from_numpy(w).requires_grad_(True)
        h, steps = torch.from_numpy(h0), 0
        for x_t in torch.from_numpy(xs):          # Python's own loop, as long as the data
            calls[0] += 1
            h = torch.tanh(h @ w + x_t)
            steps += 1
            if h.norm() >= limit:                  # a Python `if` on a computed value
                break
        loss = h.sum()
        (grad,) = torch.autograd.grad(loss, w)
        return loss.item(), grad.numpy(), steps

    return Loop("pytorch", CONSTRUCTS["pytorch"], run, calls, 0.0, torch.__version__)


# --------------------------------------------------------------- TensorFlow

def tensorflow_loop() -> Loop:
    from rosetta.frameworks.tensorflow import tf
    calls = [0]
    f64 = tf.float64
    spec = [tf.TensorSpec([None, 1, None], f64), tf.TensorSpec([None, None], f64),
            tf.TensorSpec([1, None], f64), tf.TensorSpec([], f64)]

    @tf.function(input_signature=spec)             # one graph for every length
    def loss_and_grad(xs, w, h0, limit):
        def cond(t, h):
            return (t < tf.shape(xs)[0]) & (tf.norm(h) < limit)

        def body(t, h):
            calls[0] += 1                          # runs while tracing, not per step
            return t + 1, tf.tanh(h @ w + xs[t])

        with tf.GradientTape() as tape:
            tape.watch(w)
            steps, h = tf.while_loop(cond, body, (tf.constant(0), h0))
            loss = tf.reduce_sum(h)
        return loss, tape.gradient(loss, w), steps

    t0 = time.perf_counter()
    loss_and_grad.get_concrete_function()          # trace and build the graph now
    setup = time.perf_counter() - t0

    def run(xs, w, h0, limit=np.inf):
        loss, grad, steps = loss_and_grad(xs, w, h0, tf.constant(limit, f64))
        return float(loss), grad.numpy(), int(steps)

    run.traces = loss_and_grad.experimental_get_tracing_count
    return Loop("tensorflow", CONSTRUCTS["tensorflow"], run, calls, setup, tf.__version__)


# -------------------------------------------------------------------- MXNet

def mxnet_loop() -> Loop:
    from rosetta.frameworks import compat
    compat.numpy_aliases()
    import mxnet as mx
    from mxnet.gluon import HybridBlock
    calls = [0]

    class Recurrence(HybridBlock):
        """``contrib.foreach`` over every row: in a hybridized block it becomes one graph operator."""
        def hybrid_forward(self, F, xs, w, h0):
            def step(x_t, states):
                calls[0] += 1
                h = F.tanh(F.dot(states[0], w) + x_t)
                return h, [h]
            _, (h,) = F.contrib.foreach(step, xs, [h0])
            return F.sum(h)

    class EarlyExit(HybridBlock):
        """``contrib.while_loop``: needs a fixed ``max_iterations``; outputs are padded to it.

        Hybridized, MXNet 1.9.1 returns the right loss but a wrong gradient once the loop runs
        more than two steps (apache/mxnet#16701, #18575); run imperatively it is right. The
        ``imperative`` variant of the loop runs it that way.
        """
        def __init__(self, max_iterations, limit):
            super().__init__()
            self.max_iterations, self.limit = max_iterations, limit

        def hybrid_forward(self, F, xs, w, h0):
            def cond(t, h):
                return F.norm(h) < self.limit

            def body(t, h):
                calls[0] += 1
                x_t = F.squeeze(F.take(xs, t), axis=0)
                h = F.tanh(F.dot(h, w) + x_t)
                return h, [t + 1, h]
            _, (steps, h) = F.contrib.while_loop(cond, body, [F.zeros((1,), dtype="float64"), h0],
                                                 max_iterations=self.max_iterations)
            return F.sum(h), steps

    full = Recurrence()
    full.hybridize()
    nd = lambda a: mx.nd.array(a, dtype="float64")

    def run(xs, w, h0, limit=np.inf, hybridize=True):
        xs, w, h0 = nd(xs), nd(w), nd(h0)
        w.attach_grad()
        if np.isinf(limit):
            with mx.autograd.record():
                loss = full(xs, w, h0)
            steps = xs.shape[0]
        else:
            block = EarlyExit(xs.shape[0], float(limit))
            if hybridize:
                block.hybridize()
            with mx.autograd.record():
                loss, steps = block(xs, w, h0)
            steps = int(steps.asscalar())
        loss.backward()
        return float(loss.asscalar()), w.grad.asnumpy(), int(steps)

    t0 = time.perf_counter()
    run(*problem(0, 2), np.inf)                   # the first call builds the cached graph
    setup = time.perf_counter() - t0
    loop = Loop("mxnet", CONSTRUCTS["mxnet"], run, calls, setup, mx.__version__)
    loop.variants["imperative"] = lambda xs, w, h0, limit=np.inf: run(xs, w, h0, limit, hybridize=False)
    return loop


# ------------------------------------------------------------------- Theano

def theano_compatibility() -> list:
    """What Theano-PyMC 1.1.2's ``scan`` needs on Python 3.11 with today's setuptools.

    * ``pkg_resources`` (gone from setuptools 81) is imported by ``theano.gpuarray``, which
      ``scan`` imports: a stand-in with the two names it uses is put in its place;
    * the Cython inner loop of ``scan`` (``scan_perform``) was generated for older Pythons
      and does not compile on 3.11: marking it unavailable makes Theano use its own Python
      implementation of the loop (the loop's body is still compiled C).

    Returns what was changed. Call before ``theano.scan`` is first used.
    """
    from rosetta.frameworks import compat
    changed = compat.pkg_resources_stub(["DistributionNotFound", "get_distribution"])
    if compat.python_scan_loop():
        changed.append("scan_perform (Cython) disabled")
    return changed


def theano_loop() -> Loop:
    if "THEANO_FLAGS" not in os.environ:
        raise RuntimeError("THEANO_FLAGS is not set: call rosetta.frameworks.compat.theano_flags(<compile dir>) "
                           "before building the Theano loop (and before anything imports theano)")
    theano_compatibility()
    import logging
    logging.getLogger("theano.tensor.blas").setLevel(logging.ERROR)   # "NumPy C-API based BLAS": expected
    import theano
    import theano.tensor as T
    from theano.scan import until
    calls = [0]

    xs, w, h0 = T.tensor3("xs", dtype="float64"), T.matrix("w", dtype="float64"), T.matrix("h0", dtype="float64")
    limit = T.scalar("limit", dtype="float64")

    def step(x_t, h, w, limit):
        calls[0] += 1                              # runs once, while the graph is built
        h_next = T.tanh(T.dot(h, w) + x_t)
        return h_next, until(h_next.norm(2) >= limit)

    hs, _ = theano.scan(step, sequences=xs, outputs_info=h0, non_sequences=[w, limit])
    loss = hs[-1].sum()
    t0 = time.perf_counter()
    f = theano.function([xs, w, h0, limit], [loss, theano.grad(loss, w), hs.shape[0]])
    setup = time.perf_counter() - t0

    def run(xs, w, h0, limit=np.inf):
        loss, grad, steps = f(xs, w, h0, limit)
        return float(loss), np.asarray(grad), int(steps)

    return Loop("theano", CONSTRUCTS["theano"], run, calls, setup, theano.__version__)


# ---------------------------------------------------------------------- JAX

def jax_loop() -> Loop:
    """``lax.scan`` for the plain loop, ``lax.while_loop`` for the early exit, each in a jitted function.

    JAX differentiates ``lax.while_loop`` in forward mode only (reverse mode would need to store
    an unknown number of states), so the early exit's gradient is ``jax.jacfwd``: one tangent per
    element of ``w``, carried through the loop beside the state. Both compile once per length of
    ``xs`` (jit specializes on shapes). The ``python_loop`` variant is the loop as plain Python
    (a ``for`` and an ``if`` on a computed value), differentiated by ``jax.grad`` without jit.
    Runs in float64 (``jax.enable_x64``) whatever the process's setting.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax
    calls = [0]

    def step(h, w, x_t):
        calls[0] += 1                              # Python runs this once per trace (jit), per step (python_loop)
        return jnp.tanh(h @ w + x_t)

    @jax.jit
    def plain(xs, w, h0):
        def loss(w):
            h, _ = lax.scan(lambda h, x_t: (step(h, w, x_t), None), h0, xs)
            return h.sum()
        return jax.value_and_grad(loss)(w)

    @jax.jit
    def early_exit(xs, w, h0, limit):
        def loss(w):
            def cond(carry):
                t, h = carry
                return (t < xs.shape[0]) & (jnp.linalg.norm(h) < limit)

            def body(carry):
                t, h = carry
                return t + 1, step(h, w, xs[t])
            steps, h = lax.while_loop(cond, body, (0, h0))
            return h.sum(), (h.sum(), steps)
        grad, (value, steps) = jax.jacfwd(loss, has_aux=True)(w)
        return value, grad, steps

    def run(xs, w, h0, limit=np.inf):
        with jax.enable_x64(True):
            if np.isinf(limit):
                loss, grad = plain(xs, w, h0)
                steps = len(xs)
            else:
                loss, grad, steps = early_exit(xs, w, h0, limit)
            return float(loss), np.asarray(grad), int(steps)

    def python_loop(xs, w, h0, limit=np.inf):
        with jax.enable_x64(True):
            def loss(w):
                h, steps = jnp.asarray(h0), 0
                for x_t in xs:                         # Python's own loop, as long as the data
                    h = step(h, w, x_t)
                    steps += 1
                    if jnp.linalg.norm(h) >= limit:    # a Python `if` on a computed value
                        break
                return h.sum(), steps
            (value, steps), grad = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(w))
            return float(value), np.asarray(grad), int(steps)

    t0 = time.perf_counter()
    run(*problem(0, 2))                            # the first call traces and compiles (for this length)
    setup = time.perf_counter() - t0
    loop = Loop("jax", CONSTRUCTS["jax"], run, calls, setup, jax.__version__)
    loop.variants["python_loop"] = python_loop
    return loop


BUILDERS = {"pytorch": pytorch_loop, "tensorflow": tensorflow_loop, "mxnet": mxnet_loop, "theano": theano_loop,
            "jax": jax_loop}


def build(framework: str) -> Loop:
    if framework not in BUILDERS:
        raise ValueError(f"framework must be one of {tuple(BUILDERS)}, got {framework!r}")
    return BUILDERS[framework]()


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
    """Median and quartiles of one forward + backward call, in seconds, after one untimed call."""
    xs, w, h0 = problem(seed, steps)
    loop.run(xs, w, h0)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop.run(xs, w, h0)
        samples.append(time.perf_counter() - t0)
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return {"framework": loop.framework, "T": steps, "median_s": float(med), "q1_s": float(q1), "q3_s": float(q3)}
