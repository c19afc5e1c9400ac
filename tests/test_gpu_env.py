"""The GPU environment and the GPU settings, checked on a machine without a GPU.

No test here runs anything on a GPU: they check the lock files against the CPU one, pip-check
logic on resolved sets, the Makefile's GPU=1 plan, the parity settings each framework module
sets, and the Colab copies' records cell. `make gpu-lock-check` resolves the GPU lock files
against PyPI (network; not part of `make test`).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from rosetta.book import build, lock, notebooks

from conftest import ROOT


def pins(path):
    out = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return out


def test_gpu_lock_is_the_cpu_lock_with_cuda_builds():
    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    assert gpu.pop("tensorflow") == cpu.pop("tensorflow-cpu")
    assert "tensorflow[and-cuda]==" in (ROOT / "requirements-gpu.txt").read_text()
    assert gpu == cpu, "requirements-gpu.txt must pin what requirements.txt pins, CUDA builds aside"


def test_mxnet_gpu_lock_shares_the_books_pins():
    cpu, mx = pins("requirements.txt"), pins("envs/requirements-mxnet-gpu.txt")
    assert mx.pop("mxnet-cu117") == cpu["mxnet"] == "1.9.1"
    cuda = {k: mx.pop(k) for k in list(mx) if k.startswith("nvidia-")}
    assert all(k.endswith("-cu11") for k in cuda) and cuda["nvidia-cudnn-cu11"].startswith("8.")
    assert {k: cpu.get(k) for k in mx} == mx


def _report(*packages):
    return {"install": [{"metadata": {"name": n, "version": v, "requires_dist": req},
                         "requested_extras": extras} for n, v, req, extras in packages]}


def test_lock_check_finds_what_pip_check_finds():
    ok = _report(("a", "1.0", ["b>=2", "c; extra == 'gpu'", "d; python_version < '3'"], []),
                 ("b", "2.1", [], []))
    assert lock.check(ok) == []
    assert lock.check(_report(("a", "1.0", ["b<2"], []), ("b", "2.1", [], []))) == \
        ["a 1.0 has requirement b<2, but 2.1 is resolved"]
    assert lock.check(_report(("a", "1.0", ["c; extra == 'gpu'"], ["gpu"]))) == \
        ['a 1.0 requires c; extra == "gpu", which is not installed']


def test_lock_resolve_leaves_out_this_machines_wheels(monkeypatch):
    seen = {}

    def fake_run(cmd, env, **kw):
        seen.update(cmd=cmd, env=env)
        report = cmd[cmd.index("--report") + 1]
        with open(report, "w") as f:
            json.dump(_report(("a", "1", [], [])), f)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_CONSTRAINT", "/etc/c.txt")
    monkeypatch.setattr(lock.subprocess, "run", fake_run)
    assert lock.resolve("requirements-gpu.txt")["install"][0]["metadata"]["name"] == "a"
    assert "--dry-run" in seen["cmd"] and "--ignore-installed" in seen["cmd"]
    assert seen["env"]["PIP_CONFIG_FILE"] == os.devnull
    assert not any(k in seen["env"] for k in lock.LOCAL_PIP)


def make_plan(*args):
    res = subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_make_gpu_installs_the_gpu_locks_and_the_default_stays_cpu():
    gpu, cpu = make_plan("book", "GPU=1"), make_plan("book")
    assert "-r requirements-gpu.txt" in gpu and ".venv-gpu/bin/python" in gpu
    assert "-r envs/requirements-mxnet-gpu.txt" in gpu and "--name rosetta-mxnet-gpu" in gpu
    assert "requirements-gpu" not in cpu and "mxnet-gpu" not in cpu and ".venv-gpu" not in cpu
    assert "-r requirements.txt" in cpu
    assert "python -m rosetta.book.lock requirements-gpu.txt envs/requirements-mxnet-gpu.txt" in make_plan("gpu-lock-check")


def test_extra_kernels_are_registered_in_the_environment_the_build_uses():
    """PyTensor's kernel (the PyTensor and JAX chapters run on it) goes into .venv-gpu with GPU=1 and
    into .venv without, each with a stamp of its own, so that switching venvs registers it again
    without rebuilding the environment. (Chainer, CNTK and Keras-JAX run programs, not kernels;
    Lasagne is installed into the venv itself, with a stamp in it.)"""
    show = ["--eval", "show: ; @echo $(EXTRA_ENVS) $(ENV_pytensor) $(LASAGNE_STAMP)", "show"]
    gpu = subprocess.run(["make", "-s", "GPU=1", *show], cwd=ROOT, capture_output=True, text=True).stdout.split()
    cpu = subprocess.run(["make", "-s", *show], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert "try-pytensor" in gpu and ".venv-gpu/.kernel-pytensor" in gpu and ".venv-gpu/.lasagne-installed" in gpu
    assert ".venv/.kernel-pytensor" in cpu and not any(".venv-gpu" in w for w in cpu)
    for prefix, args in ((".venv-gpu", ["GPU=1"]), (".venv", [])):
        plan = make_plan(*args, f"{prefix}/.kernel-pytensor")
        assert f"ipykernel install --prefix {prefix} --name rosetta-pytensor" in plan
    assert "ipykernel" not in make_plan(".envs/pytensor/.installed")         # the environment is the same for both


def test_rosetta_kernels_chooses_a_chapters_kernel(monkeypatch):
    monkeypatch.delenv("ROSETTA_KERNELS", raising=False)
    assert build.chapter_kernel(ROOT, "mxnet") == build.KERNEL
    monkeypatch.setenv("ROSETTA_KERNELS", "mxnet=rosetta-mxnet-gpu")
    assert build.chapter_kernel(ROOT, "mxnet") == "rosetta-mxnet-gpu"
    assert build.chapter_kernel(ROOT, "pytorch") == build.KERNEL


# ------------------------------------------------------------ parity settings, one function per framework

def test_pytorch_precision_and_fast_settings():
    import torch
    from rosetta.frameworks import pytorch as fw
    got = fw.precision(parity=True)
    assert got == {"tf32_matmul": False, "tf32_cudnn": False, "cudnn_benchmark": False, "deterministic": True,
                   "float32_matmul_precision": "highest"}
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    net = torch.nn.Conv2d(1, 2, 3)
    with fw.fast("tf32", net):
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32
    with fw.fast("cudnn_benchmark", net):
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    with fw.fast("channels_last", net):
        assert net.weight.is_contiguous(memory_format=torch.channels_last)
    with fw.fast("amp", net):
        assert torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")
    assert fw.precision(parity=True) == got
    fw.precision(parity=False)
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cudnn.benchmark
    fw.precision(parity=True)
    torch.use_deterministic_algorithms(False)
    assert fw.accelerator(torch.device("cpu")) is None
    with pytest.raises(ValueError, match="fast setting must be one of"):
        fw.fast("fp8", net)
    with pytest.raises(ValueError, match="measures a CUDA device"):
        fw.gpu_matmul_rate(torch.device("cpu"))


CHILD_TF = """
from rosetta.frameworks import tensorflow as fw
import tensorflow as tf, keras, json
s = fw.precision(parity=True)
with fw.fast("mixed_precision"):
    mp = keras.mixed_precision.global_policy().name
