"""The TensorFlow chapter: its quick-mode records, its rendered output, and its helper module.

The record tests read what the chapter wrote when the session's quick build ran it
(``quick_book``) and check it against a reference recomputed here, not against the
reference the record carries. The direct tests run the chapter's own TensorFlow 1 program
(graph + session) and eager program, read from its source, in this process.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import chapter_code
from conftest import check_float64_record, check_lenet_record

from rosetta.compare import race as compare_race
from rosetta.core import params, records, reference, schedule, training, tuning, weights

CHAPTER = "tensorflow"
TWO_LAYER = ("graph_session", "eager", "function", "keras_fit")
LENET = ("tuned", "custom_loop", "train_on_batch", "xla", "channels_first")
SETTINGS = ("train_on_batch", "custom_loop", "xla", "channels_first")   # the default first
DEFAULT = "train_on_batch"
PIPELINES = ("input_numpy", "input_tf_data")
NOISE = ("oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000 ", "W0000 ", "E0000 ",
         "WARNING:tensorflow", "WARNING:absl", "computation placer", "XLA service")


@pytest.fixture(scope="module")
def tf_records(quick_book):
    return quick_book.records(CHAPTER)


@pytest.fixture(scope="module")
def lenet_reference(tf_records):
    """The reference's first LeNet losses for the chapter's parameters, computed here."""
    cfg = params.resolve(**tf_records[("lenet", "tuned")]["params"])
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
    expected = ({("two_layer", v) for v in TWO_LAYER} | {("lenet", v) for v in lenet} | {("lenet", "float64")}
                | {("lenet", v) for v in PIPELINES}
                | {("lenet_race", f"race_seed{s}") for s in schedule.seeds(quick=True)})
    assert set(tf_records) == expected


def test_chapter_says_why_channels_first_has_no_record(quick_book, tf_records):
    nb = json.loads(quick_book.chapter(CHAPTER).notebook.read_text())
    out = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                  for o in c.get("outputs", []))      # a stream's text is a string or a list of lines
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
    loop = tf_records[("lenet", "custom_loop")]
    assert loop["extra"]["traces"] == 1, "the custom loop's step should be traced once"
    assert [(c["kind"], c["seconds"] > 0) for c in loop["one_off"]] == [("trace", True)]
    assert loop["extra"]["jit_compile"] is False
    assert tf_records[("lenet", "xla")]["extra"]["jit_compile"] is True
    if channels_first_trains(tf_records):
        assert tf_records[("lenet", "channels_first")]["extra"]["data_format"] == "channels_first"
    assert tf_records[("lenet", "train_on_batch")]["extra"]["jit_compile"] == (loop["device"] == "cuda")
    for variant in SETTINGS + PIPELINES:  # one epoch at most, speed switches, and their records say so
        if ("lenet", variant) in tf_records:
            rec = tf_records[("lenet", variant)]
            assert rec["params"]["epochs"] == 1 and rec["extra"]["speed_setting"] == variant
    main = tf_records[("lenet", "tuned")]
    assert "speed_setting" not in main["extra"], "the main run is no speed switch"
    assert main["params"]["epochs"] == params.resolve(quick=True).epochs
    fn = tf_records[("two_layer", "function")]
    assert fn["extra"]["traces"] == 1 and fn["one_off"][0]["kind"] == "trace" and fn["one_off"][0]["seconds"] > 0


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


def chapter_programs(tf, lr):
    """The chapter's own 2-layer programs (its ``build_graph``, ``step_graph_session`` and
    ``tape_step``), defined here in a namespace that holds what the chapter gives them."""
    from rosetta.frameworks import tensorflow as fw_tensorflow
    x_np, y_np, w1_np, w2_np = weights.two_layer(0)
    ns = {"tf": tf, "np": np, "x_np": x_np, "y_np": y_np, "w1_np": w1_np, "w2_np": w2_np, "lr": lr,
          "x": tf.constant(x_np), "y": tf.constant(y_np), "fw_tensorflow": fw_tensorflow}
    exec(chapter_code.definitions(CHAPTER, "build_graph", "step_graph_session", "tape_step"), ns)
    return ns


def graph_session_losses(tf, lr, steps):
    """The chapter's TensorFlow 1 program: its graph, run by a session fed every step."""
    from rosetta.frameworks import tensorflow as fw_tensorflow
    ns = chapter_programs(tf, lr)
    graph, (x_in, y_in, w1_in, w2_in), fetches, eager_inside = ns["build_graph"]()
    assert not eager_inside and tf.executing_eagerly(), "the graph block must switch eager execution off, and only there"
    ns.update(fetches=fetches, w1_in=w1_in, w2_in=w2_in,
              feed={x_in: ns["x_np"], y_in: ns["y_np"], w1_in: ns["w1_np"], w2_in: ns["w2_np"]})
    with tf.compat.v1.Session(graph=graph, config=fw_tensorflow.session_config(1)) as session:
        ns["session"] = session
        return [float(ns["step_graph_session"]()) for _ in range(steps)]


