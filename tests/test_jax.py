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
from rosetta.core import control_flow, params, reference, records, training, weights

from conftest import require_env, ROOT, check_float64_record, check_lenet_record

CHAPTER = "jax"
TWO_LAYER = ("grad", "jit", "optax")


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
    cfg = params.resolve(**jax_records[("lenet", "jit_optax")]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    return reference.lenet_losses(weights.lenet(cfg.seed), training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS),
                                  params.LENET_LR, params.LENET_MOMENTUM)


def value(glued, name):
    return float(glued[name]["text/plain"])


def test_every_variant_recorded(jax_records):
    expected = {("two_layer", v) for v in TWO_LAYER} | {("lenet", "jit_optax"), ("lenet", "float64")}
    if jax_records[("lenet", "jit_optax")]["device"] == "cuda":
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
    for key in (("two_layer", "jit"), ("two_layer", "optax"), ("lenet", "jit_optax"), ("lenet", "float64")):
        costs = {c["kind"]: c["seconds"] for c in jax_records[key]["one_off"]}
        assert set(costs) == {"trace", "compile_cold"} <= set(records.ONE_OFF_KINDS), key
        assert all(s > 0 for s in costs.values()), key
    lenet = jax_records[("lenet", "jit_optax")]
    compile_s = {c["kind"]: c["seconds"] for c in lenet["one_off"]}["compile_cold"]
    assert lenet["timing"]["first_step_s"] < compile_s, "the first step compiled again"


def test_lenet_record(jax_records, lenet_reference):
    rec = jax_records[("lenet", "jit_optax")]
    check_lenet_record(rec, lenet_reference, "jit_optax")
    assert rec["parity"]["gates"] is False and rec["losses"][-1] < 0.5 * rec["losses"][0]


def test_float64_run_is_the_reference_program(jax_records, lenet_reference):
    """Optax applies the learning rate and momentum in the parameters' own type: float64 matches to rounding."""
    check_float64_record(jax_records[("lenet", "float64")], lenet_reference, tol=1e-12)


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
    for var in ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_PLATFORMS"):
        monkeypatch.delenv(var, raising=False)
    fw_jax.setup(1)
    import os
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert os.environ["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"] and "JAX_PLATFORMS" not in os.environ
    fw_jax.setup(2, device="cpu")
    assert os.environ["JAX_PLATFORMS"] == "cpu" and "jax" not in sys.modules


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
