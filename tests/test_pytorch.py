"""The PyTorch chapter, executed in quick mode by the book's own build."""
import time

import numpy as np
import pandas as pd
import pytest

from rosetta.book import build
from rosetta.compare import race
from rosetta.core import params, pipeline, records, reference, schedule, synthetic, training, tuning, weights

from conftest import ROOT, check_float64_record

# quick mode measures every CPU setting but torch.compile (fw_torch.QUICK_LEAVES_OUT)
QUICK_SETTINGS = ("eager", "channels_last", "flush_denormal", "onednn_off", "jit_trace")
FEEDS = ("numpy", "dataloader_0", "dataloader_2")
VARIANTS = ({("two_layer", "tensors"), ("two_layer", "autograd"), ("two_layer", "nn_module"), ("lenet", "nn_module"),
             ("lenet", "float64")} | {("lenet", s) for s in QUICK_SETTINGS} | {("lenet", f"input_{f}") for f in FEEDS}
            | {("lenet_race", f"race_seed{s}") for s in schedule.seeds(True)}
            | {("lenet_data", k + f) for k in synthetic.KINDS for f in ("", "_flushed")})
MAIN_RUNS = {("two_layer", "tensors"), ("two_layer", "autograd"), ("two_layer", "nn_module"), ("lenet", "nn_module")}


def test_every_variant_recorded_with_parity(quick_book):
    recs = quick_book.records("pytorch")
    assert set(recs) == VARIANTS
    for (model, variant), r in recs.items():
        if (model, variant) not in MAIN_RUNS:
            continue                                     # the other runs: their own tests
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


# ------------------------------------------------------------------ default and tuned

