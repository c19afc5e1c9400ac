"""The JAX chapter, executed in quick mode by the book's own build (kernel ``rosetta-pytensor``).

The record tests check the chapter's records against references recomputed here; the notebook
tests read what the chapter's own cells computed (glued values) for the measurements that
write no record: vmap against a loop, and the loops against the control-flow reference.
"""
from pathlib import Path
import subprocess
import time

import nbformat
import pytest

from rosetta.book import build, colab
from rosetta.compare import race as compare_race
from rosetta.core import control_flow, params, reference, records, schedule, training, tuning, weights

from conftest import require_env, ROOT, check_float64_record, check_lenet_record

CHAPTER = "jax"
TWO_LAYER = ("grad", "jit", "optax")
SETTINGS = ("jit_optax", "donate", "nhwc")        # the candidates for the tuned setting


@pytest.fixture(scope="module")
def jax_records(quick_book):
    return quick_book.records(CHAPTER)


@pytest.fixture(scope="module")
def glued(quick_book):
    res = quick_book.chapter(CHAPTER)
    assert res.ok, res.error
    return colab.glued(nbformat.read(res.notebook, as_version=4))


@pytest.fixture(scope="module")
def lenet_reference(jax_records):
    cfg = params.resolve(**jax_records[("lenet", "tuned")]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    return reference.lenet_losses(weights.lenet(cfg.seed), training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS),
                                  params.LENET_LR, params.LENET_MOMENTUM)


def value(glued, name):
    return float(glued[name]["text/plain"])


def test_every_variant_recorded(jax_records):
    expected = ({("two_layer", v) for v in TWO_LAYER} | {("lenet", "tuned"), ("lenet", "float64"), ("lenet", "scan4")}
                | {("lenet", v) for v in SETTINGS} | {("lenet_race", f"race_seed{s}") for s in schedule.seeds(True)})
    if jax_records[("lenet", "tuned")]["device"] == "cuda":
        expected.add(("lenet", "fast_matmul"))           # JAX's default GPU precision, measured
    assert set(jax_records) == expected
    for rec in jax_records.values():
        assert rec["framework"] == "jax" and rec["framework_version"].startswith("0.")
        assert rec["device"] in ("cpu", "cuda") and rec["device_name"]
        assert rec["threads"] == rec["params"]["threads"] >= 1 and rec["params"]["quick"] is True
        t = rec["timing"]
        assert 0 < t["min_s"] <= t["q1_s"] <= t["median_s"] <= t["q3_s"] <= t["max_s"]
        assert t["n"] == len(rec["losses"]) - params.WARMUP_STEPS
        assert (rec["memory"]["device_peak_bytes"] is None) == (rec["device"] == "cpu")


@pytest.mark.parametrize("variant", TWO_LAYER)
def test_two_layer_follows_the_reference(jax_records, variant):
    rec = jax_records[("two_layer", variant)]
    x, y, w1, w2 = weights.two_layer(rec["params"]["seed"])
    ref = reference.two_layer_losses(x, y, w1, w2, params.TWO_LAYER_LR, params.TWO_LAYER_STEPS)
    assert len(rec["losses"]) == params.TWO_LAYER_STEPS >= 50
    assert rec["parity"]["tolerance"] == params.TWO_LAYER_TOL and rec["parity"]["passed"] and rec["parity"]["gates"]
    assert reference.max_rel_dev(rec["losses"], ref) <= params.TWO_LAYER_TOL
    assert rec["losses"][-1] < 1e-3 * rec["losses"][0]


def test_jitted_runs_record_trace_and_compile_apart_from_the_steps(jax_records):
    assert jax_records[("two_layer", "grad")]["one_off"] == []
    for key in (("two_layer", "jit"), ("two_layer", "optax"), ("lenet", "tuned"), ("lenet", "float64"),
                *[("lenet", v) for v in (*SETTINGS, "scan4")], ("lenet_race", "race_seed0")):
        costs = {c["kind"]: c["seconds"] for c in jax_records[key]["one_off"]}
        assert set(costs) == {"trace", "compile_cold"} <= set(records.ONE_OFF_KINDS), key
        assert all(s > 0 for s in costs.values()), key
    lenet = jax_records[("lenet", "tuned")]
    compile_s = {c["kind"]: c["seconds"] for c in lenet["one_off"]}["compile_cold"]
    assert lenet["timing"]["first_step_s"] < compile_s, "the first step compiled again"


