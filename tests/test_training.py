"""The shared training loop: same batches in the same order, and a diverging run stops at once."""
import numpy as np
import pytest

from rosetta.core import params, timing, training, weights


def small_data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1280, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 1280),
            rng.standard_normal((100, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 100))


def test_fit_feeds_the_shared_batches_in_order_and_evaluates_each_epoch():
    cfg = params.resolve(epochs=2, train_subset=1280, threads=1)
    data = small_data()
    seen = []

    def step(xb, yb):
        seen.append(xb[:, 0, 0, 0].copy())
        return 1.0 / len(seen)

    with timing.Probe(warmup=1) as probe:
        run = training.fit(step, lambda x, y: 0.5, data, cfg, probe)
    expected = [data[0][i][:, 0, 0, 0] for e in range(2) for i in weights.batch_indices(0, e, 1280, 64)]
    assert len(seen) == len(expected) == 40 and all(np.array_equal(a, b) for a, b in zip(seen, expected))
    assert run["epoch_accuracy"] == [0.5, 0.5] and len(run["losses"]) == 40
    assert run["epoch_end_train_s"][0] <= run["epoch_end_train_s"][1]


def test_diverging_run_stops_at_the_first_bad_loss():
    cfg = params.resolve(epochs=3, train_subset=1280, threads=1)
    calls = []

    def exploding(xb, yb):
        calls.append(1)
        return 10.0 ** (40 * len(calls)) if len(calls) < 7 else float("inf")

    with timing.Probe(warmup=1) as probe:
        with pytest.raises(training.DivergedError, match="loss is inf at step 6; training diverged"):
            training.fit(exploding, lambda x, y: 0.0, small_data(), cfg, probe, "test run")
    assert len(calls) == 7


def test_float64_parity_feeds_float64_images_in_order():
    seen = []

    def step(x, y):
        seen.append((x.dtype, int(y[0])))
        return float(len(seen))

    batches = [(np.full((2, 1, 28, 28), i, np.float32), np.array([i, i])) for i in range(7)]
    with timing.Probe() as probe:
        losses = training.float64_parity(step, batches, probe, "test")
    assert losses == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert seen == [(np.dtype(np.float64), i) for i in range(7)]
    assert len(probe.times) == 7
