"""What the MXNet chapter needs beyond MXNet itself: the import shim, threads, device, synchronisation.

MXNet 1.9.1 (the last release; the project is retired) still uses the NumPy type aliases that
NumPy 1.24 removed, so this module restores them (:func:`rosetta.frameworks.compat.numpy_aliases`) and then
imports ``mxnet``. Import it *after* :func:`rosetta.core.threads.pin`: MXNet's OpenMP threads, oneDNN
and OpenBLAS take their thread counts from the environment when the library loads, and nothing
set later reaches the engine's worker threads.

Run as ``python -m rosetta.frameworks.mxnet`` it is the worker of :func:`time_exported`: it trains a graph
exported by ``HybridBlock.export`` in a fresh process, for settings that MXNet reads only at start-up
(engine type, OpenMP threads, oneDNN).
"""
import ctypes
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

from rosetta.frameworks import compat, waiting_on
from rosetta.core.params import ParameterError



def load_cuda_wheels() -> list:
    """Load the CUDA 11 libraries of NVIDIA's ``nvidia-*-cu11`` wheels; returns their paths.

    ``mxnet-cu117`` links against CUDA 11.7, cuDNN 8 and NCCL but ships none of them; its
    environment (``envs/requirements-mxnet-gpu.txt``) installs them as wheels, whose folders the
    dynamic linker does not search. Loaded first (``RTLD_GLOBAL``), they satisfy MXNet's links by
    their names. Does nothing unless the installed MXNet is ``mxnet-cu117``.
    """
    import glob
    import importlib.metadata
    import importlib.util
    try:
        importlib.metadata.distribution("mxnet-cu117")
    except importlib.metadata.PackageNotFoundError:
        return []
    spec = importlib.util.find_spec("nvidia")
    folders = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    pending = sorted(p for f in folders for p in glob.glob(os.path.join(f, "*", "lib", "lib*.so*")))
    loaded = []
    while pending:                      # a library loads once the ones it needs are loaded
        failed = []
        for lib in pending:
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                loaded.append(lib)
            except OSError:
                failed.append(lib)
        if len(failed) == len(pending):
            break
        pending = failed
    return loaded


# MXNet copies an array of at least MXNET_CPU_PARALLEL_SIZE (default 200,000) numbers from NumPy
# with an OpenMP loop in the calling thread. That gives the Python thread an OpenMP team of its own
# beside the engine's, and from then on libgomp sees more OpenMP threads than cores and lets a
# waiting thread spin 100 times instead of 300,000 before it sleeps: every operator then waits for
# its threads to wake up (twice the LeNet step on an idle 2-core machine). Copies stay serial here,
# so that a process that has copied a LeNet weight matrix runs like one that has not.
PARALLEL_COPY = {"MXNET_CPU_PARALLEL_SIZE": str(2 ** 31 - 1)}    # an int in MXNet
for _key, _value in PARALLEL_COPY.items():
    os.environ.setdefault(_key, _value)
compat.numpy_aliases()
load_cuda_wheels()
import mxnet as mx  # noqa: E402

# The executor logs "Subgraph backend MKLDNN is activated" at every bind unless told not to
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

DEFAULT_ENGINE = "ThreadedEnginePerDevice"
# MXNet's own threshold for a parallel copy (src/common/utils.h, ParallelCopy)
PARALLEL_COPY_DEFAULT = {"MXNET_CPU_PARALLEL_SIZE": "200000"}


# ------------------------------------------------------------------- threads

def _cpu_ticks_by_thread() -> dict:
    """CPU time (user + system, in clock ticks) of every thread of this process."""
    ticks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            ticks[task.name] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks


def busy_threads(min_ticks: int = 25, max_seconds: float = 3.0):
    """How many threads of this process work while MXNet runs a convolution (oneDNN) and an
    element-wise operator (MXNet's own OpenMP kernels): the effective thread count.

    Counts the threads that did at least a quarter of the busiest thread's CPU time; None where
    ``/proc`` is not available (not Linux).
    """
    if not Path("/proc/self/task").is_dir():
        return None
    x = mx.nd.ones((64, 20, 24, 24))
    w = mx.nd.ones((50, 20, 5, 5))
    mx.nd.waitall()
    before, t0 = _cpu_ticks_by_thread(), time.perf_counter()
    while True:
        for _ in range(5):
            y = mx.nd.Convolution(x, w, kernel=(5, 5), num_filter=50, no_bias=True)
            z = mx.nd.relu(x * 2 - 1)
        mx.nd.waitall()
        used = {k: v - before.get(k, 0) for k, v in _cpu_ticks_by_thread().items()}
        top = max(used.values())
        if top >= min_ticks or time.perf_counter() - t0 > max_seconds:
            break
    del y, z
    return sum(1 for v in used.values() if v > 0 and v >= top / 4)


