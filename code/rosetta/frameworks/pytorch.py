"""What the PyTorch chapter needs beyond PyTorch itself: threads, device, synchronisation, memory."""
import torch

from rosetta.core.params import ParameterError
from rosetta.frameworks import no_wait, waiting_on


def setup(threads: int) -> dict:
    """Give PyTorch exactly ``threads`` intra-op threads (MXNet's import resets it to 1)."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def resolve_device(device: str) -> torch.device:
    """'auto' takes the GPU where there is one; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("parameter 'device' is 'cuda' but PyTorch sees no CUDA GPU here; "
                             "use device='auto' or 'cpu'")
    return torch.device(device)


def device_type(device: torch.device) -> str:
    return device.type


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from rosetta.core.records import cpu_name
    return cpu_name()


def sync(device: torch.device):
    """A function ``wait(value=None)`` that waits until ``device`` has finished its queued work; returns ``value``."""
    if device.type == "cuda":
        return waiting_on(lambda: torch.cuda.synchronize(device))
    return no_wait


def device_memory(device: torch.device):
    """(reset, read) of PyTorch's peak-allocation counter on a GPU; None on the CPU."""
    if device.type != "cuda":
        return None
    return (lambda: torch.cuda.reset_peak_memory_stats(device),
            lambda: torch.cuda.max_memory_allocated(device))


# ------------------------------------------------------------- GPU precision

def precision(parity: bool = True) -> dict:
    """Parity settings (``parity=True``): full float32 and deterministic algorithms; returns them.

    On a GPU of compute capability 8.0 or newer, cuDNN may compute float32 convolutions in TF32
    (10-bit mantissa) by default and cuDNN's autotuner may pick a different algorithm per run;
    a parity-checked run switches both off, asks cuBLAS and cuDNN for deterministic algorithms
    (``CUBLAS_WORKSPACE_CONFIG`` must be set before the first matrix product on the GPU) and
    keeps reductions in float32. ``parity=False`` gives PyTorch's fast settings back: TF32 for
    matrix products and convolutions, cuDNN autotuning, no determinism. On the CPU none of this
    changes a number.
    """
    import os
    if parity:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = not parity
    torch.backends.cudnn.allow_tf32 = not parity
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = not parity
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = not parity
    torch.set_float32_matmul_precision("highest" if parity else "high")
    torch.backends.cudnn.benchmark = not parity
    torch.backends.cudnn.deterministic = parity
    torch.use_deterministic_algorithms(parity, warn_only=True)
    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "deterministic": torch.are_deterministic_algorithms_enabled(),
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


# The fast GPU settings, measured one at a time outside parity (``fast(name, net)``): what each changes.
FAST = {
    "tf32": "float32 matrix products and convolutions in TF32 (10-bit mantissa) on the tensor cores",
    "cudnn_benchmark": "cuDNN times its convolution algorithms on the first step and keeps the fastest",
    "channels_last": "the network's weights and activations in channels-last (NHWC) order",
    "amp": "forward and backward autocast to bfloat16 (float16 on GPUs older than compute capability 8.0)",
}


class fast:
    """``with fast(name, net):`` one fast setting of :data:`FAST` on top of the parity settings,
    which come back when the block ends. ``net`` is the ``nn.Module`` the block trains."""

    def __init__(self, name: str, net):
        if name not in FAST:
            raise ValueError(f"fast setting must be one of {sorted(FAST)}, got {name!r}")
        self.name, self.net, self.autocast = name, net, None

    def __enter__(self):
        precision(parity=True)
        if self.name == "tf32":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        elif self.name == "cudnn_benchmark":
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.deterministic = False
        elif self.name == "channels_last":
            self.net.to(memory_format=torch.channels_last)
        elif self.name == "amp":
            dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16
            self.autocast = torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=dtype)
            self.autocast.__enter__()
        return self

    def __exit__(self, *exc):
        if self.autocast is not None:
            self.autocast.__exit__(*exc)
        precision(parity=True)
        return False


# ------------------------------------------------------ what the records say

def accelerator(device: torch.device, matmul=None):
    """The record's ``accelerator`` dict for a CUDA device (:mod:`rosetta.core.accelerator`); None on the CPU."""
    if device.type != "cuda":
        return None
    from rosetta.core import accelerator as acc
    props = torch.cuda.get_device_properties(device)
    return acc.describe(name=props.name, capability=(props.major, props.minor), cuda=torch.version.cuda,
                        cudnn=torch.backends.cudnn.version(), memory_bytes=props.total_memory, matmul=matmul)


def gpu_matmul_rate(device: torch.device, n: int = 8192, repeats: int = 10) -> dict:
    """The GPU's float32 and TF32 matrix-multiply rates in GFLOP/s, measured on ``device``.

    The yardstick of "fraction of peak" on a GPU, as :func:`rosetta.core.peak.machine_peak` is on
    the CPU: the median of ``repeats`` timed n x n products (2 n^3 operations each), after one
    warm-up, with CUDA events; once in full float32 (the parity settings) and once with TF32
    allowed. The parity settings are restored afterwards. Returns the rate by precision, with the
    size ``n`` and every product's seconds by precision (``samples_s``) for the records.
    """
    if device.type != "cuda":
        raise ValueError(f"gpu_matmul_rate measures a CUDA device, got {device}")
    import numpy as np
    g = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(n, n, device=device, generator=g) for _ in range(2))
    out = torch.empty(n, n, device=device)
    rates = {"n": n, "samples_s": {}}
    try:
        for name, tf32 in (("float32", False), ("tf32", True)):
            precision(parity=True)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.mm(a, b, out=out)
            seconds = []
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.mm(a, b, out=out)
                end.record()
                end.synchronize()
                seconds.append(start.elapsed_time(end) / 1e3)
            rates[name] = 2.0 * n ** 3 / float(np.median(seconds)) / 1e9
            rates["samples_s"][name] = seconds
    finally:
        precision(parity=True)
    return rates
