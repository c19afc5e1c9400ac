"""The MXNet chapter: its quick-mode records, its rendered output, and its helper module.

The record tests read what the chapter wrote when the session's quick build ran it
(``quick_book``) and check it against a reference recomputed here, not against the
reference the record carries. The direct tests run MXNet in a fresh interpreter (MXNet's
OpenMP set-up is fixed when it loads, and it must not share a process with the other
frameworks the test session imports).
"""
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import check_float64_record, check_lenet_record

from rosetta.core import params, records, reference, training, weights

CHAPTER = "mxnet"
ROOT = Path(__file__).resolve().parents[1]
TWO_LAYER = ("ndarray", "autograd", "symbol")
LENET = ("gluon", "gluon_hybrid", "module")
MAIN = "gluon_hybrid"
SPEED = ("fresh_hybrid", "static_alloc", "naive_engine", "default_threads", "passive_wait", "no_onednn")
NOISE = ("Subgraph backend", "IProgress", "Warning", "warnings.warn", "MKLDNN_ENABLED flag", "Traceback")
MXNET_LOG = re.compile(r"\[\d\d:\d\d:\d\d\] \S+\.(cc|h):\d+")


@pytest.fixture(scope="module")
def mx_records(quick_book):
    return quick_book.records(CHAPTER)


