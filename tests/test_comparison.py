"""The comparison chapter's helpers: FLOP count, machine peak, tables from records, the control-flow loop."""
import json
import math
from pathlib import Path
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from rosetta.book import build
from rosetta.compare import charts, tables as compare, verdicts
from rosetta.core import control_flow as cf, flops, params, peak, records, timing, weights
from rosetta.frameworks import control_flow as loops

from conftest import ROOT

# ------------------------------------------------------------------- FLOPs


def test_lenet_layers_from_shapes():
    layers = {l["layer"]: l for l in flops.lenet_layers()}
    assert layers["conv1"]["output"] == (20, 24, 24)   # 28 - 5 + 1
    assert layers["conv2"]["output"] == (50, 8, 8)     # pooled 12 - 5 + 1
    # multiply-adds per image, by hand: outputs x inputs per output
    assert layers["conv1"]["macs"] == 20 * 24 * 24 * 1 * 5 * 5 == 288_000
    assert layers["conv2"]["macs"] == 50 * 8 * 8 * 20 * 5 * 5 == 1_600_000
    assert layers["fc1"]["macs"] == 800 * 500 == 400_000
    assert layers["fc2"]["macs"] == 500 * 10 == 5_000


def test_lenet_flops_forward_and_training():
    assert flops.forward_flops() == 2 * 2_293_000 == 4_586_000
    # forward + weight gradients + input gradients of every layer but the first
    assert flops.training_flops() == 2 * (3 * 2_293_000 - 288_000) == 13_182_000
    assert 2.8 < flops.training_flops() / flops.forward_flops() < flops.TRAINING_FACTOR


def test_two_layer_flops():
    # x (64x1000) @ w1 (1000x100), h (64x100) @ w2 (100x10); no gradient for x
    assert flops.forward_flops(flops.two_layer_layers()) == 2 * (6_400_000 + 64_000)
    assert flops.training_flops(flops.two_layer_layers()) == 2 * (3 * 6_464_000 - 6_400_000) == 25_984_000


def test_lenet_flops_refuse_a_wrong_input_size():
    with pytest.raises(ValueError, match="expect"):
        flops.lenet_layers((32, 32))


# -------------------------------------------------------------------- peak


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_matmul_rate_is_sane(backend):
    r = peak.matmul_rate(n=256, repeats=3, threads=1, backend=backend)
    assert r["backend"] == backend and len(r["samples_s"]) == 3
    assert r["median_s"] > 0 and 0.05 < r["gflops"] < 20_000      # a CPU, not a calculator nor a TPU
    assert math.isclose(r["gflops"], 2 * 256 ** 3 / r["median_s"] / 1e9)
    assert r["threads_used"] == 1


def test_matmul_time_grows_with_size():
    small = peak.matmul_rate(n=96, repeats=5, threads=1)
    large = peak.matmul_rate(n=768, repeats=3, threads=1)
    assert large["median_s"] > 8 * small["median_s"]              # 512 times the work


def test_openblas_threads_are_pinned_and_restored():
    lib, suffix = peak._openblas()
    assert lib is not None, "the pinned NumPy 1.26.4 wheel bundles OpenBLAS; peak.py must find it"
    before = getattr(lib, f"openblas_get_num_threads{suffix}")()
    with peak.openblas_threads(1) as used:
        assert used == 1
    assert getattr(lib, f"openblas_get_num_threads{suffix}")() == before


def test_machine_peak_takes_the_best_backend():
    m = peak.machine_peak(threads=1, n=128, repeats=2)
    assert m["peak_gflops"] == max(r["gflops"] for r in m["rates"])
    with pytest.raises(ValueError, match="backend"):
        peak.matmul_rate(backend="fortran")


# --------------------------------------------------------- fixture records

CPU = "Test CPU"
# framework -> (2-layer median s, LeNet median s, LeNet accuracy per epoch, RSS increase MiB)
FIXTURE = {
    "pytorch": (0.002, 0.040, [0.97, 0.985, 0.991], 150),
    "tensorflow": (0.001, 0.030, [0.975, 0.988], 40),
    "mxnet": (0.003, 0.020, [0.97, 0.986], 80),
}