def test_lenet_record(jax_records, lenet_reference):
    rec = jax_records[("lenet", "tuned")]
    check_lenet_record(rec, lenet_reference, "tuned")
    assert rec["parity"]["gates"] is False and rec["losses"][-1] < 0.5 * rec["losses"][0]


def test_float64_run_is_the_reference_program(jax_records, lenet_reference):
    """Optax applies the learning rate and momentum in the parameters' own type: float64 matches to rounding."""
    check_float64_record(jax_records[("lenet", "float64")], lenet_reference, tol=1e-12)


def test_the_main_run_uses_the_fastest_setting_that_keeps_parity(jax_records, lenet_reference, glued):
    """Every setting trains from the shared weights over the same batches; the tuned one is
    tuning.choose's pick over the steps float32 can follow, and the main run uses it."""
    decided = int(value(glued, "jx_decided_steps"))
    assert 1 <= decided <= params.PARITY_STEPS
    candidates = [jax_records[("lenet", v)] for v in SETTINGS]
    scan = jax_records[("lenet", "scan4")]
    n = len(candidates[0]["losses"])
    for rec in [*candidates, scan]:
        assert len(rec["losses"]) == n >= params.PARITY_STEPS and rec["test_accuracy"] is None
        assert rec["parity"]["max_rel_dev"] == pytest.approx(
            reference.max_rel_dev(rec["losses"][:params.PARITY_STEPS], lenet_reference))
        assert rec["parity"]["gates"] is False
    assert all(r["extra"]["candidate"] for r in candidates) and not scan["extra"]["candidate"]
    assert scan["extra"]["steps_per_call"] == 4 and n % 4 == 0
    # the same program computes the same losses, whatever the buffers it writes into
    assert candidates[1]["losses"] == candidates[0]["losses"]
    main = jax_records[("lenet", "tuned")]
    summary = main["extra"]["tuning"]
    best = tuning.choose(candidates, decided)
    assert summary == tuning.summary(jax_records[("lenet", "jit_optax")], best, candidates)
    assert summary["measured"] == len(candidates)                     # scan4 is no candidate
    assert summary["default"] == "jit_optax" and summary["tuned"] == main["extra"]["setting"] == best["variant"]
    assert tuning.qualifies(best, decided)
    assert all(best["timing"]["median_s"] <= r["timing"]["median_s"] for r in candidates if tuning.qualifies(r, decided))


def test_race_records_follow_the_schedule_in_optax_momentum_form(quick_book, jax_records):
    """One race record per seed, the schedule's rate at every step, one compilation, parity of the first
    steps against the reference in PyTorch's momentum form (Optax's), told truly."""
    main = jax_records[("lenet", "tuned")]
    seeds = schedule.seeds(True)
    race = compare_race.load(folders=[Path(quick_book.chapter(CHAPTER).records[0]).parent])
    assert sorted(race["extra.seed"].astype(int)) == list(seeds)
    check = compare_race.schedule_check(race)
    assert check["same"] and check["records"] == len(seeds), check["off"]
    for s in seeds:
        rec = jax_records[("lenet_race", f"race_seed{s}")]
        cfg = params.resolve(**rec["params"])
        assert cfg.seed == s
        per_epoch = cfg.train_subset // cfg.batch_size
        rates = schedule.rates(per_epoch, cfg.epochs)
        x = rec["extra"]
        assert x["momentum_form"] == "pytorch" and x["setting"] == main["extra"]["setting"]
        assert x["rates"] == pytest.approx(rates[:len(rec["losses"])].tolist(), rel=1e-12)
        assert x["compilations_during_race"] == 0
        assert [c["kind"] for c in rec["one_off"]] == ["trace", "compile_cold"]
        every = schedule.eval_every(per_epoch)
        assert [e["step"] for e in x["evals"]][:-1] == list(range(every, len(rec["losses"]), every))[:len(x["evals"]) - 1]
        assert rec["test_accuracy"] == x["evals"][-1]["accuracy"]
        assert x["reached"] == (x["evals"][-1]["accuracy"] >= schedule.TARGET)
        if x["reached"]:
            assert x["time_to_target_s"] == x["evals"][-1]["train_s"]
        else:
            assert x["time_to_target_s"] is None and len(rec["losses"]) == len(rates)
        x_train, y_train, _, _ = training.mnist_data(cfg)
        ref = reference.lenet_losses(weights.lenet(s), training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS),
                                     rates[:params.PARITY_STEPS], params.LENET_MOMENTUM, "pytorch")
        dev = reference.max_rel_dev(rec["losses"][:params.PARITY_STEPS], ref)
        assert rec["parity"]["max_rel_dev"] == pytest.approx(dev)
        assert rec["parity"]["passed"] == (dev <= params.LENET_TOL) and rec["parity"]["gates"] is False
        # the first step comes before any rate is applied: the same loss as the reference's
        assert rec["losses"][0] == pytest.approx(ref[0], rel=1e-5)