@pytest.fixture(scope="module")
def lenet_reference(mx_records):
    """The reference's first LeNet losses for the chapter's parameters, computed here."""
    cfg = params.resolve(**mx_records[("lenet", MAIN)]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    batches = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
    return reference.lenet_losses(weights.lenet(cfg.seed), batches, params.LENET_LR, params.LENET_MOMENTUM)


def two_layer_reference(seed):
    return reference.two_layer_losses(*weights.two_layer(seed), params.TWO_LAYER_LR, params.TWO_LAYER_STEPS)


def run_python(code, env_changes=None, timeout=300):
    """Run ``code`` in a fresh interpreter with the environment changed; returns the process."""
    env = dict(os.environ)
    for key, value in (env_changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


# ------------------------------------------------------------ the chapter's records

def test_every_variant_has_a_record(mx_records):
    expected = ({("two_layer", v) for v in TWO_LAYER} | {("lenet", v) for v in LENET}
                | {("lenet", v) for v in SPEED} | {("lenet", "float64")})
    assert set(mx_records) == expected


def test_records_have_the_shared_fields(mx_records):
    devices = {r["device"] for r in mx_records.values()}
    assert devices == {"cpu"}, f"the MXNet chapter always runs on the CPU here, records say {devices}"
    for (model, variant), rec in mx_records.items():
        missing = [k for k in records.REQUIRED if k not in rec]
        assert not missing, f"{model}/{variant} lacks {missing}"
        assert rec["framework"] == "mxnet" and rec["framework_version"] == "1.9.1"
        assert rec["device_name"] == records.cpu_name()
        assert rec["params"]["quick"] is True
        assert rec["threads"] == rec["params"]["threads"] >= 1
        t = rec["timing"]
        assert 0 < t["min_s"] <= t["q1_s"] <= t["median_s"] <= t["q3_s"] <= t["max_s"]
        assert t["n"] == len(rec["losses"]) - params.WARMUP_STEPS == len(t["samples_s"]) - params.WARMUP_STEPS
        assert rec["memory"]["peak_rss_bytes"] >= rec["memory"]["baseline_rss_bytes"] > 0
        assert rec["memory"]["device_peak_bytes"] is None


@pytest.mark.parametrize("variant", TWO_LAYER)
def test_two_layer_follows_the_reference(mx_records, variant):
    rec = mx_records[("two_layer", variant)]
    ref = two_layer_reference(rec["params"]["seed"])
    assert len(rec["losses"]) == params.TWO_LAYER_STEPS >= 50
    assert rec["parity"]["tolerance"] == params.TWO_LAYER_TOL and rec["parity"]["passed"]
    assert reference.max_rel_dev(rec["losses"], ref) <= params.TWO_LAYER_TOL
    assert rec["losses"][-1] < 1e-3 * rec["losses"][0], "the loss should fall by orders of magnitude"


def test_symbol_and_ndarray_programs_agree(mx_records):
    """The declarative program (bound executor) and the imperative ones take the same steps."""
    symbol = np.asarray(mx_records[("two_layer", "symbol")]["losses"])
    for variant in ("ndarray", "autograd"):
        other = np.asarray(mx_records[("two_layer", variant)]["losses"])
        assert np.max(np.abs(symbol - other) / np.abs(other)) <= params.TWO_LAYER_TOL, variant


@pytest.mark.parametrize("variant", LENET)
def test_lenet_follows_the_reference_and_learns(mx_records, lenet_reference, variant):
    rec = mx_records[("lenet", variant)]
    check_lenet_record(rec, lenet_reference, variant)


def test_only_the_main_lenet_trains_all_epochs(mx_records):
    main = mx_records[("lenet", MAIN)]["params"]
    for variant in set(LENET) - {MAIN}:
        p = mx_records[("lenet", variant)]["params"]
        assert p["epochs"] == min(main["epochs"], 1)
        assert {k: v for k, v in p.items() if k != "epochs"} == {k: v for k, v in main.items() if k != "epochs"}


def test_the_pinned_thread_count_is_the_one_mxnet_used(mx_records):
    for model, variant in [("two_layer", v) for v in TWO_LAYER] + [("lenet", v) for v in LENET]:
        rec = mx_records[(model, variant)]
        env = rec["extra"]["mxnet"]
        assert env["omp_threads"] == rec["threads"]
        assert env["busy_threads"] == rec["threads"], f"{model}/{variant}: {env}"
        assert env["engine"] == "ThreadedEnginePerDevice" and env["onednn"] is True


@pytest.mark.parametrize("variant", SPEED)
def test_speed_settings_keep_the_reference_losses(mx_records, lenet_reference, variant):
    rec = mx_records[("lenet", variant)]
    extra = rec["extra"]
    assert extra["fresh_process"] is True and extra["steps"] == len(rec["losses"]) >= params.PARITY_STEPS
    assert rec["test_accuracy"] is None
    assert reference.max_rel_dev(rec["losses"][:params.PARITY_STEPS], lenet_reference) <= params.LENET_TOL
    assert extra["load_avg_1min"] >= 0


def test_speed_settings_took_effect(mx_records):
    """Each fresh process ran with the setting it reports, and MXNet noticed."""
    threads = mx_records[("lenet", MAIN)]["threads"]
    env = {v: mx_records[("lenet", v)]["extra"] for v in SPEED}
    assert env["naive_engine"]["mxnet"]["engine"] == "NaiveEngine"
    assert all(env[v]["mxnet"]["engine"] == "ThreadedEnginePerDevice" for v in SPEED if v != "naive_engine")
    assert env["no_onednn"]["mxnet"]["onednn"] is False
    assert all(env[v]["mxnet"]["onednn"] is True for v in SPEED if v != "no_onednn")
    assert env["static_alloc"]["hybridize"] == {"static_alloc": True, "static_shape": True}
    assert env["default_threads"]["mxnet"]["omp_num_threads"] is None
    for v in SPEED:
        if v != "default_threads":
            assert env[v]["mxnet"]["omp_num_threads"] == str(threads)
            assert env[v]["mxnet"]["busy_threads"] == threads, v
    if platform.machine() in ("x86_64", "AMD64"):  # MXNet 1.9 takes half the cores on x86
        assert env["default_threads"]["mxnet"]["busy_threads"] == max(1, params.default_threads() // 2)


def test_rendered_chapter_is_quiet_and_glues_every_number(quick_book, mx_records):
    nb = json.loads(quick_book.chapter(CHAPTER).notebook.read_text())
    text, glued = [], set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                assert out["name"] == "stdout", f"stderr output in the chapter: {''.join(out['text'])[:300]}"
                text.append("".join(out["text"]))
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                glued.add(name)
            for mime, value in out.get("data", {}).items():
                if not mime.startswith("image/"):
                    text.append(value if isinstance(value, str) else "".join(value))
    joined = "\n".join(text)
    found = [marker for marker in NOISE if marker in joined]
    assert not found, f"MXNet or Python noise in the executed chapter: {found}"
    assert not MXNET_LOG.search(joined), f"an MXNet log line in the chapter: {MXNET_LOG.search(joined).group(0)}"
    source = (ROOT / "chapters" / f"{CHAPTER}.md").read_text()
    used = set(re.findall(r"\{glue:(?:text|figure)\}`?\s*(\w+)", source)) | set(re.findall(r"```\{glue:figure\} (\w+)", source))
    assert used and all(name.startswith("mx_") for name in used)
    assert used <= glued, f"the chapter uses names it never glued: {sorted(used - glued)}"


# ------------------------------------------------------- the helper module, directly

def test_importing_mxnet_through_the_helper_is_quiet_and_pins_threads():
    code = """
from rosetta.core import threads
threads.pin(2)
from rosetta.frameworks import mxnet as fw_mxnet
import json, mxnet as mx
env = fw_mxnet.setup(2)
ctx = fw_mxnet.resolve_device("auto")
print(json.dumps({**env, "kind": fw_mxnet.device_type(ctx), "memory": fw_mxnet.device_memory(ctx),
                  "sum": float(mx.nd.ones((2, 2)).sum().asscalar())}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", f"MXNet wrote to stderr: {proc.stderr[:500]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sum"] == 4.0 and out["omp_threads"] == 2 and out["busy_threads"] == 2
    assert out["kind"] == "cpu" and out["memory"] is None and out["onednn"] is True


def test_unpinned_threads_are_refused_and_mxnet_halves_the_cores():
    code = """
import os
from rosetta.frameworks import mxnet as fw_mxnet
print(fw_mxnet.busy_threads())
try:
    fw_mxnet.setup(2)
except RuntimeError as err:
    print("refused:", err)
"""
    proc = run_python(code, {"OMP_NUM_THREADS": None})
    assert proc.returncode == 0, proc.stderr[-2000:]
    busy, refused = proc.stdout.strip().splitlines()[-2:]
    assert refused.startswith("refused:") and "rosetta.core.threads.pin(2)" in refused
    if platform.machine() in ("x86_64", "AMD64"):
        assert int(busy) == max(1, params.default_threads() // 2)


def test_cuda_without_a_gpu_is_a_parameter_error():
    code = """
from rosetta.frameworks import mxnet as fw_mxnet
from rosetta.core import params
assert fw_mxnet.gpu_count() == 0
assert fw_mxnet.resolve_device("cpu").device_type == "cpu"
try:
    fw_mxnet.resolve_device("cuda")
except params.ParameterError as err:
    print(err)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    message = proc.stdout.strip()
    assert "parameter 'device' is 'cuda'" in message and "device='auto' or 'cpu'" in message


def test_symbol_executor_is_sharp_against_the_reference():
    """The chapter's declarative program, run here: it matches the reference, and a learning rate
    1% off does not (so the parity check can fail)."""
    code = """
import json, sys
from rosetta.frameworks import mxnet as fw_mxnet
from rosetta.core import params, weights
import mxnet as mx
from mxnet import nd

def losses(lr):
    names = ("x", "y", "w1", "w2")
    x, y, w1, w2 = (mx.sym.Variable(n) for n in names)
    loss = mx.sym.make_loss(mx.sym.sum(mx.sym.square(mx.sym.dot(mx.sym.relu(mx.sym.dot(x, w1)), w2) - y)))
    args = {n: nd.array(a) for n, a in zip(names, weights.two_layer(0))}
    exe = loss.bind(mx.cpu(), args=args, args_grad={n: nd.zeros(args[n].shape) for n in ("w1", "w2")},
                    grad_req={"x": "null", "y": "null", "w1": "write", "w2": "write"})
    out = []
    for _ in range(params.TWO_LAYER_STEPS):
        value = exe.forward(is_train=True)[0]
        exe.backward()
        for n in ("w1", "w2"):
            exe.arg_dict[n][:] = exe.arg_dict[n] - lr * exe.grad_dict[n]
        out.append(float(value.asscalar()))
    return out

print(json.dumps([losses(params.TWO_LAYER_LR), losses(1.01 * params.TWO_LAYER_LR)]))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    good, off = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = two_layer_reference(0)
    assert reference.check(good, ref, params.TWO_LAYER_TOL) <= params.TWO_LAYER_TOL
    with pytest.raises(reference.ParityError):
        reference.check(off, ref, params.TWO_LAYER_TOL)


def test_float64_run_differs_only_by_float32_hyperparameters(mx_records, lenet_reference):
    """MXNet rounds the learning rate and momentum to float32 even for float64 weights: against a
    reference with both rounded so, the float64 run agrees to rounding (measured 3e-16 and 4e-16)."""
    check_float64_record(mx_records[("lenet", "float64")], lenet_reference, float32_hyperparameters=True)
