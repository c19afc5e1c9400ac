"""The NumPy reference every chapter is checked against, in float64.

The 2-layer net is the classic one: ``loss = sum((relu(x @ w1) @ w2 - y) ** 2)``
trained by plain SGD. LeNet is conv(20, 5x5) -> max-pool 2 -> conv(50, 5x5) ->
max-pool 2 -> dense 500 -> ReLU -> dense 10, with mean softmax cross-entropy,
trained by SGD with momentum in the form ``v = mu * v + g; w -= lr * v``
(frameworks that write ``v = mu * v - lr * g; w += v`` take the same steps for a
constant learning rate). Max-pooling sends the gradient to the first maximum of
each window in row-major order, as the frameworks do.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class ParityError(AssertionError):
    """A framework's losses left the reference's tolerance."""


# ---------------------------------------------------------------- 2-layer net

def two_layer_loss_and_grads(x, y, w1, w2):
    h = x @ w1
    h_relu = np.maximum(h, 0)
    y_pred = h_relu @ w2
    diff = y_pred - y
    loss = float(np.sum(diff ** 2))
    grad_y_pred = 2.0 * diff
    grad_w2 = h_relu.T @ grad_y_pred
    grad_h = (grad_y_pred @ w2.T) * (h > 0)
    grad_w1 = x.T @ grad_h
    return loss, grad_w1, grad_w2


def two_layer_losses(x, y, w1, w2, lr: float, steps: int) -> np.ndarray:
    """Loss at each of ``steps`` SGD steps (the loss of the forward pass before the update)."""
    x, y, w1, w2 = (np.asarray(a, np.float64).copy() for a in (x, y, w1, w2))
    losses = np.empty(steps)
    for t in range(steps):
        losses[t], g1, g2 = two_layer_loss_and_grads(x, y, w1, w2)
        w1 -= lr * g1
        w2 -= lr * g2
    return losses


# ---------------------------------------------------------------------- LeNet

def conv_forward(x, w, b):
    """Valid, stride-1 convolution (cross-correlation) of NCHW ``x`` with OIHW ``w``."""
    o, c, k, _ = w.shape
    n, _, hh, ww = x.shape
    ho, wo = hh - k + 1, ww - k + 1
    cols = sliding_window_view(x, (k, k), axis=(2, 3))  # N, C, Ho, Wo, k, k
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    out = cols @ w.reshape(o, -1).T + b
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2), cols


def conv_backward(dout, cols, x_shape, w, need_dx=True):
    o, c, k, _ = w.shape
    n, _, ho, wo = dout.shape
    dmat = dout.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (dmat.T @ cols).reshape(w.shape)
    db = dmat.sum(axis=0)
    if not need_dx:
        return None, dw, db
    dcols = (dmat @ w.reshape(o, -1)).reshape(n, ho, wo, c, k, k)
    dx = np.zeros(x_shape)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + ho, j:j + wo] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx, dw, db


def pool_forward(x):
    """2x2 max-pooling, stride 2; also returns which element of each window won."""
    n, c, hh, ww = x.shape
    win = x.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, hh // 2, ww // 2, 4)
    arg = win.argmax(axis=-1)
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def pool_backward(dout, arg):
    n, c, ho, wo = dout.shape
    dwin = np.zeros((n, c, ho, wo, 4))
    np.put_along_axis(dwin, arg[..., None], dout[..., None], axis=-1)
    return dwin.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * 2, wo * 2)


def lenet_logits(p, x):
    """Forward pass only (for accuracy); ``p`` in canonical layout."""
    a1, _ = conv_forward(x, p["conv1_w"], p["conv1_b"])
    p1, _ = pool_forward(a1)
    a2, _ = conv_forward(p1, p["conv2_w"], p["conv2_b"])
    p2, _ = pool_forward(a2)
    h = np.maximum(p2.reshape(len(x), -1) @ p["fc1_w"] + p["fc1_b"], 0)
    return h @ p["fc2_w"] + p["fc2_b"]


def lenet_loss_and_grads(p, x, y):
    """Mean softmax cross-entropy of a batch and its gradient for every parameter."""
    n = len(x)
    a1, cols1 = conv_forward(x, p["conv1_w"], p["conv1_b"])
    p1, arg1 = pool_forward(a1)
    a2, cols2 = conv_forward(p1, p["conv2_w"], p["conv2_b"])
    p2, arg2 = pool_forward(a2)
    flat = p2.reshape(n, -1)
    h_pre = flat @ p["fc1_w"] + p["fc1_b"]
    h = np.maximum(h_pre, 0)
    z = h @ p["fc2_w"] + p["fc2_b"]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(n), y].mean())

    dz = np.exp(logp)
    dz[np.arange(n), y] -= 1.0
    dz /= n
    g = {"fc2_w": h.T @ dz, "fc2_b": dz.sum(0)}
    dh = (dz @ p["fc2_w"].T) * (h_pre > 0)
    g["fc1_w"], g["fc1_b"] = flat.T @ dh, dh.sum(0)
    dp2 = (dh @ p["fc1_w"].T).reshape(p2.shape)
    da2 = pool_backward(dp2, arg2)
    dp1, g["conv2_w"], g["conv2_b"] = conv_backward(da2, cols2, p1.shape, p["conv2_w"])
    da1 = pool_backward(dp1, arg1)
    _, g["conv1_w"], g["conv1_b"] = conv_backward(da1, cols1, x.shape, p["conv1_w"], need_dx=False)
    return loss, g


def _lenet_training(params: dict, batches, lr, momentum: float, form: str = "pytorch"):
    """SGD-momentum over ``batches``; yields (weights before the step, images, loss) at each step.

    ``lr`` is one rate for every step or a sequence with one rate per step; ``form`` is the
    momentum form (:data:`rosetta.core.schedule.MOMENTUM_FORMS`), which matters only when the
    rate changes.
    """
    from rosetta.core.schedule import check_form
    check_form(form)
    batches = list(batches)
    lrs = np.broadcast_to(np.asarray(lr, np.float64), (len(batches),)) if np.ndim(lr) == 0 else \
        np.asarray(lr, np.float64)
    if len(lrs) < len(batches):
        raise ValueError(f"{len(lrs)} learning rates for {len(batches)} steps")
    p = {k: np.asarray(v, np.float64).copy() for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    for (xb, yb), rate in zip(batches, lrs):
        x = np.asarray(xb, np.float64)
        loss, g = lenet_loss_and_grads(p, x, np.asarray(yb))
        yield p, x, loss
        for k in p:
            if form == "pytorch":
                vel[k] = momentum * vel[k] + g[k]
                p[k] -= rate * vel[k]
            else:
                vel[k] = momentum * vel[k] - rate * g[k]
                p[k] += vel[k]


def lenet_losses(params: dict, batches, lr, momentum: float, form: str = "pytorch") -> np.ndarray:
    """Per-step losses of SGD-momentum over ``batches`` (an iterable of (x, y)).

    ``lr`` and ``form`` as in the training loop: a rate per step (the race's schedule) and the
    momentum form of the framework compared.
    """
    return np.array([loss for _, _, loss in _lenet_training(params, batches, lr, momentum, form)])


def _pool_gap(a):
    """The smallest non-zero gap between the largest and second-largest value of any pooling window."""
    n, c, hh, ww = a.shape
    win = np.sort(a.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    gap = win[:, -1] - win[:, -2]
    gap = gap[gap > 0]
    return float(gap.min()) if gap.size else float("inf")


def lenet_margins(params: dict, batches, lr, momentum: float, form: str = "pytorch") -> dict:
    """How close the reference's decisions come to their thresholds, at each step of its training.

    A ReLU decides by the sign of its input and a max-pooling window by which element is largest;
    where the reference's value lies within float32 rounding of the threshold, a float32 run may
    decide the other way and take a different gradient from there on. Per step: the smallest
    ``|input|`` of the fc1 ReLU and the smallest non-zero gap between a window's two largest
    values after each convolution (exact ties are decided the same way in every precision).
    """
    out = {"relu": [], "pool1": [], "pool2": []}
    for p, x, _ in _lenet_training(params, batches, lr, momentum, form):
        a1, _ = conv_forward(x, p["conv1_w"], p["conv1_b"])
        p1, _ = pool_forward(a1)
        a2, _ = conv_forward(p1, p["conv2_w"], p["conv2_b"])
        p2, _ = pool_forward(a2)
        h_pre = p2.reshape(len(x), -1) @ p["fc1_w"] + p["fc1_b"]
        out["relu"].append(float(np.abs(h_pre).min()))
        out["pool1"].append(_pool_gap(a1))
        out["pool2"].append(_pool_gap(a2))
    return {k: np.array(v) for k, v in out.items()}


# A decision of the model (the sign of an fc1 ReLU input) closer than this to its threshold can go
# either way in float32: the Theano chapter traces a float32 run's departure to one at 1e-7.
FLOAT32_DECISION = 1e-6


def decided_steps(relu_margins, steps: int) -> int:
    """How many of the first ``steps`` steps two float32 runs of one program can be held equal over.

    ``relu_margins`` is :func:`lenet_margins`'s ``relu`` row for the same batches. Up to the first
    step whose decision lies within float32 rounding of its threshold (that step included, whose
    loss comes before its update), runs that differ only in the order of their additions agree to
    rounding; after it, one may take the other branch and drift away.
    """
    close = [i for i, m in enumerate(relu_margins[:steps]) if m < FLOAT32_DECISION]
    return close[0] + 1 if close else steps


def float64_remainder(losses, params: dict, batches, lr: float, momentum: float) -> dict:
    """What separates a framework's float64 LeNet run from the reference, in words and numbers.

    Some frameworks apply the learning rate (or also the momentum) as a 32-bit float even to
    float64 weights. The reference is run again with those rounded to float32; if one of these
    runs matches ``losses`` a thousand times better than the exact one, that rounding is the
    difference, else what remains is the order of floating-point sums.
    """
    f32 = lambda v: float(np.float32(v))
    cases = [("as given", lr, momentum),
             ("with the learning rate rounded to float32", f32(lr), momentum),
             ("with the learning rate and momentum rounded to float32", f32(lr), f32(momentum))]
    devs = {what: max_rel_dev(losses, lenet_losses(params, batches, a, b)) for what, a, b in cases}
    best = min(devs, key=devs.get)
    if best != "as given" and devs[best] < 1e-3 * devs["as given"]:
        text = (f"Against the reference run {best}, it agrees to {devs[best]:.1e}: the framework rounds "
                "those hyper-parameters to float32 even for float64 weights, and that rounding is the whole "
                "difference.")
    else:
        text = "What remains is the order of floating-point sums, not the program."
    return {"deviations": devs, "cause": best, "text": text}


# --------------------------------------------------------------------- parity

def max_rel_dev(losses, ref) -> float:
    """Largest relative deviation ``|loss - ref| / |ref|`` over the common steps."""
    losses, ref = np.asarray(losses, np.float64), np.asarray(ref, np.float64)
    if losses.shape != ref.shape:
        raise ParityError(f"the run has {losses.shape} losses but the reference has {ref.shape}")
    if not np.all(np.isfinite(losses)):
        raise ParityError(f"non-finite loss at step {int(np.argmin(np.isfinite(losses)))}")
    return float(np.max(np.abs(losses - ref) / np.abs(ref)))


def check(losses, ref, tol: float, what: str = "run") -> float:
    """Raise :class:`ParityError` if ``losses`` deviate from ``ref`` by more than ``tol`` (relative)."""
    dev = max_rel_dev(losses, ref)
    if not dev <= tol:
        step = int(np.argmax(np.abs(np.asarray(losses) - ref) / np.abs(ref)))
        raise ParityError(f"{what}: losses deviate from the NumPy reference by {dev:.3g} (relative) at "
                          f"step {step}, more than the tolerance {tol:g}")
    return dev
