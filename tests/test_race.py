"""The race to 99%: the schedule, the training loop, the reference in both momentum forms, the
choice of the tuned setting and the comparison's race tables (on fixture records)."""
import dataclasses
import json

import numpy as np
import pytest

from rosetta.compare import race as compare_race
from rosetta.core import params, records, reference, schedule, timing, training, tuning, weights


def test_rates_warm_up_then_decay():
    r = schedule.rates(40, 1)
    assert len(r) == 40
    warm = round(schedule.WARMUP_EPOCHS * 40)
    assert r[warm - 1] == pytest.approx(schedule.PEAK_LR)
    assert np.all(np.diff(r[:warm]) > 0) and np.all(np.diff(r[warm:]) < 0)
    assert r.max() == pytest.approx(schedule.PEAK_LR) and r.min() > 0
    full = schedule.rates(937, 3)
    assert len(full) == 2811 and full[-1] < 1e-4
    with pytest.raises(ValueError, match="at least one step"):
        schedule.rates(0, 3)


def test_forms_agree_at_a_constant_rate_and_differ_when_it_changes():
    x, y = training.mnist_data(params.resolve(quick=True))[:2]
    cfg = params.resolve(quick=True)
    batches = training.parity_batches(x, y, cfg, 8)
    init = weights.lenet(0)
    const = reference.lenet_losses(init, batches, params.LENET_LR, params.LENET_MOMENTUM)
    for form in schedule.MOMENTUM_FORMS:
        same = reference.lenet_losses(init, batches, [params.LENET_LR] * 8, params.LENET_MOMENTUM, form)
        assert np.allclose(same, const, rtol=1e-13, atol=0)
    lrs = schedule.rates(40, 1)[:8]
    a = reference.lenet_losses(init, batches, lrs, params.LENET_MOMENTUM, "pytorch")
    b = reference.lenet_losses(init, batches, lrs, params.LENET_MOMENTUM, "sutskever")
    assert a[0] == b[0] and reference.max_rel_dev(a, b) > 1e-6
    with pytest.raises(ValueError, match="momentum form"):
        reference.lenet_losses(init, batches, lrs, 0.9, "adam")
    with pytest.raises(ValueError, match="learning rates for"):
        reference.lenet_losses(init, batches, lrs[:3], 0.9)