def _summary(median, n=40, rss_mib=100):
    probe = timing.Probe()
    probe.times = [10 * median] + [median] * (params.WARMUP_STEPS - 1) + [median] * n
    probe.wall_s = sum(probe.times)
    probe.memory.baseline, probe.memory.peak = 500 * 2 ** 20, (500 + rss_mib) * 2 ** 20
    return probe.summary()


def _write(folder, framework, model, median, accuracy=None, rss=100, cpu=CPU, threads=2, extra=None, one_off=()):
    steps = params.TWO_LAYER_STEPS if model == "two_layer" else 40
    ref = list(np.linspace(3.0, 1.0, params.PARITY_STEPS if model == "lenet" else steps))
    losses = [v * (1 + 1e-7) for v in ref] + [1.0] * (steps - len(ref))
    rec = records.make(framework=framework, framework_version="1.0", variant="main", model=model, device="cpu",
                       device_name=cpu, threads=threads,
                       params={"quick": False, "epochs": len(accuracy or [1]), "batch_size": 64,
                               "train_subset": 60000, "test_subset": 10000},
                       losses=losses, reference=ref, tolerance=1e-3, probe_summary=_summary(median, rss_mib=rss),
                       test_accuracy=None if accuracy is None else accuracy[-1], extra=extra, one_off=one_off)
    rec["cpu"] = cpu
    return records.write(rec, folder)


