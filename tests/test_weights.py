"""Shared weights, data and batch order are pure functions of the seed."""
import numpy as np

from rosetta.core import weights


def test_two_layer_is_deterministic_and_seeded():
    a, b, c = weights.two_layer(0), weights.two_layer(0), weights.two_layer(1)
    assert [x.shape for x in a] == [(64, 1000), (64, 10), (1000, 100), (100, 10)]
    assert all(x.dtype == np.float32 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))


def test_lenet_weights_glorot_zero_bias_deterministic():
    p, q = weights.lenet(7), weights.lenet(7)
    assert list(p) == [n for n, _ in weights.LENET_SHAPES]
    assert weights.lenet_parameter_count() == 431080
    for name, shape in weights.LENET_SHAPES:
        assert p[name].shape == shape and p[name].dtype == np.float32
        assert np.array_equal(p[name], q[name])
        if name.endswith("_b"):
            assert not p[name].any()
        else:
            lim = weights.glorot_limit(shape)
            assert np.abs(p[name]).max() <= lim and np.abs(p[name]).max() > 0.9 * lim
    assert weights.glorot_limit((20, 1, 5, 5)) == np.sqrt(6 / (25 + 500))
    assert not np.array_equal(p["fc1_w"], weights.lenet(8)["fc1_w"])


def test_batch_order_is_a_seeded_permutation_per_epoch():
    e0, e0b, e1 = (weights.epoch_order(3, e, 1000) for e in (0, 0, 1))
    assert np.array_equal(e0, e0b) and not np.array_equal(e0, e1)
    assert sorted(e0.tolist()) == list(range(1000))
    batches = weights.batch_indices(3, 0, 1000, 64)
    assert len(batches) == 15 and all(len(b) == 64 for b in batches)
    assert np.array_equal(np.concatenate(batches), e0[:960])


def test_layout_conversions_compute_the_same_function():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((50, 20, 5, 5))
    hwio = weights.oihw_to_hwio(k)
    assert hwio.shape == (5, 5, 20, 50) and hwio[1, 2, 3, 4] == k[4, 3, 1, 2]
    act = rng.standard_normal((2, 50, 4, 4))            # N, C, H, W
    dense = rng.standard_normal((800, 500))
    nchw_out = act.reshape(2, -1) @ dense
    nhwc_out = act.transpose(0, 2, 3, 1).reshape(2, -1) @ weights.chw_rows_to_hwc(dense)
    assert np.allclose(nchw_out, nhwc_out)
