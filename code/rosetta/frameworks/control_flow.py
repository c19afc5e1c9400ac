"""The recurrence of :mod:`rosetta.core.control_flow` in each framework's own loop construct.

One builder per framework; each imports its framework when called and returns a
:class:`rosetta.core.control_flow.Loop` whose one-off cost (trace, hybridize, compile) is
typed. Each framework chapter builds its own loop here, checks it against the NumPy
reference and records it (:func:`rosetta.core.control_flow.save`); the comparison chapter
reads those records.
"""
import os
import time

import numpy as np

from rosetta.core import control_flow as cf


# ------------------------------------------------------------------ PyTorch

def pytorch_loop() -> cf.Loop:
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

    return cf.Loop("pytorch", cf.CONSTRUCTS["pytorch"], run, calls, 0.0, torch.__version__)


# --------------------------------------------------------------- TensorFlow

def tensorflow_loop() -> cf.Loop:
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
    return cf.Loop("tensorflow", cf.CONSTRUCTS["tensorflow"], run, calls, setup, tf.__version__, setup_kind="trace")


# -------------------------------------------------------------------- MXNet

def mxnet_loop() -> cf.Loop:
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
    run(*cf.problem(0, 2), np.inf)                # the first call builds the cached graph
    setup = time.perf_counter() - t0
    loop = cf.Loop("mxnet", cf.CONSTRUCTS["mxnet"], run, calls, setup, mx.__version__, setup_kind="hybridize")
    loop.variants["imperative"] = lambda xs, w, h0, limit=np.inf: run(xs, w, h0, limit, hybridize=False)
    return loop


# ------------------------------------------------------------------- Theano

def _scan_graph(scan, T, until, calls):
    """The recurrence as Theano's ``scan`` with ``until`` (PyTensor's is the same): the compiled
    function's inputs and outputs (loss, its gradient with respect to ``w``, the steps taken).
    ``scan`` returns the states only."""
    xs, w, h0 = T.tensor3("xs", dtype="float64"), T.matrix("w", dtype="float64"), T.matrix("h0", dtype="float64")
    limit = T.scalar("limit", dtype="float64")

    def step(x_t, h, w, limit):
        calls[0] += 1                              # runs once, while the graph is built
        h_next = T.tanh(T.dot(h, w) + x_t)
        return h_next, until(T.sqrt(T.sum(h_next ** 2)) >= limit)

    hs = scan(step, sequences=xs, outputs_info=h0, non_sequences=[w, limit])
    loss = hs[-1].sum()
    return [xs, w, h0, limit], [loss, T.grad(loss, w), hs.shape[0]]


def _scan_run(f):
    def run(xs, w, h0, limit=np.inf):
        loss, grad, steps = f(xs, w, h0, limit)
        return float(loss), np.asarray(grad), int(steps)
    return run


def theano_loop(cold: bool = True) -> cf.Loop:
    """``theano.scan`` with ``until``; ``cold`` compiles it into an empty compile cache (the cost a
    new machine pays), then gives the chapter its own cache back."""
    if "THEANO_FLAGS" not in os.environ:
        raise RuntimeError("THEANO_FLAGS is not set: call rosetta.frameworks.theano.setup(threads) "
                           "before building the Theano loop (and before anything imports theano)")
    from rosetta.frameworks import compat, theano as fw_theano
    compat.pkg_resources_stub()
    compat.python_scan_loop()
    import logging
    logging.getLogger("theano.tensor.blas").setLevel(logging.ERROR)   # "NumPy C-API based BLAS": expected
    import theano
    import theano.tensor as T
    from theano.scan import until
    calls = [0]
    inputs, outputs = _scan_graph(lambda *a, **k: theano.scan(*a, **k)[0], T, until, calls)
    if cold:
        fw_theano.fresh_compile_cache("recurrence")
    try:
        t0 = time.perf_counter()
        f = theano.function(inputs, outputs)
        setup = time.perf_counter() - t0
    finally:
        if cold:
            fw_theano.restore_compile_cache()
    return cf.Loop("theano", cf.CONSTRUCTS["theano"], _scan_run(f), calls, setup, theano.__version__,
                   setup_kind="compile_cold" if cold else "compile_warm")


# ----------------------------------------------------------------- PyTensor

def pytensor_loop(mode: str = "CVM") -> cf.Loop:
    """``pytensor.scan`` with ``until``, Theano's program, compiled in ``mode`` (``"CVM"``: C code
    run by PyTensor's C virtual machine, as Theano compiled it). The one-off cost is the compile and
    the first call; cold or warm by what it did to the build's compile cache
    (:func:`rosetta.frameworks.compile_timed`). Call ``rosetta.frameworks.pytensor.setup`` first."""
    if "PYTENSOR_FLAGS" not in os.environ:
        raise RuntimeError("PYTENSOR_FLAGS is not set: call rosetta.frameworks.pytensor.setup(threads) "
                           "before building the PyTensor loop (and before anything imports pytensor)")
    from rosetta.frameworks import compile_timed, pytensor as fw_pytensor
    import pytensor
    import pytensor.tensor as pt
    from pytensor.scan import until
    calls = [0]
    inputs, outputs = _scan_graph(lambda *a, **k: pytensor.scan(*a, return_updates=False, **k), pt, until, calls)

    def build():
        run = _scan_run(pytensor.function(inputs, outputs, mode=mode))
        run(*cf.problem(0, 2))                     # the first call finishes what the compile left
        return run
    run, setup, kind = compile_timed(build, fw_pytensor.compile_dir())
    return cf.Loop("pytensor", cf.CONSTRUCTS["pytensor"], run, calls, setup, pytensor.__version__, setup_kind=kind)


# ---------------------------------------------------------------------- JAX

def jax_loop() -> cf.Loop:
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
    run(*cf.problem(0, 2))                            # the first call traces and compiles (for this length)
    setup = time.perf_counter() - t0
    loop = cf.Loop("jax", cf.CONSTRUCTS["jax"], run, calls, setup, jax.__version__, setup_kind="compile_cold")
    loop.variants["python_loop"] = python_loop
    return loop


BUILDERS = {"pytorch": pytorch_loop, "tensorflow": tensorflow_loop, "mxnet": mxnet_loop, "theano": theano_loop,
            "pytensor": pytensor_loop, "jax": jax_loop}


def build(framework: str) -> cf.Loop:
    """The recurrence in ``framework``'s own loop construct, built (traced, hybridized, compiled)."""
    if framework not in BUILDERS:
        raise ValueError(f"framework must be one of {tuple(BUILDERS)}, got {framework!r}")
    return BUILDERS[framework]()