with fw.fast("tf32"):
    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
from tensorflow.python.framework import config as tf_config
with fw.outside_parity():
    inside = tf_config.is_op_determinism_enabled()
print(json.dumps({"parity": s, "mixed": mp, "tf32": tf32, "after": keras.mixed_precision.global_policy().name,
                  "tf32_after": tf.config.experimental.tensor_float_32_execution_enabled(),
                  "acc": fw.accelerator(fw.Device("cpu", "/CPU:0")),
                  "inside": inside, "det_after": tf_config.is_op_determinism_enabled()}))
"""

CHILD_MX = """
import os, json
from rosetta.core import threads
threads.pin(1)
from rosetta.frameworks import mxnet as fw
import mxnet as mx
s = fw.precision(parity=True)
print(json.dumps({"parity": s, "ctx": str(fw.resolve_device("auto")), "status": fw.gpu_status(mx.cpu()),
                  "acc": fw.accelerator(mx.cpu()), "loaded": fw.load_cuda_wheels()}))
"""


def _child(code):
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "code")})
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_tensorflow_precision_and_fast_settings():
    out = _child(CHILD_TF)
    assert out["parity"] == {"tf32": False, "deterministic": True, "xla_auto_jit": False}
    assert out["mixed"] == "mixed_float16"           # no GPU here: a GPU older than 8.0 would get float16
    assert out["tf32"] is True and out["tf32_after"] is False and out["after"] == "float32"
    assert out["acc"] is None
    assert out["inside"] is False and out["det_after"] is True


def test_mxnet_precision_and_cpu_wheel():
    out = _child(CHILD_MX)
    assert out["parity"] == {"MXNET_CUDNN_AUTOTUNE_DEFAULT": "0", "MXNET_ENFORCE_DETERMINISM": "1",
                             "MXNET_CUDA_ALLOW_TENSOR_CORE": "0", "NVIDIA_TF32_OVERRIDE": "0"}
    assert out["ctx"] == "cpu(0)" and out["acc"] is None and out["loaded"] == []
    assert "compiled without CUDA" in out["status"]


# ------------------------------------------------------------ Colab copies bring their records home

def test_every_colab_copy_that_runs_ends_with_the_records_cell(monkeypatch, tmp_path):
    monkeypatch.delenv("ROSETTA_COLAB", raising=False)
    for name in build.notebook_chapters(ROOT):
        nb = json.loads(notebooks.generate(ROOT, name))
        last = nb["cells"][-1]
        if notebooks.colab_mode(ROOT, name) == "none":
            assert "colab-records" not in last["metadata"].get("tags", [])
            continue
        assert last["metadata"]["tags"] == ["colab-records"], name
        assert f'archive.pack_chapter("{name}")' in last["source"]
        exec(last["source"], {})                     # outside Colab: packs nothing, downloads nothing
        if notebooks.colab_mode(ROOT, name) == "python311":   # its first cell stops the notebook: it packs too
            assert f'archive.pack_chapter("{name}")' in nb["cells"][0]["source"]