def engine_type() -> str:
    return os.environ.get("MXNET_ENGINE_TYPE", DEFAULT_ENGINE)


def onednn() -> bool:
    """Whether this build has oneDNN (MKL-DNN) and it is not switched off by MXNET_MKLDNN_ENABLED=0."""
    built = mx.runtime.Features().is_enabled("MKLDNN")
    return built and os.environ.get("MXNET_MKLDNN_ENABLED", "1") not in ("0", "false", "False")


def setup(threads: int) -> dict:
    """Check that MXNet runs ``threads`` OpenMP threads; returns what it found.

    The count itself comes from ``OMP_NUM_THREADS``, set by :func:`rosetta.core.threads.pin` before the
    import (without it MXNet 1.9 takes half the cores on x86). ``MXSetNumOMPThreads`` covers the
    calling thread too, where the NaiveEngine runs its operators.
    """
    env = os.environ.get("OMP_NUM_THREADS")
    if env != str(threads):
        raise RuntimeError(f"OMP_NUM_THREADS is {env!r} but the chapter asks for {threads} threads: call "
                           f"rosetta.core.threads.pin({threads}) before importing rosetta.frameworks.mxnet or mxnet")
    mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(threads)))
    return {"omp_threads": threads, "busy_threads": busy_threads(), "engine": engine_type(),
            "cpu_workers": int(os.environ.get("MXNET_CPU_WORKER_NTHREADS", "0") or 0) or None,
            "onednn": onednn(), "parallel_copy_size": os.environ.get("MXNET_CPU_PARALLEL_SIZE")}


def features() -> dict:
    """The build's compile-time features (CUDA, cuDNN, MKLDNN, OPENMP, BLAS_OPEN, ...): name -> enabled."""
    return {f.name: bool(f.enabled) for f in mx.runtime.feature_list()}


# -------------------------------------------------------------------- device

def gpu_count() -> int:
    """GPUs this MXNet build can use (0 for a CPU-only build or when CUDA fails)."""
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def resolve_device(device: str) -> mx.Context:
    """'auto' takes the first GPU where MXNet sees one and has code for it (:func:`kernels_for`);
    'cuda' without one is an error."""
    if device == "cpu":
        return mx.cpu()
    if gpu_count():
        if kernels_for(mx.gpu(0))["runs"]:
            return mx.gpu(0)
        if device == "cuda":
            raise ParameterError(f"parameter 'device' is 'cuda' but {gpu_status(mx.gpu(0))}; use device='auto' or 'cpu'")
        return mx.cpu()
    if device == "cuda":
        cuda = "with" if mx.runtime.Features().is_enabled("CUDA") else "without"
        raise ParameterError(f"parameter 'device' is 'cuda' but MXNet {mx.__version__} (built {cuda} CUDA) "
                             f"sees no GPU here (mxnet.context.num_gpus() is 0); use device='auto' or 'cpu', "
                             f"or see the chapter's section on GPUs for the mxnet-cu1xx wheels")
    return mx.cpu()


def gpu_status(ctx: mx.Context) -> str:
    """One sentence: where the chapter runs and why (CUDA build or not, GPU seen, code for it)."""
    cuda = mx.runtime.Features().is_enabled("CUDA")
    if not cuda:
        return f"this MXNet build ({mx.__version__}, the CPU wheel) was compiled without CUDA, so it runs on the CPU"
    if not gpu_count():
        return "this MXNet build was compiled with CUDA but sees no GPU here, so it runs on the CPU"
    k = kernels_for(mx.gpu(0))
    have = ", ".join(f"{a // 10}.{a % 10}" for a in k["architectures"]["sass"]) or "none"
    ptx = "some PTX" if k["architectures"]["ptx"] else "no PTX"
    where = f"{device_name(mx.gpu(0))}, compute capability {k['compute_capability']}"
    if k["runs"]:
        return f"it runs on the GPU ({where}); this MXNet build has GPU code for compute capabilities {have} and {ptx}"
    return (f"this MXNet build has GPU code for compute capabilities {have} and {ptx}, none of which runs on "
            f"this GPU ({where}), so it runs on the CPU")


