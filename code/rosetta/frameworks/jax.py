"""What the JAX chapter needs beyond JAX: XLA's threads, GPU memory and precision, the device, waiting.

Call :func:`setup` before importing JAX: XLA reads its thread count, and JAX its allocator and
precision settings, once, when JAX starts.

* XLA's CPU thread pools take their size from ``PJRT_NPROC`` (else from the cores the process may
  use). The flags older notes give for it are not honoured by the jaxlib the book pins:
  ``intra_op_parallelism_threads`` is no XLA flag, and with ``--xla_cpu_multi_thread_eigen=false``
  a one-thread run still spreads its convolutions over every core (``tests/test_jax.py`` counts
  the CPU time of each thread).

* Preallocation is switched off (``XLA_PYTHON_CLIENT_PREALLOCATE=false``). By default JAX takes
  most of a GPU's memory when it starts: in a process (a Colab runtime) where another framework
  already holds GPU memory it runs out of it, and a peak-memory figure would say nothing about
  the run. Without preallocation JAX allocates what the program needs, and its peak is the run's.
* XLA is asked for deterministic GPU kernels (``--xla_gpu_deterministic_ops=true`` in
  ``XLA_FLAGS``): without it XLA's GPU autotuner may choose a different convolution algorithm
  from one run to the next, and the same program's float32 losses differ in their last bits
  (two runs of the chapter on one H200 did). On a CPU the flag changes nothing.
* Matrix products and convolutions run at ``highest`` precision. On a GPU JAX's default
  precision for float32 is below float32 (TensorFloat-32 on recent NVIDIA GPUs), which the
  parity checks cannot allow; the chapter measures the default as a variant of its own
  (``jax.default_matmul_precision("default")``). On a CPU both settings compute in float32.
"""
import os

from rosetta.core.params import ParameterError

PARITY_PRECISION = "highest"
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def setup(threads: int, *, device: str = "auto") -> dict:
    """XLA's CPU thread pools, no GPU preallocation, full-precision matmuls; ``device='cpu'`` hides GPUs.

    ``device``: 'auto' lets JAX take a GPU where it has one, 'cpu' keeps it on the CPU,
    'cuda' requires a GPU (checked by :func:`resolve_device`).
    """
    if threads < 1:
        raise ParameterError(f"XLA needs at least one thread, got {threads}")
    os.environ["PJRT_NPROC"] = str(threads)
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = PARITY_PRECISION
    flags = os.environ.get("XLA_FLAGS", "")
    if DETERMINISTIC_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}".strip()
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    return {"threads": threads, "preallocate": False, "matmul_precision": PARITY_PRECISION, "device": device,
            "xla_flags": os.environ["XLA_FLAGS"]}


def resolve_device(device: str):
    """The JAX device the chapter runs on (JAX's default device); 'cuda' without a GPU is an error."""
    import jax
    dev = jax.devices()[0]
    if device == "cuda" and dev.platform != "gpu":
        raise ParameterError("parameter 'device' is 'cuda' but JAX sees no GPU here (it has "
                             f"{jax.devices()}); use device='auto' or 'cpu', or install a CUDA build of JAX")
    return dev


def device_type(device) -> str:
    """'cuda' for a JAX GPU, else JAX's platform name ('cpu')."""
    return "cuda" if device.platform == "gpu" else device.platform


def device_name(device) -> str:
    if device.platform == "cpu":
        from rosetta.core.records import cpu_name
        return cpu_name()
    return getattr(device, "device_kind", str(device))


def sync(device):
    """A function ``wait(value=None)`` that waits until JAX has computed ``value`` (JAX dispatches
    asynchronously, and has no call that waits for a whole device); returns ``value``. A step waits
    for its own result with it."""
    import jax

    def wait(value=None):
        return jax.block_until_ready(value)
    return wait


def accelerator(device, matmul=None):
    """The record's ``accelerator`` dict for a JAX GPU (:mod:`rosetta.core.accelerator`); None on the CPU.

    The CUDA runtime and cuDNN are the versions JAX's CUDA plugin loaded, as JAX itself reports
    them (``jax._src.lib.cuda_versions``, which ``jax.print_environment_info`` also reads); None
    where this JAX does not say, and ``rosetta-records import`` then refuses the record.
    """
    if device.platform != "gpu":
        return None
    from rosetta.core import accelerator as acc
    cuda = cudnn = None
    try:
        from jax._src.lib import cuda_versions
        if cuda_versions is not None:
            runtime = int(cuda_versions.cuda_runtime_get_version())      # 13000 for CUDA 13.0
            cuda = f"{runtime // 1000}.{runtime % 1000 // 10}"
            cudnn = cuda_versions.cudnn_get_version()
    except (ImportError, AttributeError, RuntimeError, TypeError, ValueError):
        pass
    return acc.describe(name=device_name(device), capability=getattr(device, "compute_capability", None),
                        cuda=cuda, cudnn=cudnn, matmul=matmul)


def device_memory(device):
    """(reset, read) of the GPU's peak-allocation counter; None on the CPU.

    JAX's counter (``memory_stats()["peak_bytes_in_use"]``) cannot be reset: it is the process's
    peak since JAX started, which is the run's own where the run needed more than every run before
    it in the process (the chapter runs the small programs first), and an upper bound otherwise.
    """
    if device.platform != "gpu":
        return None
    return (lambda: None, lambda: (device.memory_stats() or {}).get("peak_bytes_in_use", 0))