class _Reference:
    """The NumPy reference as a chapter step: a real (slow) LeNet step taking the step's rate."""

    def __init__(self, seed, form):
        self.p = {k: v.astype(np.float64) for k, v in weights.lenet(seed).items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.form = form

    def step(self, xb, yb, lr):
        loss, g = reference.lenet_loss_and_grads(self.p, xb.astype(np.float64), yb)
        for k in self.p:
            if self.form == "pytorch":
                self.v[k] = params.LENET_MOMENTUM * self.v[k] + g[k]
                self.p[k] -= lr * self.v[k]
            else:
                self.v[k] = params.LENET_MOMENTUM * self.v[k] - lr * g[k]
                self.p[k] += self.v[k]
        return loss

    def accuracy(self, x, y):
        return float((reference.lenet_logits(self.p, x.astype(np.float64)).argmax(1) == y).mean())


def _quick_race(target, form="sutskever", train=640):
    cfg = dataclasses.replace(params.resolve(quick=True), train_subset=train)
    data = training.mnist_data(cfg)
    rates = schedule.rates(train // cfg.batch_size, cfg.epochs)
    net = _Reference(cfg.seed, form)
    with timing.Probe() as probe:
        run = training.race(net.step, net.accuracy, data, cfg, probe, rates, "reference race", target)
    return cfg, data, rates, run


def test_race_measures_every_quarter_epoch_and_follows_its_reference():
    cfg, data, rates, run = _quick_race(target=1.01)           # unreachable: runs every step
    per_epoch = len(data[0]) // cfg.batch_size
    assert [e["step"] for e in run["evals"]] == list(range(schedule.eval_every(per_epoch), per_epoch + 1,
                                                           schedule.eval_every(per_epoch)))
    assert not run["reached"] and run["time_to_target_s"] is None
    assert run["rates"] == rates.tolist() and len(run["losses"]) == per_epoch
    train_s = [e["train_s"] for e in run["evals"]]
    assert all(b > a for a, b in zip(train_s, train_s[1:]))
    batches = training.parity_batches(data[0], data[1], cfg, params.PARITY_STEPS)
    ref = reference.lenet_losses(weights.lenet(cfg.seed), batches, rates, params.LENET_MOMENTUM, "sutskever")
    assert reference.max_rel_dev(run["losses"][:params.PARITY_STEPS], ref) < 1e-12


def test_race_stops_at_the_target():
    _, _, _, full = _quick_race(target=1.01)
    first = full["evals"][0]["accuracy"]
    _, _, _, run = _quick_race(target=first)
    assert run["reached"] and len(run["evals"]) == 1
    assert run["time_to_target_s"] == run["evals"][0]["train_s"]
    assert len(run["losses"]) == run["evals"][0]["step"]
    extra = training.race_extra(run, 0, "sutskever", "reference")
    json.dumps(extra)
    with pytest.raises(ValueError, match="momentum form"):
        training.race_extra(run, 0, "adam", "reference")


def test_race_refuses_a_schedule_of_the_wrong_length():
    cfg = params.resolve(quick=True)
    with pytest.raises(ValueError, match="schedule.rates"):
        training.race(None, None, training.mnist_data(cfg), cfg, timing.Probe(), [0.01] * 3)


def _rec(variant, median, dev, tol=params.LENET_TOL):
    return {"variant": variant, "timing": {"median_s": median},
            "parity": {"rel_dev": dev, "tolerance": tol}}


def test_tuned_is_the_fastest_setting_that_keeps_parity():
    default = _rec("default", 0.010, [0, 1e-7, 1e-6, 4e-3])        # float32 near-tie at step 3
    fast_ok = _rec("static_alloc", 0.006, [0, 1e-7, 2e-6, 5e-3])
    faster_bad = _rec("reduced", 0.004, [0, 2e-3, 1e-2, 1e-2])     # changes the numbers from step 1
    assert tuning.choose([default, fast_ok, faster_bad], steps=3)["variant"] == "static_alloc"
    with pytest.raises(tuning.TuningError, match="reduced"):
        tuning.choose([faster_bad], steps=3)
    s = tuning.summary(default, fast_ok)
    assert s["speedup"] == pytest.approx(10 / 6) and s["tuned"] == "static_alloc" and "measured" not in s
    assert tuning.summary(default, fast_ok, [default, fast_ok, faster_bad])["measured"] == 3


def _race_record(folder, framework, seed, reached_s, rates, form="pytorch", quick=True, gpu=None):
    """A FIXTURE race record (never kept in data/records/); ``gpu`` names a FIXTURE GPU."""
    cfg = params.resolve(quick=quick, seed=seed)
    evals = [{"step": 10, "epochs": 0.25, "train_s": reached_s or 1.0, "accuracy": 0.995 if reached_s else 0.9}]
    run = {"rates": list(rates), "evals": evals, "target": 0.99, "reached": reached_s is not None,
           "time_to_target_s": reached_s, "epochs_to_target": 0.25 if reached_s else None}
    rec = records.make(framework=framework, framework_version="fixture", variant=f"race_seed{seed}",
                       model="lenet_race", device="cuda" if gpu else "cpu", device_name=gpu or "fixture",
                       threads=2, params=cfg.as_dict(),
                       losses=[2.3] * len(rates), reference=[2.3] * 20, tolerance=1e-3,
                       probe_summary={"timing": {"median_s": 0.01}, "memory": {}},
                       test_accuracy=evals[-1]["accuracy"], gates=False,
                       extra={**training.race_extra(run, seed, form, "fixture tuned"), "fixture": True})
    if gpu:
        rec["accelerator"] = {"name": gpu}
    records.write(rec, folder / framework)


def test_race_table_and_schedule_check_on_fixture_records(tmp_path):
    rates = schedule.rates(40, 1)
    for seed, s in zip((0, 1, 2), (3.0, 5.0, None)):
        _race_record(tmp_path, "pytorch", seed, s, rates)
    _race_record(tmp_path, "tensorflow", 0, 2.0, np.float32(rates).astype(float), form="sutskever")
    race = compare_race.load(folders=[tmp_path / "pytorch", tmp_path / "tensorflow"])
    table = compare_race.table(race).set_index("framework")
    assert table.loc["PyTorch", "reached"] == "2 of 3"
    assert table.loc["PyTorch", "median s to target"] == 4.0
    assert (table.loc["PyTorch", "min s"], table.loc["PyTorch", "max s"]) == (3.0, 5.0)
    assert table.loc["TensorFlow", "momentum form"] == "sutskever"
    check = compare_race.schedule_check(race)
    assert check["same"] and 0 < check["max_rel_diff"] < 1e-7            # float32-rounded rates
    _race_record(tmp_path, "jax", 0, 2.0, rates * 1.01)
    check = compare_race.schedule_check(compare_race.load(folders=[tmp_path / "jax"]))
    assert not check["same"] and "JAX seed 0" in check["off"][0]


def test_race_and_tuning_sentences_follow_the_tables(tmp_path):
    rates = schedule.rates(40, 1)
    for seed, s in zip((0, 1, 2), (3.0, 5.0, 4.0)):
        _race_record(tmp_path, "pytorch", seed, s, rates)
    for seed, s in zip((0, 1, 2), (5.5, 6.0, 7.0)):
        _race_record(tmp_path, "mxnet", seed, s, rates, form="sutskever")
    _race_record(tmp_path, "theano", 0, None, rates)
    table = compare_race.table(compare_race.load(folders=[tmp_path / f for f in ("pytorch", "mxnet", "theano")]))
    text = compare_race.race_sentence(table)
    assert text.startswith("PyTorch reached 99% first: a median of 4.0 s")
    assert "MXNet follows with 6.0 s." in text and "Theano did not reach it" in text
    _race_record(tmp_path, "tensorflow", 0, 4.2, rates)
    table = compare_race.table(compare_race.load(folders=[tmp_path / f for f in ("pytorch", "tensorflow")]))
    assert "the two are level" in compare_race.race_sentence(table)
    none = compare_race.table(compare_race.load(folders=[tmp_path / "theano"]))
    assert "quick mode" in compare_race.race_sentence(none)
    import pandas as pd
    tun = pd.DataFrame([{"framework": "PyTorch", "device": "cpu", "default": "eager", "tuned": "compile",
                         "default ms/step": 8.0, "tuned ms/step": 6.0, "speed-up": 8 / 6},
                        {"framework": "Theano", "device": "cpu", "default": "openblas", "tuned": "openblas",
                         "default ms/step": 18.0, "tuned ms/step": 18.0, "speed-up": 1.0, "settings measured": 5}])
    text = compare_race.tuning_sentence(tun)
    assert "PyTorch 1.33x (eager to compile)" in text and "Theano is more than 1.5 times slower" in text
    assert "Theano kept its default, the fastest setting measured." in text and "openblas to" not in text
    assert "main run" not in text                           # no main run's step given: nothing said of it
    text = compare_race.tuning_sentence(tun.assign(**{"main run ms/step": [7.5, 18.5]}))
    assert "the main run, with the tuned setting over the whole training, took 7.50 ms a step (PyTorch)" in text
    assert "Theano)" not in text                           # within a tenth of its tuning row
    race_rows, tuned_rows = compare_race.chart_rows(table, tun)
    assert len(tuned_rows) == 4 and set(race_rows["model"]) == {"LeNet"}


def test_race_and_tuning_sentences_speak_of_each_device_apart(tmp_path):
    """FIXTURE: a quick CPU race that reaches nothing beside full races kept from a GPU: the
    sentence says where each result was measured, and no framework both reached and did not."""
    rates, gpu = schedule.rates(40, 1), "FIXTURE GPU (not a real run)"
    for fw in ("pytorch", "jax"):
        _race_record(tmp_path, fw, 0, None, rates)
        for seed, s in zip((0, 1, 2), (5.0, 5.2, 4.9) if fw == "pytorch" else (2.6, 2.7, 3.0)):
            _race_record(tmp_path / "gpu", fw, seed, s, rates, quick=False, gpu=gpu)
    race = compare_race.load(folders=[tmp_path / "pytorch", tmp_path / "jax", tmp_path / "gpu" / "pytorch",
                                      tmp_path / "gpu" / "jax"])
    table = compare_race.table(race)
    assert set(table["device"]) == {"cpu", gpu}
    text = compare_race.race_sentence(table)
    assert text.startswith("On the CPU, no framework reached 99% test accuracy within the race's epochs.")
    assert f"On {gpu}, JAX reached 99% first: a median of 2.7 s" in text and "PyTorch follows with 5.0 s" in text
    assert "did not reach it" not in text
    import pandas as pd
    tun = pd.DataFrame([{"framework": "JAX", "device": d, "default": "jit", "tuned": t,
                         "default ms/step": 10.0, "tuned ms/step": ms, "speed-up": 10.0 / ms, "settings measured": 4}
                        for d, t, ms in (("cpu", "jit", 10.0), (gpu, "donate", 5.0))])
    text = compare_race.tuning_sentence(tun)
    assert text.startswith("On the CPU, JAX kept its default, the fastest setting measured. Tuned, JAX takes 10.00 ms")
    alone = compare_race.tuning_sentence(tun.iloc[:1].assign(**{"settings measured": 1}))
    assert alone.startswith("JAX measured only its default here, so its tuned setting is the default.")
    assert "fastest setting measured" not in alone
    unknown = compare_race.tuning_sentence(tun.iloc[:1].drop(columns="settings measured"))
    assert unknown.startswith("JAX kept its default (the record does not say how many settings were measured).")
    assert f"On {gpu}, tuning made the LeNet step faster by: JAX 2.00x (jit to donate)." in text

