"""What the TensorFlow chapter needs beyond TensorFlow itself: a quiet start, threads, device,
synchronisation, memory.

Importing this module imports TensorFlow with its start-up log kept out of the
notebook: ``TF_CPP_MIN_LOG_LEVEL`` hides the C++ runtime's INFO and WARNING lines
once its logger is set up, and the few lines it writes before that (the oneDNN
notice, absl's "before InitializeLog" warning) go to a temporary file instead
of the process's standard error. If the import fails, that text is written back
so that the error is not hidden. Import this module before ``tensorflow``::

    from rosetta.frameworks import tensorflow as fw_tensorflow
    import tensorflow as tf

TensorFlow names its GPUs ``/GPU:0``...; records say ``cuda``, as PyTorch's do, so
that the comparison chapter lines the frameworks up by device.
"""
from contextlib import contextmanager
from dataclasses import dataclass
import logging
import os
import sys
import tempfile

from rosetta.core.params import ParameterError
from rosetta.frameworks import no_wait, waiting_on

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # C++ runtime: errors only
os.environ.setdefault("TF_CPP_MAX_VLOG_LEVEL", "-1")


def _import_quietly():
    """``import tensorflow`` with file descriptor 2 pointed at a temporary file."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow


tf = _import_quietly()
tf.get_logger().setLevel(logging.ERROR)          # Python-side deprecation and retracing warnings
tf.autograph.set_verbosity(0)
try:
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
except ImportError:  # absl comes with TensorFlow; harmless if it ever does not
    pass


@dataclass(frozen=True)
class Device:
    """Where the chapter runs: ``type`` as the records name it, ``name`` as TensorFlow does."""
    type: str   # "cpu" or "cuda"
    name: str   # "/CPU:0" or "/GPU:0"


def setup(threads: int) -> dict:
    """Give TensorFlow ``threads`` intra-op threads and one inter-op thread.

    Must run before TensorFlow executes its first operation; afterwards the
    runtime keeps the counts it started with, and asking for others is an error.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        if intra not in (threads, 0) or tf.config.threading.get_inter_op_parallelism_threads() not in (1, 0):
            raise RuntimeError(f"TensorFlow's runtime already started with {intra} intra-op threads; "
                               f"the chapter asked for {threads}: restart the kernel and run the "
                               f"chapter from the top") from None
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def session_config(threads: int):
    """The same thread counts for a TensorFlow 1 ``tf.compat.v1.Session``."""
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
    config.gpu_options.allow_growth = True   # a TF1 session otherwise reserves the whole GPU at once
    return config


def resolve_device(device: str) -> Device:
    """'auto' takes the GPU where TensorFlow sees one; 'cuda' without a GPU is an error.

    'cpu' hides the GPUs from TensorFlow, so that every operation (Keras's
    included) runs on the CPU without a ``tf.device`` block around it.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        raise ParameterError("parameter 'device' is 'cuda' but TensorFlow sees no GPU here "
                             f"(TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}); "
                             "use device='auto' or 'cpu'")
    if device == "cpu" or not gpus:
        if gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                raise RuntimeError("device='cpu' must be chosen before TensorFlow starts its runtime: "
                                   "restart the kernel and run the chapter from the top") from None
        return Device("cpu", "/CPU:0")
    try:  # allocate GPU memory as needed, so that the peak counter means something
        tf.config.experimental.set_memory_growth(gpus[0], True)
    except RuntimeError:  # the runtime already started: keep what it has
        pass
    return Device("cuda", "/GPU:0")


def device_type(device: Device) -> str:
    return device.type


def device_name(device: Device) -> str:
    if device.type == "cuda":
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return details.get("device_name", "GPU")
    from rosetta.core.records import cpu_name
    return cpu_name()


def sync(device: Device):
    """A function ``wait(value=None)`` that waits until ``device`` has finished its queued work; returns ``value``."""
    if device.type == "cuda":
        return waiting_on(tf.test.experimental.sync_devices)
    return no_wait


def device_memory(device: Device):
    """(reset, read) of TensorFlow's peak-allocation counter on the GPU; None on the CPU."""
    if device.type != "cuda":
        return None
    name = device.name.lstrip("/")
    return (lambda: tf.config.experimental.reset_memory_stats(name),
            lambda: tf.config.experimental.get_memory_info(name)["peak"])