def test_vmap_per_example_gradients_match_the_loop_and_the_batch_gradient(glued):
    assert value(glued, "jx_vmap_gap") < 1e-5
    assert value(glued, "jx_vmap_mean_gap") < 1e-5
    assert value(glued, "jx_vmap_ms") > 0 and value(glued, "jx_vmap_loop_ms") > 0


def test_loops_agree_with_the_control_flow_reference(glued):
    n = value(glued, "jx_cf_n")
    assert n == 2 * 2 * 3                      # (lax, python_loop) x (plain, early exit) x 3 lengths
    assert value(glued, "jx_cf_agree") == n
    assert value(glued, "jx_cf_worst") <= control_flow.TOLERANCE


def test_chapter_shows_no_warnings(quick_book):
    res = quick_book.chapter(CHAPTER)
    assert res.ok, res.error
    for cell in nbformat.read(res.notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            assert out.get("name") != "stderr", f"stderr in the book: {out.get('text', '')[:300]}"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert "Warning" not in text and "WARNING" not in text, text[:300]


def test_setup_is_done_before_jax_starts(monkeypatch):
    """No GPU preallocation, full-precision matmuls, XLA's threads; 'cpu' hides GPUs (imports no JAX)."""
    import sys
    from rosetta.frameworks import jax as fw_jax
    for var in ("PJRT_NPROC", "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_PLATFORMS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    fw_jax.setup(1)
    import os
    # deterministic GPU kernels, added to the flags already set (once, however often setup runs)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true"
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert os.environ["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
    assert os.environ["PJRT_NPROC"] == "1" and "JAX_PLATFORMS" not in os.environ
    fw_jax.setup(2, device="cpu")
    assert os.environ["PJRT_NPROC"] == "2" and os.environ["XLA_FLAGS"].count("deterministic") == 1
    assert os.environ["JAX_PLATFORMS"] == "cpu" and "jax" not in sys.modules
    with pytest.raises(params.ParameterError, match="at least one thread"):
        fw_jax.setup(0)


THREADS_PROGRAM = """
import collections, os, sys
from rosetta.frameworks import jax as fw
fw.setup(int(sys.argv[1]), device="cpu")
import jax, jax.numpy as jnp
from jax import lax
x, w, m = jnp.ones((64, 20, 24, 24)), jnp.ones((50, 20, 5, 5)), jnp.ones((800, 800))
f = jax.jit(lambda x, w: jax.grad(lambda w: lax.conv_general_dilated(x, w, (1, 1), "VALID").sum())(w).sum()
            + (m @ m).sum())
f(x, w).block_until_ready()
def cpu_ticks():
    out = {}
    for t in os.listdir("/proc/self/task"):
        fields = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
        out[t] = int(fields[11]) + int(fields[12])
    return out
before = cpu_ticks()
for _ in range(30):
    f(x, w).block_until_ready()
used = sorted((v - before.get(t, 0) for t, v in cpu_ticks().items()), reverse=True)
print(sum(used), *used[:4])
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_xla_computes_on_the_chapter_thread_count(tmp_path, threads):
    """The chapter's thread count is XLA's: with one thread, one thread does the work (the XLA flags the
    book used before, ``--xla_cpu_multi_thread_eigen=false``, left it spread over every core);
    with two, two share it. CPU time per thread, from /proc, is what a busy machine cannot blur."""
    import os
    python = ROOT / ".envs" / "pytensor" / "bin" / "python"
    require_env(python, "PyTensor environment, which holds JAX")
    if os.cpu_count() < 2 or not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux's /proc and two cores")
    out = subprocess.run([str(python), "-c", THREADS_PROGRAM, str(threads)], capture_output=True, text=True,
                         timeout=300, env={"PYTHONPATH": str(Path(control_flow.__file__).resolve().parents[2]),
                                           "ROSETTA_ROOT": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    total, *top = map(int, out.stdout.split())
    assert total > 50, f"too little work to tell ({total} ticks)"
    busy = [t for t in top if t > 0.1 * total]
    assert (len(busy) == 1) if threads == 1 else (len(busy) >= 2), \
        f"{threads} thread(s) asked for, CPU ticks per thread {top} of {total}"


def test_bad_parameter_fails_before_any_training(tmp_path):
    t0 = time.perf_counter()
    res = build.run_chapter(CHAPTER, {"epochs": "three"}, tmp_path / "_build", ROOT, build.chapter_kernel(ROOT, CHAPTER))
    assert not res.ok and "ParameterError" in res.error and "'epochs' must be a whole number" in res.error
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "_build" / "records" / CHAPTER).exists()


JAX_PROGRAM = """
from rosetta.frameworks import jax as fw
fw.setup(1, device="cpu")
import jax, jax.numpy as jnp
from rosetta.core import control_flow as cf
from rosetta.frameworks import control_flow as loops
dev = fw.resolve_device("auto")
wait = fw.sync(dev)
x = jnp.ones(3) * 2
assert wait() is None and wait(x) is x
assert jax.config.jax_default_matmul_precision == "highest"
loop = loops.build("jax")
xs, w, h0 = cf.problem(0, 8)
checks = [cf.check(loop, 0, 8), cf.check(loop, 0, 8, cf.early_exit_limit(xs, w, h0)),
          cf.check(loop, 0, 8, cf.early_exit_limit(xs, w, h0), "python_loop")]
print(fw.device_type(dev), fw.device_memory(dev), all(c["agrees"] for c in checks), checks[1]["steps"] < 8)
"""


def test_jax_module_and_loops_in_their_environment(tmp_path):
    """The interface on the CPU, the precision setting, and the recurrence against the NumPy reference."""
    python = ROOT / ".envs" / "pytensor" / "bin" / "python"
    require_env(python, "PyTensor environment, which holds JAX")
    out = subprocess.run([str(python), "-c", JAX_PROGRAM], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(Path(control_flow.__file__).resolve().parents[2]), "ROSETTA_ROOT": str(ROOT),
                              "ROSETTA_BUILD": str(tmp_path / "_build"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["cpu", "None", "True", "True"]


MNIST_PROGRAM = """
import hashlib
from rosetta.core import mnist
print(" ".join(hashlib.sha256(a.tobytes()).hexdigest() for a in mnist.load()))
"""


def test_the_chapter_environment_sees_the_same_images(tmp_path):
    """NumPy 2 (the JAX chapter's) standardises MNIST to the same float32 images as NumPy 1 (the book's)."""
    import hashlib
    from rosetta.core import mnist
    python = ROOT / ".envs" / "pytensor" / "bin" / "python"
    require_env(python, "PyTensor environment, which holds JAX")
    out = subprocess.run([str(python), "-c", MNIST_PROGRAM], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(Path(control_flow.__file__).resolve().parents[2]), "ROSETTA_ROOT": str(ROOT),
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [hashlib.sha256(a.tobytes()).hexdigest() for a in mnist.load()]