@pytest.fixture
def book(tmp_path):
    """A build folder with three frameworks' records (no Theano) and an empty committed folder."""
    build_dir = tmp_path / "_build"
    for fw, (m2, ml, acc, rss) in FIXTURE.items():
        folder = build_dir / "records" / fw
        _write(folder, fw, "two_layer", m2, rss=rss // 10)
        epoch_s = [ml * 900 * (i + 1) for i in range(len(acc))]
        _write(folder, fw, "lenet", ml, acc, rss, extra={"epoch_accuracy": acc, "epoch_end_train_s": epoch_s},
               one_off=[("trace the step", "trace", 0.5)] if fw == "tensorflow" else ())
    (build_dir / "records" / "status").mkdir()                     # pages without records are skipped
    committed = tmp_path / "committed"
    committed.mkdir()
    return build_dir, committed


def test_load_and_missing(book):
    build_dir, committed = book
    df = compare.load(build_dir, committed)
    assert len(df) == 6 and set(df["origin"]) == {"this build"}
    four = ("pytorch", "tensorflow", "mxnet", "theano")
    assert compare.missing(df, four) == ["theano"] and compare.missing_cells(df) == []
    cov = compare.coverage(df, four).set_index("framework")
    assert cov.loc["Theano", "version"] == "no records" and cov.loc["MXNet", "LeNet variants"] == 1


def test_speed_and_peak_tables(book):
    df = compare.load(*book)
    speed = compare.speed_table(df)
    lenet = speed[speed["model"] == "LeNet"].set_index("framework")
    assert lenet.loc["MXNet", "median (ms)"] == pytest.approx(20.0)
    assert lenet.loc["MXNet", "examples/s"] == pytest.approx(64 / 0.020)
    best = compare.fastest(speed, "LeNet", "cpu")
    assert (best["fastest"], best["slowest"], best["ranking"]) == ("MXNet", "PyTorch", ["MXNet", "TensorFlow", "PyTorch"])
    assert best["ratio"] == pytest.approx(2.0)
    yardstick = pd.DataFrame([{"device": "cpu", "machine": CPU, "threads": 2, "peak GFLOP/s": 100.0}])   # FIXTURE peak
    frac = compare.peak_table(df, yardstick).set_index(["framework", "model"])
    rate = flops.training_flops() * 64 / 0.020 / 1e9
    assert frac.loc[("MXNet", "LeNet"), "GFLOP/s"] == pytest.approx(rate)
    assert frac.loc[("MXNet", "LeNet"), "fraction of peak (%)"] == pytest.approx(rate)      # peak is 100
    other = compare.peak_table(df, yardstick.assign(machine="another CPU"))
    assert other["fraction of peak (%)"].isna().all() and not other["same machine"].any()


def test_parity_accuracy_memory_warmup(book):
    df = compare.load(*book)
    parity = compare.parity_table(df)
    assert parity["passed"].all() and (parity["max rel. deviation"] < 1e-6).all()
    assert len(compare.parity_long(df)) == 3 * (params.TWO_LAYER_STEPS + params.PARITY_STEPS)
    spread = compare.accuracy_spread(compare.accuracy_table(df))
    assert spread["frameworks"] == 2 and spread["best"] == "TensorFlow" and spread["worst"] == "MXNet"
    assert spread["spread_pp"] == pytest.approx(0.2)
    mem = compare.memory_table(df).set_index(["framework", "model"])
    assert mem.loc[("PyTorch", "LeNet"), "RSS increase (MiB)"] == pytest.approx(150)
    assert compare.ranking(compare.memory_table(df), "RSS increase (MiB)", "LeNet", "cpu") == \
        ["TensorFlow", "MXNet", "PyTorch"]
    warm = compare.warmup_table(df).set_index(["framework", "model"])
    assert warm.loc[("MXNet", "LeNet"), "first / median"] == pytest.approx(10)
    assert warm.loc[("MXNet", "LeNet"), "warm-up excess (ms)"] == pytest.approx(9 * 20)   # 10 + 4 steps vs 5
    assert warm.loc[("TensorFlow", "LeNet"), "one-off (s)"] == pytest.approx(0.5)
    assert math.isnan(warm.loc[("PyTorch", "LeNet"), "one-off (s)"])


def test_deleting_a_framework_changes_every_table(book):
    build_dir, committed = book
    before = compare.load(build_dir, committed)
    shutil.rmtree(build_dir / "records" / "mxnet")
    after = compare.load(build_dir, committed)
    assert compare.missing(after, ("pytorch", "tensorflow", "mxnet", "theano")) == ["mxnet", "theano"]
    assert "MXNet" not in set(compare.speed_table(after)["framework"])
    assert compare.fastest(compare.speed_table(before), "LeNet", "cpu")["fastest"] == "MXNet"
    assert compare.fastest(compare.speed_table(after), "LeNet", "cpu")["fastest"] == "TensorFlow"
    for table in (compare.parity_table, compare.memory_table, compare.warmup_table, compare.accuracy_table):
        assert len(table(after)) < len(table(before))
    assert compare.coverage(after, compare.FRAMEWORKS[:4]).set_index("framework").loc["MXNet", "version"] == "no records"
    spread = compare.accuracy_spread(compare.accuracy_table(after))
    assert spread["frameworks"] == 1 and math.isnan(spread["spread_pp"])     # no two trained alike any more


def test_no_records_at_all_still_gives_tables_and_charts(tmp_path):
    df = compare.load(tmp_path / "_build", tmp_path / "none")
    assert compare.missing(df) == list(compare.FRAMEWORKS)
    assert list(compare.coverage(df, ["jax"])["version"]) == ["no records"]
    for table in (compare.parity_table, compare.speed_table, compare.memory_table, compare.warmup_table,
                  compare.accuracy_table, compare.coverage):
        table(df)
    assert compare.fastest(compare.speed_table(df), "LeNet", "cpu")["frameworks"] == 0
    for fig in (charts.parity(compare.parity_long(df)), charts.warmup(compare.warmup_table(df)),
                charts.bars(compare.speed_table(df), "median (ms)", "ms", "empty"),
                charts.one_off(compare.warmup_table(df))):
        assert charts.save(fig, tmp_path / "png", "chart").stat().st_size > 1000


def test_committed_records_are_labelled_and_shadowed(book, tmp_path):
    build_dir, committed = book
    _write(committed, "theano", "lenet", 0.05, [0.98])               # a record only in data/records
    path = _write(committed, "pytorch", "lenet", 9.9, [0.5])          # shadowed by this build's
    df = compare.load(build_dir, committed)
    assert compare.missing(df, ("pytorch", "tensorflow", "mxnet", "theano")) == []
    theano = df[df["framework"] == "theano"].iloc[0]
    assert theano["origin"] == "committed"
    pt = df[(df["framework"] == "pytorch") & (df["model"] == "lenet")]
    assert len(pt) == 1 and pt.iloc[0]["timing.median_s"] == pytest.approx(0.040) and Path(path).exists()


def _write_dp(folder, framework, variant, median, processes=1, dev=1e-7, exchange_s=None):
    extra = {"processes": processes, "replicas": 2 if variant != "single_all" else 1,
             "max_rel_dev_vs_single": dev, "baseline": "single_1t", "equivalence_steps": 10,
             "max_rel_dev_vs_single_first": dev / 10}
    if exchange_s is not None:
        extra["exchange"] = {"1": {"median_s": 1e-4}, str(weights.lenet_parameter_count()): {"median_s": exchange_s}}
    ref = list(np.linspace(3.0, 1.0, params.PARITY_STEPS))
    rec = records.make(framework=framework, framework_version="1.0", variant=variant, model="lenet_dp",
                       device="cpu", device_name=CPU, threads=2, params={"quick": True, "batch_size": 64},
                       losses=ref + [1.0] * 20, reference=ref, tolerance=1e-3, probe_summary=_summary(median),
                       extra=extra)
    return records.write(rec, folder)


def test_data_parallel_table(book):
    """The scaling chapter's engines become one row each, against their framework's one-process run."""
    build_dir, committed = book
    folder = build_dir / "records" / "scaling"
    _write_dp(folder, "pytorch", "single_all", 0.050)
    _write_dp(folder, "pytorch", "single_1t", 0.080)
    _write_dp(folder, "pytorch", "ddp", 0.040, processes=2, dev=4e-7, exchange_s=0.003)
    _write_dp(folder, "mxnet", "kvstore_device", 0.060, dev=6e-7)        # no one-process run: NaN ratio
    assert len(compare.load(build_dir, committed)) == 6               # the shared models only
    dp = compare.load_data_parallel(build_dir, committed)
    assert len(dp) == 4
    table = compare.data_parallel_table(dp)
    assert list(table["framework"]) == ["PyTorch", "MXNet"]
    pt, mx = table.iloc[0], table.iloc[1]
    assert pt["engine"].startswith("torch.distributed") and pt["processes"] == 2 and pt["steps"] == 40
    assert pt["step / 1 process"] == pytest.approx(0.8) and pt["gradient exchange (ms)"] == pytest.approx(3.0)
    assert pt["max rel. dev. from 1 process"] == pytest.approx(4e-7)
    assert pt["max rel. dev., first 10 steps"] == pytest.approx(4e-8)          # the equivalence check
    assert "within 4.0e-08 (relative) over the first 10 steps" in verdicts.distributed_claim(table)[0]
    assert np.isnan(mx["1 process (ms)"]) and np.isnan(mx["gradient exchange (ms)"])
    assert compare.data_parallel_table(compare.load_data_parallel(build_dir / "nothing", committed)).empty


def test_package_facts_from_metadata():
    facts = compare.package_facts("numpy")
    assert facts["version"] == np.__version__ and facts["wheel tag"]
    assert compare.package_facts("no-such-package-here")["version"] == "not installed"


def test_words():
    assert compare.words([]) == "none" and compare.words(["A"]) == "A"
    assert compare.words(["A", "B", "C"]) == "A, B and C"


# ----------------------------------------------------------- control flow


def test_reference_gradient_matches_finite_differences():
    xs, w, h0 = cf.problem(0, 12)
    limit = cf.early_exit_limit(xs, w, h0)
    for lim in (np.inf, limit):
        loss, grad, steps = cf.reference(xs, w, h0, lim)
        eps, (i, j) = 1e-6, (3, 5)
        w2 = w.copy()
        w2[i, j] += eps
        up = cf.reference(xs, w2, h0, lim)[0]
        w2[i, j] -= 2 * eps
        down = cf.reference(xs, w2, h0, lim)[0]
        assert grad[i, j] == pytest.approx((up - down) / (2 * eps), rel=1e-6)
    assert 0 < cf.reference(xs, w, h0, limit)[2] < len(xs) == cf.reference(xs, w, h0)[2]


def test_theano_loop_needs_its_flags(monkeypatch):
    monkeypatch.delenv("THEANO_FLAGS", raising=False)
    with pytest.raises(RuntimeError, match="THEANO_FLAGS is not set"):
        loops.build("theano")
    with pytest.raises(ValueError, match="framework must be one of"):
        loops.build("caffe")


# ------------------------------------------------------- the chapter itself


def test_chapter_reports_missing_frameworks_instead_of_failing(book):
    """The chapter, executed on the fixture records (no MXNet, no Theano), names them and builds its files."""
    build_dir, committed = book
    shutil.rmtree(build_dir / "records" / "mxnet")
    folders = [str(p) for p in compare.record_folders(build_dir, committed) if p != committed]  # not the empty one
    res = build.run_chapter("comparison", {"quick": True, "records_dirs": folders}, build_dir, ROOT)
    assert res.ok, res.error
    import nbformat
    nb = nbformat.read(res.notebook, 4)
    text = json.dumps(nb.dict())
    expected = compare.expected(build.toc_files(ROOT))
    gone = compare.words(compare.NAMES[f] for f in expected if f not in ("pytorch", "tensorflow"))
    assert f"**Missing:** {gone} have no records in this build" in text
    assert "Traceback" not in text and "KeyError" not in text
    assert "No GPU record is kept" in text
    downloads = build_dir / "downloads" / "comparison"
    speed = (downloads / "speed.csv").read_text()
    assert "PyTorch" in speed and "TensorFlow" in speed and "MXNet" not in speed
    for name in ("parity.png", "speed.png", "memory.png", "warmup.png", "control_flow.png", "claims_2016.csv",
                 "feature_matrix.csv", "other_systems.csv", "race.csv", "tuning.csv", "race.png", "tuning.png"):
        assert (downloads / name).stat().st_size > 0, name
    assert "No framework chapter recorded a race to 99% in this build." in text
    assert "1 main run trained otherwise" in text


def test_quick_book_comparison_page(quick_book):
    """In the quick book, the comparison page links its downloads and names the fastest framework."""
    res = quick_book.chapter("comparison")
    assert res.ok, res.error
    assert quick_book.html is not None, "the quick build ran a subset of chapters: no HTML"
    page = (quick_book.html / "chapters" / "comparison.html").read_text()
    links = [l for l in re.findall(r'href="([^"]+\.(?:csv|png))"', page) if "_downloads" in l]
    assert len(links) >= 20
    for link in links:
        assert (quick_book.html / "chapters" / link).resolve().is_file(), link
    # the 2016 distributed-training claim is answered from the scaling chapter's measured runs
    import pandas as pd
    downloads = quick_book.build_dir / "downloads" / "comparison"
    dp = pd.read_csv(downloads / "data_parallel.csv")
    assert set(dp["framework"]) == {"PyTorch", "TensorFlow", "MXNet"}
    assert set(dp.loc[dp["processes"] > 1, "framework"]) == {"PyTorch", "TensorFlow", "MXNet"}
    # equal to one process over the first steps, where equality is meaningful (scaling chapter)
    first = [c for c in dp.columns if c.startswith("max rel. dev., first")]
    assert len(first) == 1 and (dp[first[0]] < 1e-5).all() and (dp["step / 1 process"] > 0).all()
    claims = pd.read_csv(downloads / "claims_2016.csv")
    row = claims[claims["claim (2016)"].str.startswith("Multi-GPU and distributed")].iloc[0]
    assert row["checked today"].startswith("Measured in the Scaling out chapter") and "outdated" in row["verdict"]
    df = compare.load(quick_book.build_dir)
    main, _ = verdicts.comparable_runs(df)
    sentence = verdicts.speed_sentence(compare.speed_table(main), "lenet", "cpu")
    assert sentence in " ".join(re.sub(r"<[^>]+>", "", page).split()).replace("&#39;", "'")


# ------------------------------------------- what the framework chapters record for it

LOOP_COST = {"pytorch": [], "tensorflow": ["trace"], "mxnet": ["hybridize"], "theano": ["compile_cold"]}


@pytest.mark.parametrize("chapter", sorted(LOOP_COST))
def test_each_framework_chapter_records_its_loop(quick_book, chapter):
    """The chapter's own control-flow section ran its loop, checked it against NumPy and kept it."""
    rec = quick_book.records(chapter, models=("recurrence",))[("recurrence", "loop")]
    assert rec["framework"] == chapter and rec["device"] == "cpu" and rec["parity"]["gates"]
    assert rec["extra"]["lengths"] == list(cf.LENGTHS[True]) and rec["parity"]["passed"]
    checks = rec["extra"]["checks"]
    plain = [c for c in checks if c["construct"] == "plain loop"]
    assert len(plain) == len(cf.LENGTHS[True]) and all(c["agrees"] for c in plain)
    assert [c["kind"] for c in rec["one_off"]] == LOOP_COST[chapter]
    steps = sum(cf.LENGTHS[True])
    if chapter == "pytorch":
        assert rec["extra"]["body_calls"] == steps                 # Python runs the body at every step
    else:
        assert rec["extra"]["body_calls"] < steps                  # only while the graph was built
    assert [t["T"] for t in rec["extra"]["timings"]] == list(cf.LENGTHS[True])
    assert rec["timing"]["n"] == cf.REPEATS[True]
    # every check the chapter ran: the plain loop and the early exit, in every variant, against NumPy
    for c in checks:
        what = f"{chapter} {c['variant']} {c['construct']} T={c['T']}"
        assert c["steps"] == c["reference steps"] and c["loss deviation"] < 1e-12, what
        if c["construct"] == "plain loop" or not (chapter == "mxnet" and c["variant"] == "graph"):
            assert c["agrees"] and c["gradient deviation"] < 1e-12, what
    exits = [c for c in checks if c["construct"] == "early exit"]
    assert len(exits) >= len(cf.LENGTHS[True]) and all(c["steps"] < c["T"] for c in exits)   # it stops early
    if chapter == "mxnet":           # the symbolic while_loop's gradient is wrong; the imperative one is right
        assert any(c["variant"] == "imperative" and c["agrees"] for c in exits)


def test_the_pytorch_chapter_keeps_the_machines_matmul_rate(quick_book):
    recs = quick_book.records("pytorch", models=("matmul",))
    assert set(recs) == {("matmul", "numpy"), ("matmul", "torch")}
    for (_, backend), rec in recs.items():
        assert rec["losses"] == [] and rec["extra"]["n"] == peak.BUILD[True][0]
        assert rec["timing"]["n"] == peak.BUILD[True][1] and rec["extra"]["gflops"] > 0.05
        assert rec["cpu"] == records.cpu_name() and rec["threads"] == rec["params"]["threads"]


def test_chapter_shows_cpu_and_gpu_side_by_side(book):
    """FIXTURE GPU records (CPU fixture records with their device fields changed) beside the CPU ones:
    the chapter names both devices, and the GPU claims stay untested with PyTorch alone on the GPU."""
    build_dir, committed = book
    gpu = "FIXTURE GPU (not a real run)"
    src = build_dir / "records" / "pytorch"
    for path in sorted(src.glob("*.json")):
        rec = records.read(path)
        rec.update(device="cuda", device_name=gpu)
        rec["memory"]["device_peak_bytes"] = 64 * 2 ** 20
        records.write(rec, committed / "fixture_gpu" / "pytorch")
    folders = [str(p) for p in compare.record_folders(build_dir, committed)]
    res = build.run_chapter("comparison", {"quick": True, "records_dirs": folders}, build_dir, ROOT)
    assert res.ok, res.error
    import nbformat
    import pandas as pd
    text = json.dumps(nbformat.read(res.notebook, 4).dict())
    assert f"Records from {gpu} are kept beside this build's CPU runs" in text
    # PyTorch's fixture LeNet trained 3 epochs, the others' 2: each device ranks the setting most
    # frameworks share there, so on the GPU PyTorch's LeNet is compared (with itself alone)
    assert f"2-layer net on {gpu}: only PyTorch has a comparable run" in text
    assert f"LeNet on {gpu}: only PyTorch has a comparable run" in text
    assert "LeNet on the CPU, from fastest to slowest" in text
    claims = pd.read_csv(build_dir / "downloads" / "comparison" / "claims_2016.csv").set_index("claim (2016)")
    assert claims.loc["Single-GPU speed: Theano good, TensorFlow average, MXNet excellent", "verdict"] == \
        f"untested on {gpu}"