def device_type(device: mx.Context) -> str:
    """The book's device names: 'cuda' or 'cpu'."""
    return "cuda" if device.device_type == "gpu" else "cpu"


def device_name(device: mx.Context) -> str:
    if device.device_type == "gpu":
        smi = shutil.which("nvidia-smi")
        if smi:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader", "-i", str(device.device_id)],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        return f"CUDA GPU {device.device_id}"
    from rosetta.core.records import cpu_name
    return cpu_name()


def sync(device: mx.Context):
    """A function ``wait(value=None)`` that waits until MXNet's engine has finished all queued work
    (on every device); returns ``value``."""
    return waiting_on(mx.nd.waitall)


def device_memory(device: mx.Context):
    """(reset, read) of the GPU memory a run took; None on the CPU.

    MXNet has no peak counter, but its pooled GPU allocator keeps every block it allocates until
    ``empty_cache()``. ``reset`` empties the pool and notes the memory in use on the device;
    ``read`` gives how much more is in use after the run: the pool's high-water mark, the run's
    peak (as long as no other process allocates on the same GPU meanwhile).
    """
    if device.device_type != "gpu":
        return None
    base = {}

    def used():
        free, total = mx.context.gpu_memory_info(device.device_id)
        return total - free

    def reset():
        mx.nd.waitall()
        device.empty_cache()
        base["bytes"] = used()
    return (reset, lambda: used() - base["bytes"])


# ------------------------------------------------------------- GPU precision

def _settings(parity: bool) -> dict:
    return {"MXNET_CUDNN_AUTOTUNE_DEFAULT": "0" if parity else "1",     # cuDNN's algorithm search
            "MXNET_ENFORCE_DETERMINISM": "1" if parity else "0",        # deterministic algorithms only
            "MXNET_CUDA_ALLOW_TENSOR_CORE": "0" if parity else "1",     # tensor cores (TF32 on 8.0+)
            "NVIDIA_TF32_OVERRIDE": "0" if parity else None}             # cuBLAS and cuDNN: no TF32


def precision(parity: bool = True) -> dict:
    """Parity settings (``parity=True``): full float32 and deterministic algorithms; returns them.

    MXNet reads these from the environment when it creates a GPU operator (and cuBLAS and cuDNN
    read ``NVIDIA_TF32_OVERRIDE`` when they start), so call this before the chapter's first GPU
    operation; the fast settings are measured in fresh processes (:func:`time_exported` with
    ``env=FAST[name]``). On the CPU none of this changes a number.
    """
    for key, value in _settings(parity).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return {k: os.environ.get(k) for k in _settings(parity)}


# The fast GPU settings, each an environment change for a fresh process: (what it changes, change).
FAST = {
    "cudnn_autotune": ("cuDNN times its convolution algorithms on the first step and keeps the fastest",
                       {"MXNET_CUDNN_AUTOTUNE_DEFAULT": "1", "MXNET_ENFORCE_DETERMINISM": "0"}),
    "tf32": ("tensor cores allowed: float32 products and convolutions in TF32 on compute capability 8.0+",
             {"MXNET_CUDA_ALLOW_TENSOR_CORE": "1", "NVIDIA_TF32_OVERRIDE": None}),
}


def kernels_for(ctx: mx.Context) -> dict:
    """Whether this MXNet build has GPU code for ``ctx``'s GPU: the GPU's compute capability, the
    architectures in ``libmxnet.so`` and the verdict (:func:`rosetta.core.accelerator.runs_on`)."""
    from rosetta.core import accelerator as acc
    major, minor = divmod(int(mx.util.get_cuda_compute_capability(ctx)), 10)
    archs = acc.fatbin_architectures(mx.libinfo.find_lib_path()[0])
    return {"compute_capability": f"{major}.{minor}", "architectures": archs,
            "runs": acc.runs_on((major, minor), archs)}


def accelerator(ctx: mx.Context, matmul=None):
    """The record's ``accelerator`` dict for a GPU context (:mod:`rosetta.core.accelerator`); None on the CPU.

    CUDA and cuDNN are the versions of the libraries loaded in this process.
    """
    if ctx.device_type != "gpu":
        return None
    from rosetta.core import accelerator as acc
    cuda, cudnn = ctypes.c_int(), None
    ctypes.CDLL("libcudart.so.11.0").cudaRuntimeGetVersion(ctypes.byref(cuda))
    try:
        v = ctypes.CDLL("libcudnn.so.8").cudnnGetVersion()
        cudnn = f"{v // 1000}.{v % 1000 // 100}.{v % 100}"
    except OSError:
        pass
    major, minor = divmod(int(mx.util.get_cuda_compute_capability(ctx)), 10)
    return acc.describe(name=device_name(ctx), capability=(major, minor),
                        cuda=f"{cuda.value // 1000}.{cuda.value % 1000 // 10}", cudnn=cudnn, matmul=matmul)


