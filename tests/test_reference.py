"""The NumPy reference: gradients match finite differences; training reduces the loss."""
import numpy as np
import pytest

from rosetta.core import reference as R, weights


def numeric_grad(f, arr, idx, eps=1e-6):
    old = arr[idx]
    arr[idx] = old + eps
    plus = f()
    arr[idx] = old - eps
    minus = f()
    arr[idx] = old
    return (plus - minus) / (2 * eps)


def test_two_layer_gradients_match_finite_differences():
    x, y, w1, w2 = (a.astype(np.float64)[:8] if a.shape[0] == 64 else a.astype(np.float64)
                    for a in weights.two_layer(0))
    _, g1, g2 = R.two_layer_loss_and_grads(x, y, w1, w2)
    rng = np.random.default_rng(0)
    for w, g in ((w1, g1), (w2, g2)):
        for _ in range(5):
            idx = tuple(rng.integers(0, s) for s in w.shape)
            num = numeric_grad(lambda: R.two_layer_loss_and_grads(x, y, w1, w2)[0], w, idx, 1e-4)
            assert num == pytest.approx(g[idx], rel=1e-5, abs=1e-3)


def test_lenet_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    p = {k: v.astype(np.float64) for k, v in weights.lenet(0).items()}
    for k in p:  # non-zero biases so their gradients are tested in general position
        if k.endswith("_b"):
            p[k] = 0.1 * rng.standard_normal(p[k].shape)
    x = rng.standard_normal((3, 1, 28, 28))
    y = np.array([1, 7, 3])
    _, g = R.lenet_loss_and_grads(p, x, y)
    for name in p:
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in p[name].shape)
            num = numeric_grad(lambda: R.lenet_loss_and_grads(p, x, y)[0], p[name], idx)
            assert num == pytest.approx(g[name][idx], rel=1e-4, abs=1e-8), name


def test_max_pool_routes_ties_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    out, arg = R.pool_forward(x)
    assert out.item() == 0 and arg.item() == 0
    back = R.pool_backward(np.ones((1, 1, 1, 1)), arg)
    assert back.tolist() == [[[[1, 0], [0, 0]]]]


def test_two_layer_training_reduces_the_loss():
    losses = R.two_layer_losses(*weights.two_layer(0), lr=1e-6, steps=50)
    assert losses[-1] < 1e-2 * losses[0]


def test_parity_check_has_teeth():
    ref = np.array([2.0, 1.0, 0.5])
    assert R.check(ref * (1 + 5e-5), ref, 1e-4) < 1e-4
    with pytest.raises(R.ParityError, match="deviate .* at step 2"):
        R.check(ref * np.array([1, 1, 1.01]), ref, 1e-4)
    with pytest.raises(R.ParityError, match="non-finite loss at step 1"):
        R.check([2.0, np.nan, 0.5], ref, 1e-4)


def test_lenet_margins_measure_how_close_each_decision_is():
    """The margins are those of the reference's own training: at step 0 they follow from the initial
    weights; an exact tie in a pooling window is no margin (every precision decides it alike)."""
    rng = np.random.default_rng(2)
    p = weights.lenet(0)
    x = rng.random((4, 1, 28, 28)).astype(np.float32)
    x[:, :, :8, :8] = 0                        # blank corner: conv1 windows there tie exactly
    y = np.array([0, 1, 2, 3])
    m = R.lenet_margins(p, [(x, y), (x, y)], lr=0.01, momentum=0.9)
    assert set(m) == {"relu", "pool1", "pool2"} and all(len(v) == 2 for v in m.values())
    q = {k: v.astype(np.float64) for k, v in p.items()}
    a1, _ = R.conv_forward(x.astype(np.float64), q["conv1_w"], q["conv1_b"])
    p1, _ = R.pool_forward(a1)
    a2, _ = R.conv_forward(p1, q["conv2_w"], q["conv2_b"])
    p2, _ = R.pool_forward(a2)
    h_pre = p2.reshape(4, -1) @ q["fc1_w"] + q["fc1_b"]
    assert m["relu"][0] == pytest.approx(np.abs(h_pre).min(), rel=1e-12)
    win = np.sort(a1.reshape(4, 20, 12, 2, 12, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    gaps = win[:, -1] - win[:, -2]
    assert (gaps == 0).any() and m["pool1"][0] > 0
    assert m["pool1"][0] == pytest.approx(gaps[gaps > 0].min(), rel=1e-12)
    assert m["relu"][1] != m["relu"][0]        # the second step is taken from the updated weights


def test_float64_remainder_names_float32_hyperparameters_when_they_explain_it():
    rng = np.random.default_rng(3)
    p = weights.lenet(0)
    batches = [(rng.random((4, 1, 28, 28)), rng.integers(0, 10, 4)) for _ in range(3)]
    f32 = lambda v: float(np.float32(v))
    exact = R.lenet_losses(p, batches, 0.01, 0.9)
    rounded = R.lenet_losses(p, batches, f32(0.01), f32(0.9))
    assert R.max_rel_dev(rounded, exact) > 1e-11              # the rounding shows over three steps
    r = R.float64_remainder(rounded, p, batches, 0.01, 0.9)
    assert r["cause"] == "with the learning rate and momentum rounded to float32"
    assert r["deviations"][r["cause"]] == 0.0 and "rounds those hyper-parameters" in r["text"]
    r = R.float64_remainder(exact, p, batches, 0.01, 0.9)
    assert r["cause"] == "as given" and r["text"].startswith("What remains is the order")
