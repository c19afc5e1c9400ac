"""The PyTorch chapter, executed in quick mode by the book's own build."""
import time

from rosetta.book import build
from rosetta.core import params, reference, training, weights

from conftest import ROOT, check_float64_record

VARIANTS = {("two_layer", "tensors"), ("two_layer", "autograd"), ("two_layer", "nn_module"), ("lenet", "nn_module"),
            ("lenet", "float64")}


def test_every_variant_recorded_with_parity(quick_book):
    recs = quick_book.records("pytorch")
    assert set(recs) == VARIANTS
    for (model, variant), r in recs.items():
        if variant == "float64":
            continue                                     # the parity window only: its own test
        steps = r["parity"]["steps"]
        if model == "two_layer":
            assert steps == len(r["losses"]) == params.TWO_LAYER_STEPS >= 50
            assert r["parity"]["tolerance"] == params.TWO_LAYER_TOL
        else:
            assert steps == params.PARITY_STEPS
            assert len(r["losses"]) == params.QUICK["train_subset"] // r["params"]["batch_size"]
            assert r["parity"]["tolerance"] == params.LENET_TOL
        assert r["parity"]["passed"] and r["parity"]["max_rel_dev"] <= r["parity"]["tolerance"]
        # the float32 LeNet run does not gate the chapter (the float64 run checks its program)
        assert r["parity"]["gates"] is (model == "two_layer")
        assert r["framework"] == "pytorch" and r["framework_version"].startswith("2.")
        assert r["device"] == "cpu" and r["device_name"] and r["threads"] == params.default_threads()
        assert r["params"]["quick"] is True and r["params"]["seed"] == 0
        assert 0 < r["timing"]["q1_s"] <= r["timing"]["median_s"] <= r["timing"]["q3_s"]
        assert r["timing"]["n"] == len(r["losses"]) - params.WARMUP_STEPS
        assert r["memory"]["peak_rss_bytes"] > r["memory"]["baseline_rss_bytes"] > 0
        assert r["git_commit"] and r["date"] and r["python"].startswith("3.")


def test_lenet_learns(quick_book):
    r = quick_book.records("pytorch")[("lenet", "nn_module")]
    assert r["losses"][-1] < 0.5 * r["losses"][0]
    assert 0.6 < r["test_accuracy"] <= 1 and r["extra"]["epoch_accuracy"] == [r["test_accuracy"]]


def test_float64_run_is_the_reference_program(quick_book):
    """PyTorch applies its hyper-parameters in the weights' own type: float64 matches to rounding."""
    recs = quick_book.records("pytorch")
    cfg = params.resolve(**recs[("lenet", "nn_module")]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    ref = reference.lenet_losses(weights.lenet(cfg.seed), training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS),
                                 params.LENET_LR, params.LENET_MOMENTUM)
    check_float64_record(recs[("lenet", "float64")], ref, tol=1e-12)
    assert recs[("lenet", "float64")]["parity"]["gates"] is True


def test_bad_parameter_fails_before_any_training(tmp_path):
    t0 = time.perf_counter()
    res = build.run_chapter("pytorch", {"epochs": "three"}, tmp_path / "_build", ROOT)
    assert not res.ok and "ParameterError" in res.error and "'epochs' must be a whole number" in res.error
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "_build" / "records" / "pytorch").exists()