def test_main_run_uses_the_fastest_setting_that_keeps_parity(quick_book):
    """The chapter measured every CPU setting from the shared weights over the same batches; the
    main run's setting is tuning.choose's pick over the steps a float32 run can follow."""
    recs = quick_book.records("pytorch")
    main = recs[("lenet", "nn_module")]
    settings = [recs[("lenet", s)] for s in QUICK_SETTINGS]
    cfg = params.resolve(**main["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    first = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
    decided = reference.decided_steps(reference.lenet_margins(weights.lenet(cfg.seed), first, params.LENET_LR,
                                                              params.LENET_MOMENTUM)["relu"], params.PARITY_STEPS)
    assert 0 < decided <= params.PARITY_STEPS
    steps = min(len(x_train) // cfg.batch_size, 300)
    for r in settings:
        assert len(r["losses"]) == r["extra"]["steps"] == steps and r["parity"]["gates"] is False
        assert r["extra"]["speed_setting"] == r["variant"]      # not a main run for the comparison
        assert r["parity"]["steps"] == params.PARITY_STEPS
    # the settings that keep what the step computes stay within rounding of the default
    eager = recs[("lenet", "eager")]
    for r in settings:
        assert np.allclose(r["losses"][:decided], eager["losses"][:decided], rtol=1e-5), r["variant"]
    assert tuning.qualifies(eager, decided)
    chosen = tuning.choose(settings, decided)
    summary = main["extra"]["tuning"]
    assert summary == tuning.summary(eager, chosen, settings)
    assert summary["measured"] == len(settings)
    assert summary["default"] == "eager" and summary["tuned"] == main["extra"]["setting"] == chosen["variant"]
    assert summary["speedup"] >= 1 and "speed_setting" not in main["extra"]
    assert recs[("lenet", "jit_trace")]["one_off"][0]["kind"] == "trace"
    if chosen["variant"] == "jit_trace":
        assert main["one_off"][0]["kind"] == "trace"


def test_compile_without_a_cxx_compiler_says_what_to_install(monkeypatch):
    import torch
    from torch._inductor import config
    from rosetta.frameworks import pytorch as fw_torch
    monkeypatch.setattr(config.cpp, "cxx", ("/nonexistent/g++",))
    problem = fw_torch.compile_problem()
    assert problem and "C++ compiler" in problem and "g++" in problem
    net = torch.nn.Linear(3, 2)
    with pytest.raises(fw_torch.CompileError, match="C\\+\\+ compiler"):
        with fw_torch.cpu_setting("compile", net, (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))):
            pass
    assert torch.backends.mkldnn.enabled and net.weight.grad is None


def test_cpu_settings_restore_pytorch_switches():
    import torch
    from rosetta.frameworks import pytorch as fw_torch
    net = torch.nn.Linear(3, 2)
    example = (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with fw_torch.cpu_setting("onednn_off", net, example):
        assert not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled
    with fw_torch.cpu_setting("jit_trace", net, example) as s:
        assert s.one_off[0][1] == "trace" and net.weight.grad is None
        assert torch.equal(s.module(example[0]), net(example[0]))
        assert all(a is b for a, b in zip(s.module.parameters(), net.parameters()))
    with pytest.raises(ValueError, match="must be one of"):
        fw_torch.cpu_setting("xla", net, example)


# ----------------------------------------------------------------------- the race

def test_race_records_follow_the_schedule(quick_book):
    recs = quick_book.records("pytorch")
    main = recs[("lenet", "nn_module")]
    runs = [recs[("lenet_race", f"race_seed{s}")] for s in schedule.seeds(True)]
    df = pd.json_normalize(runs, max_level=1).assign(name="PyTorch")
    check = race.schedule_check(df)
    assert check["same"] and check["records"] == len(runs) and check["max_rel_diff"] < 1e-12
    for r in runs:
        cfg = params.resolve(**r["params"])
        assert r["extra"]["setting"] == main["extra"]["setting"] and r["extra"]["momentum_form"] == "pytorch"
        assert r["params"]["seed"] == r["extra"]["seed"] and r["parity"]["gates"] is False
        assert len(r["losses"]) == len(r["extra"]["rates"]) and r["extra"]["evals"]
        assert [e["step"] for e in r["extra"]["evals"]] == sorted(e["step"] for e in r["extra"]["evals"])
        assert r["test_accuracy"] == r["extra"]["evals"][-1]["accuracy"]
        assert r["extra"]["reached"] is (r["test_accuracy"] >= schedule.TARGET)
        # its first steps against the reference with the same rates in PyTorch's momentum form
        x_train, y_train, _, _ = training.mnist_data(cfg)
        first = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
        rates = schedule.rates(len(x_train) // cfg.batch_size, cfg.epochs)[:params.PARITY_STEPS]
        init = weights.lenet(cfg.seed)
        ref = reference.lenet_losses(init, first, rates, params.LENET_MOMENTUM, "pytorch")
        assert np.allclose(r["parity"]["reference"], ref, rtol=1e-12)
        decided = reference.decided_steps(
            reference.lenet_margins(init, first, rates, params.LENET_MOMENTUM, "pytorch")["relu"], params.PARITY_STEPS)
        # within the tolerance over the steps a float32 run can follow; beyond them the record says
        assert max(r["parity"]["rel_dev"][:decided]) <= params.LENET_TOL
        assert r["parity"]["passed"] is (r["parity"]["max_rel_dev"] <= params.LENET_TOL)
    sentence = race.runs_sentence(race.runs(df))
    assert ("did not reach 99%" in sentence and "Quick mode" in sentence) if not runs[0]["extra"]["reached"] \
        else "reached 99%" in sentence


def test_race_sentence_says_what_the_runs_did():
    runs = pd.DataFrame({"seed": [0, 1, 2], "reached": [True, True, False], "s to target": [10.0, 12.0, np.nan],
                         "epochs to target": [1.5, 1.75, np.nan], "final accuracy (%)": [99.0, 99.1, 98.9],
                         "quick": [False] * 3})
    assert race.runs_sentence(runs) == ("2 of 3 seeds reached 99% test accuracy, after a median of 11.0 s of "
                                   "training (range 10.0–12.0 s) and 1.62 epochs.")
    none = runs.assign(reached=False, quick=True)
    assert "none reached 99%" in race.runs_sentence(none) and "98.90–99.10%" in race.runs_sentence(none)
    assert "Quick mode" in race.runs_sentence(none)
    assert race.runs_sentence(runs.iloc[:0]) == "No race was run."


# ------------------------------------------------------------------ the input pipeline

def test_loaders_feed_the_same_batches_in_the_same_order(quick_book):
    recs = quick_book.records("pytorch")
    feeds = [recs[("lenet", f"input_{f}")] for f in FEEDS]
    main = recs[("lenet", "nn_module")]
    for r in feeds:   # the same batches: the same losses, up to rounding that depends on memory layout
        assert np.allclose(r["losses"], feeds[0]["losses"], rtol=1e-5, atol=0), r["variant"]
        assert r["extra"]["setting"] == main["extra"]["setting"] and r["extra"]["speed_setting"] == r["variant"]
        assert r["extra"]["seconds_per_step"] > 0 and r["timing"]["median_s"] > 0
    # the main run starts over the same batches with the same setting: the same first losses
    n = len(feeds[0]["losses"])
    assert np.allclose(feeds[0]["losses"], main["losses"][:n], rtol=1e-5)


def test_pipeline_verdicts():
    out = pipeline.compare(0.010, {"a": 0.009, "b": 0.0102, "c": 0.012}, prepare_s=0.0002)
    assert [out["loaders"][k]["verdict"] for k in "abc"] == ["helps", "no difference", "costs"]
    assert out["prepare_share"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="positive"):
        pipeline.compare(0.01, {"a": 0.0}, 0.001)


# --------------------------------------------------------- what the data does to the step

def test_data_streams_are_timed_with_and_without_flushing(quick_book):
    recs = quick_book.records("pytorch")
    steps = {len(recs[("lenet_data", k)]["losses"]) for k in synthetic.KINDS}
    assert len(steps) == 1 and steps.pop() > params.WARMUP_STEPS
    for k in synthetic.KINDS:
        plain, flushed = recs[("lenet_data", k)], recs[("lenet_data", k + "_flushed")]
        assert plain["extra"]["flush_denormal"] is False and flushed["extra"]["flush_denormal"] is True
        assert 0 <= plain["extra"]["subnormal_fraction"] <= 1
        for r in (plain, flushed):
            assert r["parity"]["steps"] == (params.PARITY_STEPS if k == "mnist" else 1)
            assert r["parity"]["rel_dev"][0] <= params.LENET_TOL
    # the MNIST stream is the training batches: the default run's losses, flushed or not
    eager = recs[("lenet", "eager")]["losses"]
    for v in ("mnist", "mnist_flushed"):
        got = recs[("lenet_data", v)]["losses"]
        assert np.allclose(got, eager[:len(got)], rtol=1e-5)
    # one batch repeated: the first batch's loss first, then falling as the net learns it
    one = recs[("lenet_data", "one_batch")]["losses"]
    assert one[0] == pytest.approx(eager[0], rel=1e-6) and one[-1] < one[0]


def test_synthetic_batches_and_denormals():
    x = np.arange(256 * 4, dtype=np.float32).reshape(256, 1, 2, 2)
    y = np.arange(256) % 10
    mnist = synthetic.batches("mnist", x, y, 0, 64, 3)
    idx = weights.batch_indices(0, 0, 256, 64)
    assert all(np.array_equal(b[0], x[i]) for b, i in zip(mnist, idx))
    one = synthetic.batches("one_batch", x, y, 0, 64, 3)
    assert all(np.array_equal(b[0], x[idx[0]]) for b in one)
    noise = synthetic.batches("random_normal", x, y, 0, 64, 3)
    assert np.array_equal(noise[1][1], y[idx[1]]) and not np.array_equal(noise[1][0], x[idx[1]])
    assert np.array_equal(noise[0][0], synthetic.batches("random_normal", x, y, 0, 64, 1)[0][0])
    labels = synthetic.batches("random_labels", x, y, 0, 64, 3)
    assert np.array_equal(labels[2][0], x[idx[2]]) and labels[2][1].dtype == np.int64
    with pytest.raises(ValueError, match="fewer steps"):
        synthetic.batches("mnist", x, y, 0, 64, 5)
    with pytest.raises(ValueError, match="must be one of"):
        synthetic.batches("zeros", x, y, 0, 64, 1)
    tiny = np.finfo(np.float32).tiny
    assert synthetic.subnormal_fraction([np.array([0, 1, tiny / 4, -tiny / 8], np.float32)]) == pytest.approx(2 / 3)
    effect = synthetic.compare({"mnist": 5, "one_batch": 8, "random_normal": 8.3, "random_labels": 5.2},
                               {"mnist": 5, "one_batch": 5.1, "random_normal": 8, "random_labels": 5.1},
                               {"mnist": 0, "one_batch": 0.3, "random_normal": 0, "random_labels": 0})
    assert [effect[k]["differs"] for k in synthetic.KINDS] == [False, True, True, False]
    assert effect["one_batch"]["flush_explains"] and not effect["random_normal"]["flush_explains"]


def test_the_chapters_sentences_follow_the_numbers():
    """Fixture numbers (not a run): each sentence says what its numbers say, and no more."""
    from rosetta.frameworks import pytorch as fw_torch

    def rec(variant, ms, dev=1e-6, one_off=()):
        return {"variant": variant, "timing": {"median_s": ms / 1e3}, "framework_version": "2.13.0",
                "one_off": [{"seconds": s} for s in one_off], "extra": {"deprecated": variant == "jit_trace"},
                "parity": {"rel_dev": [dev] * 5, "tolerance": params.LENET_TOL}}
    settings = {"eager": rec("eager", 7), "onednn_off": rec("onednn_off", 14),
                "jit_trace": rec("jit_trace", 6, dev=1e-2, one_off=[0.3]), "compile": rec("compile", 6.5, one_off=[4])}
    table = fw_torch.settings_table(settings.values(), 5)
    assert list(table["keeps parity"]) == [True, True, False, True] and table["speed vs default"][1] == 0.5
    assert "another run may choose" in fw_torch.tuning_text({"eager": rec("eager", 7), "channels_last": rec("channels_last", 6.9)},
                                                            "channels_last", 5, {})
    text = fw_torch.tuning_text(settings, "compile", 5, {})
    assert text.startswith("On this run `compile`") and "`jit_trace` would have been faster" in text
    assert "pays back after about 8,000 steps" in text and "deprecated" in text
    text = fw_torch.tuning_text({"eager": rec("eager", 7)}, "eager", 5, dict(fw_torch.QUICK_LEAVES_OUT))
    assert text.startswith("No setting was faster") and "`compile` was not measured" in text
    feeding = pipeline.compare(0.0070, {"dataloader_0": 0.0090, "dataloader_2": 0.0060}, 0.00004)
    text = fw_torch.feeding_text(feeding, {"numpy": 20.0, "dataloader_2": 90.0}, 2)
    assert "1.29 times NumPy's: slower" in text and "0.86 times NumPy's: faster" in text and "paid off" in text
    assert "no loader paid off" not in text and "took 90 ms against 20 ms" in text
    text = fw_torch.feeding_text(pipeline.compare(0.0070, {"dataloader_0": 0.0090}, 0.00004), {}, 2)
    assert "no loader paid off" in text and "2 threads busy" in text
    same = {k: 5.0 for k in synthetic.KINDS}
    effect = synthetic.compare(same, same, {k: 0.0 for k in synthetic.KINDS})
    assert "no stream moved the step time" in fw_torch.data_text(effect, 20)
    # a difference without denormals is not put down to them; few steps are said to be noisy
    effect = synthetic.compare({**same, "random_labels": 6.0}, same, {k: 0.0 for k in synthetic.KINDS})
    assert not effect["random_labels"]["flush_explains"]
    text = fw_torch.data_text(effect, 20)
    assert "do not explain" in text and "No denormal number appeared" in text and "noisy" in text
    effect = synthetic.compare({**same, "one_batch": 8.0, "random_normal": 8.0}, {**same, "random_normal": 8.0},
                               {**{k: 0.0 for k in synthetic.KINDS}, "one_batch": 0.2})
    text = fw_torch.data_text(effect, 300)
    assert "One repeated MNIST batch and random-normal images moved it" in text
    assert "one repeated MNIST batch came back within 10%" in text
    assert "Random-normal images stayed apart" in text and "2.0e-01, with one repeated MNIST batch" in text
