"""The appendix: Keras on three backends, Lasagne, Chainer and CNTK, each in its own environment.

Two kinds of test. Direct ones run a small program in each extra environment through
``rosetta.frameworks.worker`` and compare it with the NumPy reference (fast, independent of the notebooks).
The others read the records of the quick book (``quick_book``), in which every appendix chapter
ran in quick mode on its environment.
"""
import subprocess
import textwrap

import numpy as np
import pytest

from rosetta.core import params, reference, weights
from rosetta.frameworks import worker

from conftest import ROOT

BACKENDS = {"tensorflow": None, "torch": None, "jax": "keras-jax"}

# ----------------------------------------------------------------- direct checks

KERAS_FORWARD = textwrap.dedent('''
    from rosetta.frameworks import worker
    job = worker.job()
    from rosetta.frameworks import keras as fw_keras
    fw_keras.setup(job.cfg.threads)
    import keras
    import numpy as np
    from rosetta.core import weights

    p = weights.lenet(job.cfg.seed)
    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(20, 5), keras.layers.MaxPooling2D(2),
                            keras.layers.Conv2D(50, 5), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                            keras.layers.Dense(500, activation="relu"), keras.layers.Dense(10)])
    net.set_weights([weights.oihw_to_hwio(p["conv1_w"]), p["conv1_b"], weights.oihw_to_hwio(p["conv2_w"]),
                     p["conv2_b"], weights.chw_rows_to_hwc(p["fc1_w"]), p["fc1_b"], p["fc2_w"], p["fc2_b"]])
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
    logits = keras.ops.convert_to_numpy(net(x.transpose(0, 2, 3, 1)))
    worker.reply({"backend": keras.backend.backend(), "x": x, "logits": logits})
''')


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_keras_lenet_computes_the_reference_function_on_every_backend(backend, tmp_path):
    program = tmp_path / "keras_forward.py"
    program.write_text(KERAS_FORWARD)
    cfg = params.resolve(quick=True, threads=1)
    reply = worker.run(program, cfg, env=BACKENDS[backend], environ={"KERAS_BACKEND": backend}, echo=False)
    assert reply["backend"] == backend
    ref = reference.lenet_logits({k: v.astype(np.float64) for k, v in weights.lenet(cfg.seed).items()},
                                 np.asarray(reply["x"], np.float64))
    logits = np.asarray(reply["logits"])
    assert logits.shape == ref.shape == (8, 10)
    assert np.max(np.abs(logits - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_helper_package_imports_on_cntks_python_3_6():
    """CNTK's programs use the core helpers on Python 3.6: a 3.7+ construct in them breaks that chapter."""
    exe = worker.python("cntk")
    code = ("import sys; from rosetta.frameworks import worker; from rosetta.core import params, training, timing, weights, mnist, threads; "
            "cfg = params.resolve(quick=True); print(sys.version_info[:2], len(training.mnist_data(cfg)[0]), "
            "float(weights.lenet(0)['fc1_w'][0, 0]))")
    out = subprocess.run([str(exe), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    version, n, w = out.stdout.split(") ")[0] + ")", *out.stdout.split(") ")[1].split()
    assert version == "(3, 6)" and int(n) == params.QUICK["train_subset"]
    assert float(w) == float(weights.lenet(0)["fc1_w"][0, 0])      # NumPy 1.19 draws the same weights


def test_lasagne_imports_with_its_shims_and_pools_like_theano_0_7(tmp_path):
    code = textwrap.dedent(f'''
        import numpy as np
        from rosetta.frameworks import lasagne as fw_lasagne
        theano, lasagne, added = fw_lasagne.import_lasagne({str(tmp_path / "theano")!r})
        import theano.tensor as T
        from lasagne.layers import InputLayer, MaxPool2DLayer, get_output
        x = T.tensor4("x")
        pooled = theano.function([x], get_output(MaxPool2DLayer(InputLayer((None, 1, 4, 4), input_var=x), (2, 2))))
        a = np.arange(16, dtype="float32").reshape(1, 1, 4, 4)
        print(lasagne.__version__, sorted(added), pooled(a).ravel().tolist())
    ''')
    out = subprocess.run([str(worker.python()), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("0.1 ")
    assert "theano.tensor.signal.downsample" in out.stdout and "MRG_RandomStreams" in out.stdout
    assert out.stdout.strip().endswith("[5.0, 7.0, 13.0, 15.0]")


def test_worker_names_the_missing_environment_and_how_to_build_it(tmp_path):
    with pytest.raises(worker.WorkerError, match=r"'no-such-env' is not built.*make env"):
        worker.run(tmp_path / "x.py", params.resolve(quick=True), env="no-such-env")


def test_worker_shows_the_failing_programs_error(tmp_path):
    program = tmp_path / "fails.py"
    program.write_text("from rosetta.frameworks import worker\njob = worker.job()\nraise ValueError('the model is wrong')\n")
    with pytest.raises(worker.WorkerError, match=r"(?s)fails.py failed.*ValueError: the model is wrong"):
        worker.run(program, params.resolve(quick=True), echo=False)


# ----------------------------------------------------------------- the quick book

EXPECTED = {
    "appendix_keras": {f"keras-{b}": {("two_layer", "ops"), ("two_layer", "sequential"), ("lenet", "sequential"),
                                      ("lenet", "float64")}
                       for b in BACKENDS},
    "appendix_lasagne": {"lasagne": {("two_layer", "layers"), ("lenet", "layers_float64")}},
    "appendix_chainer": {"chainer": {("two_layer", "variable"), ("two_layer", "chain"), ("lenet", "chain")}},
    "appendix_cntk": {"cntk": {("two_layer", "trainer"), ("lenet", "trainer")}},
}


def chapter_records(quick_book, chapter):
    res = quick_book.chapter(chapter)
    assert res.ok, f"chapter {chapter} failed in quick mode: {res.error} (see {res.notebook})"
    from rosetta.core import records
    return [records.read(p) for p in res.records]


@pytest.mark.parametrize("chapter", list(EXPECTED))
def test_every_appendix_system_recorded_with_parity(quick_book, chapter):
    recs = chapter_records(quick_book, chapter)
    found = {}
    for r in recs:
        found.setdefault(r["framework"], set()).add((r["model"], r["variant"]))
    assert found == EXPECTED[chapter]
    for r in recs:
        p = r["parity"]
        if r["model"] == "two_layer":
            assert p["steps"] == len(r["losses"]) == params.TWO_LAYER_STEPS and p["tolerance"] == params.TWO_LAYER_TOL
        elif r["variant"] == "float64":   # the program's check: gates, and passed
            assert p["gates"] and r["extra"]["dtype"] == "float64" and len(r["losses"]) == params.PARITY_STEPS
        else:
            assert p["steps"] == params.PARITY_STEPS and p["tolerance"] == params.LENET_TOL
            assert len(r["losses"]) == params.QUICK["train_subset"] // r["params"]["batch_size"]
            assert r["losses"][-1] < 0.6 * r["losses"][0] and 0.6 < r["test_accuracy"] <= 1
        # a float32 LeNet run whose parity does not gate says honestly whether it passed
        assert p["passed"] == (p["max_rel_dev"] <= p["tolerance"])
        assert p["passed"] or not p["gates"], f"{r['framework']} {r['variant']}: a gating run missed parity"
        # the check is against the NumPy reference, recomputed here from the shared arrays
        assert np.allclose(p["reference"], reference_losses(r), rtol=1e-12)
        assert r["device"] == "cpu" and r["params"]["quick"] is True
        assert 0 < r["timing"]["q1_s"] <= r["timing"]["median_s"] <= r["timing"]["q3_s"]
        assert r["timing"]["n"] == len(r["losses"]) - params.WARMUP_STEPS


_REF = {}


def reference_losses(rec):
    from rosetta.core import training
    key = (rec["model"], rec["params"]["seed"])
    if key not in _REF:
        cfg = params.resolve(**rec["params"])
        if rec["model"] == "two_layer":
            x, y, w1, w2 = weights.two_layer(cfg.seed)
            _REF[key] = reference.two_layer_losses(x, y, w1, w2, params.TWO_LAYER_LR, params.TWO_LAYER_STEPS)
        else:
            x, y, _, _ = training.mnist_data(cfg)
            _REF[key] = reference.lenet_losses(weights.lenet(cfg.seed), training.parity_batches(x, y, cfg, params.PARITY_STEPS),
                                               params.LENET_LR, params.LENET_MOMENTUM)
    return _REF[key]


def test_keras_float64_lenet_is_the_reference_program(quick_book):
    """On JAX the float64 run follows the reference to 1e-12. On TensorFlow and PyTorch it stays
    about 1e-7 away, which rounding the learning rate or momentum
    does not explain: some of Keras's float64 step or reported loss is float32 there. It must stay
    far inside the tolerance (1e-6), and the chapter must say it is unexplained."""
    from conftest import check_float64_record
    recs = [r for r in chapter_records(quick_book, "appendix_keras") if r["variant"] == "float64"]
    assert {r["framework"] for r in recs} == {f"keras-{b}" for b in BACKENDS}
    for r in recs:
        check_float64_record(r, reference_losses(r), tol=1e-12 if r["framework"] == "keras-jax" else 1e-6)


def test_keras_runs_each_backend_in_its_own_environment(quick_book):
    recs = chapter_records(quick_book, "appendix_keras")
    for r in recs:
        backend = r["framework"].split("-", 1)[1]
        assert f" on {backend} " in r["framework_version"]
        assert r["extra"]["environment"] == (BACKENDS[backend] or "main")
        assert r["extra"]["worker_python"].startswith("3.11")
    lenet = {r["framework"]: r for r in recs if r["model"] == "lenet" and r["variant"] != "float64"}
    assert lenet["keras-jax"]["extra"]["jit_compile"] is True          # JAX compiles the step with XLA
    assert lenet["keras-torch"]["extra"]["jit_compile"] is False       # PyTorch runs it eagerly


def test_cntk_ran_on_python_3_6_and_chainer_on_its_own_environment(quick_book):
    (cntk,) = [r for r in chapter_records(quick_book, "appendix_cntk") if r["model"] == "lenet"]
    assert cntk["extra"]["worker_python"].startswith("3.6.") and cntk["framework_version"].startswith("2.7")
    (chainer,) = [r for r in chapter_records(quick_book, "appendix_chainer") if r["model"] == "lenet"]
    assert chainer["extra"]["environment"] == "chainer" and chainer["framework_version"] == "7.8.1"


def test_lasagne_records_say_their_precision(quick_book):
    recs = {(r["model"], r["variant"]): r for r in chapter_records(quick_book, "appendix_lasagne")}
    assert recs["two_layer", "layers"]["extra"]["floatX"] == "float32"
    assert recs["lenet", "layers_float64"]["extra"]["floatX"] == "float64"
    assert recs["lenet", "layers_float64"]["framework_version"].startswith("0.1 on Theano-PyMC")


def test_lasagne_types_its_compiles(quick_book):
    """The compile costs are typed one-off costs (cold: Theano wrote C code into its cache; warm: found it)."""
    recs = {(r["model"], r["variant"]): r for r in chapter_records(quick_book, "appendix_lasagne")}
    for key in (("two_layer", "layers"), ("lenet", "layers_float64")):
        assert "compile_s" not in recs[key]["extra"]
        (cost,) = recs[key]["one_off"]
        assert cost["kind"] in ("compile_cold", "compile_warm") and cost["seconds"] > 0