def eager_losses(tf, lr, steps):
    """The chapter's eager program: its ``tape_step`` on two variables."""
    ns = chapter_programs(tf, lr)
    w1, w2 = tf.Variable(ns["w1_np"]), tf.Variable(ns["w2_np"])
    return [float(ns["tape_step"](w1, w2)) for _ in range(steps)]


@pytest.mark.parametrize("program", [graph_session_losses, eager_losses], ids=["graph_session", "eager"])
def test_chapter_programs_give_the_reference_losses(tf, program):
    lr, steps = params.TWO_LAYER_LR, params.TWO_LAYER_STEPS
    ref = reference.two_layer_losses(*weights.two_layer(0), lr, steps)
    losses = program(tf, lr, steps)
    assert reference.check(losses, ref, params.TWO_LAYER_TOL) <= params.TWO_LAYER_TOL
    # and the check is sharp: a learning rate 1% off leaves the tolerance
    with pytest.raises(reference.ParityError):
        reference.check(program(tf, 1.01 * lr, steps), ref, params.TWO_LAYER_TOL)


def test_float64_run_differs_only_by_float32_hyperparameters(tf_records, lenet_reference):
    """Keras rounds the learning rate and momentum to float32 even for float64 weights: against a
    reference with both rounded so, the float64 run agrees to rounding (measured 3e-16 and 4e-16)."""
    check_float64_record(tf_records[("lenet", "float64")], lenet_reference, float32_hyperparameters=True)


# ------------------------------------------------ default and tuned, the race, the input pipeline

@pytest.fixture(scope="module")
def decided(tf_records):
    """Steps before the reference's first float32 near-tie, for the chapter's batches (computed here)."""
    cfg = params.resolve(**tf_records[("lenet", "tuned")]["params"])
    x_train, y_train, _, _ = training.mnist_data(cfg)
    batches = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
    margins = reference.lenet_margins(weights.lenet(cfg.seed), batches, params.LENET_LR, params.LENET_MOMENTUM)
    return reference.decided_steps(margins["relu"], params.PARITY_STEPS)


def test_main_run_uses_the_fastest_setting_that_keeps_parity(tf_records, decided):
    settings = [tf_records[("lenet", v)] for v in SETTINGS if ("lenet", v) in tf_records]
    best = tuning.choose(settings, decided)
    main = tf_records[("lenet", "tuned")]
    assert main["extra"]["tuning"] == pytest.approx(tuning.summary(tf_records[("lenet", DEFAULT)], best, settings))
    assert main["extra"]["tuning"]["measured"] == len(settings)
    assert main["extra"]["setting"] == main["extra"]["tuning"]["tuned"] == best["variant"]
    assert all(best["timing"]["median_s"] <= r["timing"]["median_s"] for r in settings
               if tuning.qualifies(r, decided))
    # the main run ran that setting: same compiler and layout as its one-epoch run
    for key in ("jit_compile", "data_format"):
        assert main["extra"][key] == best["extra"][key]
    # from the same weights over the same batches, the main run's first epoch is the setting's run
    steps = len(best["losses"])
    assert reference.max_rel_dev(main["losses"][:steps], best["losses"]) <= 1e-6


@pytest.fixture(scope="module")
def races(quick_book, tf_records):
    folder = {p.parent for p in quick_book.chapter(CHAPTER).records}
    assert len(folder) == 1
    return compare_race.load(folders=list(folder))