# ------------------------------------------------------------- GPU precision

def precision(parity: bool = True) -> dict:
    """Parity settings (``parity=True``): full float32 and deterministic ops; returns them.

    TensorFlow computes float32 matrix products and convolutions in TF32 on GPUs of compute
    capability 8.0 and newer unless told not to, and picks GPU kernels that may not be
    deterministic; a parity-checked run switches TF32 off, turns op determinism on (which also
    stops cuDNN autotuning from picking a different algorithm per run), keeps Keras in float32
    and XLA's auto-clustering off. ``parity=False`` gives TF32 back and turns op determinism off
    (XLA, for one, has no deterministic gradient of max-pooling and refuses to compile LeNet's
    step under it). On the CPU none of this changes a number.
    """
    from tensorflow.python.framework import config as tf_config
    tf.config.experimental.enable_tensor_float_32_execution(not parity)
    tf.config.optimizer.set_jit(False)
    if parity:
        tf.config.experimental.enable_op_determinism()
        import keras
        keras.mixed_precision.set_global_policy("float32")
    else:
        tf_config.disable_op_determinism()
    return {"tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
            "deterministic": bool(tf_config.is_op_determinism_enabled()), "xla_auto_jit": False}


@contextmanager
def outside_parity():
    """A block that runs without op determinism (an XLA-compiled step: XLA has no deterministic
    gradient of max-pooling); the parity settings come back when it ends."""
    from tensorflow.python.framework import config as tf_config
    tf_config.disable_op_determinism()
    try:
        yield
    finally:
        precision(parity=True)


# The fast GPU settings, measured one at a time outside parity (``fast(name)``): what each changes.
# (XLA and the channels-first layout are variants of the chapter itself.)
FAST = {
    "tf32": "float32 matrix products and convolutions in TF32 (10-bit mantissa) on the tensor cores",
    "mixed_precision": "Keras layers compute in bfloat16 (float16 before compute capability 8.0), "
                       "their weights stay float32",
}


class fast:
    """``with fast(name):`` one fast setting of :data:`FAST` on top of the parity settings, which
    come back when the block ends. Build the model inside the block (Keras reads its precision
    policy when a layer is made)."""

    def __init__(self, name: str):
        if name not in FAST:
            raise ValueError(f"fast setting must be one of {sorted(FAST)}, got {name!r}")
        self.name = name

    def __enter__(self):
        precision(parity=True)
        if self.name == "tf32":
            tf.config.experimental.enable_tensor_float_32_execution(True)
        elif self.name == "mixed_precision":
            import keras
            gpus = tf.config.list_physical_devices("GPU")
            cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)) if gpus else (0, 0)
            keras.mixed_precision.set_global_policy("mixed_bfloat16" if cc >= (8, 0) else "mixed_float16")
        return self

    def __exit__(self, *exc):
        precision(parity=True)
        return False


# ------------------------------------------------------ what the records say

def accelerator(device: Device, matmul=None):
    """The record's ``accelerator`` dict for the GPU (:mod:`rosetta.core.accelerator`); None on the CPU.

    CUDA and cuDNN are the versions TensorFlow was built with (``tf.sysconfig.get_build_info``).
    """
    if device.type != "cuda":
        return None
    from rosetta.core import accelerator as acc
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    build = tf.sysconfig.get_build_info()
    return acc.describe(name=details.get("device_name", "GPU"), capability=details.get("compute_capability"),
                        cuda=build.get("cuda_version"), cudnn=build.get("cudnn_version"), matmul=matmul)


def onednn() -> bool:
    """Whether this process hands CPU convolutions and pooling to oneDNN.

    TensorFlow enables oneDNN by default on x86 Linux only on CPUs with neural-network
    instructions (AVX-512 VNNI, AVX-512 BF16, AMX: TensorFlow 2.9 release notes), or when
    ``TF_ENABLE_ONEDNN_OPTS=1``; without it, some CPU kernels know channels-last only.
    """
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())
