"""The TensorFlow chapter: its quick-mode records, its rendered output, and its helper module.

The record tests read what the chapter wrote when the session's quick build ran it
(``quick_book``) and check it against a reference recomputed here, not against the
reference the record carries. The direct tests run the classic TensorFlow 1 program
(graph + session) and the eager program in this process.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import check_float64_record, check_lenet_record

from rosetta.core import params, records, reference, training, weights

CHAPTER = "tensorflow"
TWO_LAYER = ("graph_session", "eager", "function", "keras_fit")
LENET = ("custom_loop", "train_on_batch", "xla", "channels_first")
TUNED = ("xla", "channels_first")
NOISE = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000 ", "W0000 ", "E0000 ",
         "WARNING:tensorflow", "WARNING:absl", "computation placer", "XLA service")


@pytest.fixture(scope="module")
def tf_records(quick_book):
    return quick_book.records(CHAPTER)


@pytest.fixture(scope="module")
def lenet_reference(tf_records):
    """The reference's first LeNet losses for the chapter's parameters, computed here."""
    cfg = params.resolve(**tf_records[("lenet", "custom_loop")]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    batches = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
    return reference.lenet_losses(weights.lenet(cfg.seed), batches, params.LENET_LR, params.LENET_MOMENTUM)


# ------------------------------------------------------------ the chapter's records

def channels_first_trains(tf_records):
    """Channels-first convolutions train on a GPU, and on a CPU only where oneDNN is in use."""
    main = tf_records[("lenet", "custom_loop")]
    return main["device"] == "cuda" or main["extra"]["onednn"]


def test_every_variant_has_a_record(tf_records):
    lenet = [v for v in LENET if v != "channels_first" or channels_first_trains(tf_records)]
    expected = {("two_layer", v) for v in TWO_LAYER} | {("lenet", v) for v in lenet} | {("lenet", "float64")}
    assert set(tf_records) == expected


def test_chapter_says_why_channels_first_has_no_record(quick_book, tf_records):
    nb = json.loads(quick_book.chapter(CHAPTER).notebook.read_text())
    out = "".join(o.get("text", "") for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert ("channels_first: not trained on" in out) != channels_first_trains(tf_records)


def test_records_have_the_shared_fields(tf_records):
    devices = {r["device"] for r in tf_records.values()}
    assert len(devices) == 1 and devices <= {"cpu", "cuda"}, f"records disagree on the device: {devices}"
    for (model, variant), rec in tf_records.items():
        missing = [k for k in records.REQUIRED if k not in rec]
        assert not missing, f"{model}/{variant} lacks {missing}"
        assert rec["framework"] == "tensorflow" and rec["framework_version"].startswith("2.")
        assert rec["device_name"], f"{model}/{variant}: no device name"
        if rec["device"] == "cpu":
            assert rec["device_name"] == records.cpu_name()
        assert rec["params"]["quick"] is True
        assert rec["threads"] == rec["params"]["threads"] >= 1
        t = rec["timing"]
        assert 0 < t["min_s"] <= t["q1_s"] <= t["median_s"] <= t["q3_s"] <= t["max_s"]
        assert t["n"] == len(rec["losses"]) - params.WARMUP_STEPS
        assert rec["memory"]["peak_rss_bytes"] >= rec["memory"]["baseline_rss_bytes"] > 0
        assert (rec["memory"]["device_peak_bytes"] is None) == (rec["device"] == "cpu")


@pytest.mark.parametrize("variant", TWO_LAYER)
def test_two_layer_follows_the_reference(tf_records, variant):
    rec = tf_records[("two_layer", variant)]
    x, y, w1, w2 = weights.two_layer(rec["params"]["seed"])
    ref = reference.two_layer_losses(x, y, w1, w2, params.TWO_LAYER_LR, params.TWO_LAYER_STEPS)
    assert len(rec["losses"]) == params.TWO_LAYER_STEPS >= 50
    assert rec["parity"]["tolerance"] == params.TWO_LAYER_TOL and rec["parity"]["passed"]
    assert reference.max_rel_dev(rec["losses"], ref) <= params.TWO_LAYER_TOL
    assert rec["losses"][-1] < 1e-3 * rec["losses"][0], "the loss should fall by orders of magnitude"


@pytest.mark.parametrize("variant", LENET)
def test_lenet_follows_the_reference_and_learns(tf_records, lenet_reference, variant):
    if variant == "channels_first" and not channels_first_trains(tf_records):
        pytest.skip("channels-first convolutions do not train on this CPU (no oneDNN): "
                    "test_chapter_says_why_channels_first_has_no_record checks the chapter says so")
    rec = tf_records[("lenet", variant)]
    check_lenet_record(rec, lenet_reference, variant)


def test_lenet_variants_record_how_they_ran(tf_records):
    main = tf_records[("lenet", "custom_loop")]
    assert main["extra"]["traces"] == 1, "the custom loop's step should be traced once"
    assert main["extra"]["trace_s"] > 0 and main["extra"]["jit_compile"] is False
    assert tf_records[("lenet", "xla")]["extra"]["jit_compile"] is True
    if channels_first_trains(tf_records):
        assert tf_records[("lenet", "channels_first")]["extra"]["data_format"] == "channels_first"
    assert tf_records[("lenet", "train_on_batch")]["extra"]["jit_compile"] == (main["device"] == "cuda")
    for variant in TUNED:  # one epoch at most, and their records say so
        if (("lenet", variant)) in tf_records:
            assert tf_records[("lenet", variant)]["params"]["epochs"] == 1
    fn = tf_records[("two_layer", "function")]["extra"]
    assert fn["traces"] == 1 and fn["trace_s"] > 0


def test_rendered_chapter_has_no_startup_noise(quick_book, tf_records):
    nb = json.loads(quick_book.chapter(CHAPTER).notebook.read_text())
    text = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                assert out["name"] == "stdout", f"stderr output in the chapter: {''.join(out['text'])[:300]}"
                text.append("".join(out["text"]))
            for value in out.get("data", {}).values():
                text.append(value if isinstance(value, str) else "".join(value))
    found = [marker for marker in NOISE if marker in "\n".join(text)]
    assert not found, f"TensorFlow log noise in the executed chapter: {found}"


# ------------------------------------------------------- the helper module, directly

@pytest.fixture(scope="module")
def tf():
    from rosetta.frameworks import tensorflow as fw_tensorflow
    fw_tensorflow.setup(params.default_threads())
    return fw_tensorflow.tf


def test_importing_tensorflow_through_the_helper_is_quiet():
    code = "from rosetta.frameworks import tensorflow as fw_tensorflow\nimport tensorflow as tf\nprint(float(tf.reduce_sum(tf.ones(3))))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3.0"
    assert proc.stderr == "", f"TensorFlow wrote to stderr: {proc.stderr[:500]}"


def test_device_resolution(tf):
    from rosetta.frameworks import tensorflow as fw_tensorflow
    if tf.config.list_physical_devices("GPU"):
        assert fw_tensorflow.resolve_device("auto").type == "cuda"
    else:
        assert fw_tensorflow.resolve_device("auto") == fw_tensorflow.Device("cpu", "/CPU:0")
        assert fw_tensorflow.device_memory(fw_tensorflow.resolve_device("auto")) is None
        with pytest.raises(params.ParameterError, match="'device' is 'cuda'"):
            fw_tensorflow.resolve_device("cuda")


def graph_session_losses(tf, x_np, y_np, w1_np, w2_np, lr, steps):
    """The classic TensorFlow 1 program: placeholders, tf.gradients, a session fed every step."""
    from rosetta.frameworks import tensorflow as fw_tensorflow
    graph = tf.Graph()
    with graph.as_default():
        assert not tf.executing_eagerly()
        x, y, w1, w2 = (tf.compat.v1.placeholder(tf.float32, a.shape) for a in (x_np, y_np, w1_np, w2_np))
        loss = tf.reduce_sum((tf.matmul(tf.maximum(tf.matmul(x, w1), 0.0), w2) - y) ** 2)
        g1, g2 = tf.gradients(loss, [w1, w2])
        fetches = [loss, w1 - lr * g1, w2 - lr * g2]
    assert tf.executing_eagerly()
    feed = {x: x_np, y: y_np, w1: w1_np, w2: w2_np}
    losses = []
    with tf.compat.v1.Session(graph=graph, config=fw_tensorflow.session_config(1)) as session:
        for _ in range(steps):
            value, feed[w1], feed[w2] = session.run(fetches, feed_dict=feed)
            losses.append(float(value))
    return losses


def eager_losses(tf, x_np, y_np, w1_np, w2_np, lr, steps):
    x, y = tf.constant(x_np), tf.constant(y_np)
    w1, w2 = tf.Variable(w1_np), tf.Variable(w2_np)
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((tf.nn.relu(x @ w1) @ w2 - y) ** 2)
        g1, g2 = tape.gradient(loss, [w1, w2])
        w1.assign_sub(lr * g1)
        w2.assign_sub(lr * g2)
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("program", [graph_session_losses, eager_losses], ids=["graph_session", "eager"])
def test_classic_programs_give_the_reference_losses(tf, program):
    problem = weights.two_layer(0)
    lr, steps = params.TWO_LAYER_LR, params.TWO_LAYER_STEPS
    ref = reference.two_layer_losses(*problem, lr, steps)
    losses = program(tf, *problem, lr, steps)
    assert reference.check(losses, ref, params.TWO_LAYER_TOL) <= params.TWO_LAYER_TOL
    # and the check is sharp: a learning rate 1% off leaves the tolerance
    with pytest.raises(reference.ParityError):
        reference.check(program(tf, *problem, 1.01 * lr, steps), ref, params.TWO_LAYER_TOL)


def test_float64_run_differs_only_by_float32_hyperparameters(tf_records, lenet_reference):
    """Keras rounds the learning rate and momentum to float32 even for float64 weights: against a
    reference with both rounded so, the float64 run agrees to rounding (measured 3e-16 and 4e-16)."""
    check_float64_record(tf_records[("lenet", "float64")], lenet_reference, float32_hyperparameters=True)