def test_race_has_a_record_per_seed_with_the_schedule_applied(tf_records, races):
    seeds = schedule.seeds(quick=True)
    assert sorted(races["extra.seed"]) == list(seeds)
    check = compare_race.schedule_check(races)
    assert check["same"] and check["records"] == len(seeds), check["off"]
    main = tf_records[("lenet", "tuned")]
    for seed in seeds:
        rec = tf_records[("lenet_race", f"race_seed{seed}")]
        extra = rec["extra"]
        assert extra["momentum_form"] == "sutskever" and extra["setting"] == main["extra"]["setting"]
        assert rec["params"]["seed"] == seed and rec["parity"]["gates"] is False
        # the rate each step really applied (read back from the optimizer) is the schedule's, in float32
        assert extra["applied_rate_max_rel_diff"] <= 1e-7
        if extra["setting"] != "train_on_batch":
            assert extra["traces"] == 1, "a new rate must not trace the step again"
        accs = [e["accuracy"] for e in extra["evals"]]
        assert extra["reached"] == (accs[-1] >= schedule.TARGET) and rec["test_accuracy"] == accs[-1]
        assert not any(a >= schedule.TARGET for a in accs[:-1]), "the race should stop at the target"
        per_epoch = rec["params"]["train_subset"] // rec["params"]["batch_size"]
        assert [e["step"] for e in extra["evals"]][:2] == [schedule.eval_every(per_epoch),
                                                           2 * schedule.eval_every(per_epoch)]


def test_race_follows_the_scheduled_reference_in_keras_form(tf_records):
    """The race's first steps against the reference with the same rates per step in Sutskever's form,
    computed here: the record tells its parity truly, and the form matters (the other one is farther)."""
    for seed in schedule.seeds(quick=True):
        rec = tf_records[("lenet_race", f"race_seed{seed}")]
        cfg = params.resolve(**rec["params"])
        x_train, y_train, _, _ = training.mnist_data(cfg)
        batches = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
        rates = schedule.rates(len(x_train) // cfg.batch_size, cfg.epochs)[:params.PARITY_STEPS]
        ref = reference.lenet_losses(weights.lenet(seed), batches, rates, params.LENET_MOMENTUM, "sutskever")
        dev = reference.max_rel_dev(rec["losses"][:params.PARITY_STEPS], ref)
        assert rec["parity"]["max_rel_dev"] == pytest.approx(dev)
        assert rec["parity"]["passed"] == (dev <= params.LENET_TOL)
        other = reference.lenet_losses(weights.lenet(seed), batches, rates, params.LENET_MOMENTUM, "pytorch")
        margins = reference.lenet_margins(weights.lenet(seed), batches, rates, params.LENET_MOMENTUM, "sutskever")
        held = reference.decided_steps(margins["relu"], params.PARITY_STEPS)
        assert reference.max_rel_dev(rec["losses"][:held], ref[:held]) <= params.LENET_TOL
        if held >= 3:   # the forms part from the second step on, while the rate changes
            assert reference.max_rel_dev(rec["losses"][:held], ref[:held]) < \
                reference.max_rel_dev(rec["losses"][:held], other[:held])


def test_input_pipelines_feed_the_same_batches(tf_records):
    numpy_run, tf_data = (tf_records[("lenet", v)] for v in PIPELINES)
    setting = tf_records[("lenet", numpy_run["extra"]["setting"])]
    assert numpy_run["extra"]["setting"] == tf_data["extra"]["setting"]
    assert [numpy_run["extra"]["pipeline"], tf_data["extra"]["pipeline"]] == ["numpy", "tf_data"]
    assert numpy_run["extra"]["traces"] == tf_data["extra"]["traces"] == 1
    # same weights, same batches in the same order, same step: the same losses as the setting's run
    assert reference.max_rel_dev(tf_data["losses"], numpy_run["losses"]) <= 1e-6
    assert reference.max_rel_dev(numpy_run["losses"], setting["losses"]) <= 1e-6
    for rec in (numpy_run, tf_data):
        assert 0 < rec["extra"]["fetch_median_s"] < rec["timing"]["median_s"]
        assert rec["extra"]["train_wall_s"] >= rec["timing"]["min_s"] * rec["timing"]["n"]
        assert rec["test_accuracy"] > 0.7