# ----------------------------------------- fresh processes for start-up settings

def time_exported(prefix, batches, env=None, hybridize=None, lr=None, momentum=None, max_seconds=None,
                  min_steps: int = 0, timeout: int = 600, device: str = "cpu", copy_first: int = 0) -> dict:
    """Train the graph exported at ``prefix`` on ``batches`` in a fresh Python process.

    ``env`` changes the environment of that process (a value of None removes the variable):
    that is how settings MXNet reads only when it loads (``MXNET_ENGINE_TYPE``,
    ``OMP_NUM_THREADS``, ``MXNET_MKLDNN_ENABLED``) are compared. The process loads the graph
    (``<prefix>-symbol.json``, ``<prefix>-0000.params``) with ``SymbolBlock.imports``, hybridizes it
    with ``hybridize`` (keyword arguments) and takes one SGD-momentum step on the mean
    cross-entropy of each (x, y) batch, timed by a :class:`rosetta.core.timing.Probe`; with
    ``max_seconds`` it stops early once that much time has passed and ``min_steps`` steps are done
    (a setting that is very slow on a busy machine then costs bounded time); ``device="gpu"``
    trains on the first GPU; ``copy_first`` copies that many numbers from NumPy before training
    (with ``env=PARALLEL_COPY_DEFAULT``, the state of a process that has copied a large array).
    Returns its
    losses, ``probe.summary()``, the thread check of :func:`busy_threads` and the machine's
    one-minute load average at the end (other programs competing for the cores slow it down).
    """
    import numpy as np
    from rosetta.core import params as P
    data = f"{prefix}-batches-{os.getpid()}.npz"
    np.savez(data, x=np.stack([b[0] for b in batches]), y=np.stack([b[1] for b in batches]))
    job = {"prefix": str(prefix), "batches": data, "hybridize": dict(hybridize or {}),
           "max_seconds": max_seconds, "min_steps": int(min_steps), "device": device,
           "copy_first": int(copy_first),
           "lr": P.LENET_LR if lr is None else lr, "momentum": P.LENET_MOMENTUM if momentum is None else momentum}
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = str(value)
    try:
        proc = subprocess.run([sys.executable, "-m", "rosetta.frameworks.mxnet", json.dumps(job)], env=child_env,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        Path(data).unlink(missing_ok=True)
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    if proc.returncode != 0 or not last[0].startswith("{"):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"the fresh MXNet process (environment changes {env}) failed with exit code "
                           f"{proc.returncode}:\n{tail}")
    return json.loads(last[0])


def _worker(job: dict) -> dict:
    """The fresh process of :func:`time_exported` (it runs with whatever environment it was given)."""
    import numpy as np
    from mxnet import autograd, gluon, nd
    from rosetta.core import timing
    ctx = mx.gpu(0) if job.get("device") == "gpu" else mx.cpu()
    with np.load(job["batches"]) as f:
        xs, ys = f["x"], f["y"]
    net = gluon.SymbolBlock.imports(job["prefix"] + "-symbol.json", ["data"], job["prefix"] + "-0000.params", ctx=ctx)
    net.hybridize(**job["hybridize"])
    if job.get("copy_first"):                   # one large copy from NumPy, as a chapter's set_data
        nd.array(np.zeros(job["copy_first"], np.float32), ctx=ctx).wait_to_read()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": job["lr"], "momentum": job["momentum"], "wd": 0.0})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses, limit = [], job.get("max_seconds")
    start = time.perf_counter()
    with timing.Probe(sync=mx.nd.waitall) as probe:
        for x, y in zip(xs, ys):
            if limit and len(losses) >= job.get("min_steps", 0) and time.perf_counter() - start > limit:
                break
            with probe.step():
                xb, yb = nd.array(x, ctx=ctx), nd.array(y, ctx=ctx)
                with autograd.record():
                    loss = loss_fn(net(xb), yb)
                loss.backward()
                trainer.step(len(x))
                losses.append(float(loss.mean().asscalar()))
    return {"losses": losses, **probe.summary(), "busy_threads": busy_threads(), "engine": engine_type(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "onednn": onednn(),
            "load_avg_1min": os.getloadavg()[0]}


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
