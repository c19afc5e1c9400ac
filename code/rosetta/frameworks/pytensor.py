"""What the PyTensor chapter needs beyond PyTensor: flags, compile cache, JAX device, synchronisation.

PyTensor (the continuation of Theano by the PyMC developers) needs NumPy 2, so its chapter
runs in an environment of its own (kernel ``rosetta-pytensor``). Call :func:`setup` before
importing PyTensor or JAX: both read their configuration once, at import. PyTensor's JAX
backend runs on JAX's devices, so the device functions are the JAX module's.
"""
import ctypes.util
import os
from pathlib import Path
import warnings

from rosetta.core.paths import build_dir
from rosetta.frameworks.jax import device_name, device_type, resolve_device, sync  # noqa: F401 (the interface)


def compile_dir() -> Path:
    """PyTensor's compile cache for this build (C modules and Numba's cache; kept between runs)."""
    return build_dir() / "pytensor" / "compiledir"


def setup(threads: int, *, device: str = "auto") -> dict:
    """float32 by default, compile cache in the build folder, JAX limited to the device asked for.

    ``device``: 'auto' lets JAX take a GPU where it has one, 'cpu' keeps it on the CPU,
    'cuda' requires a GPU (checked by :func:`resolve_device`).
    """
    folder = compile_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # its C code links Debian's OpenBLAS (make system-deps), as Theano's does
    blas = ",blas__ldflags=-lopenblas" if ctypes.util.find_library("openblas") else ""
    os.environ["PYTENSOR_FLAGS"] = f"floatX=float32,base_compiledir={folder}{blas}"
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    # PyTensor sums float32 in a float64 accumulator; JAX (without x64) keeps float32 and says so
    warnings.filterwarnings("ignore", message=r"Explicitly requested dtype float64", category=UserWarning)
    return {"compiledir": str(folder), "threads": threads, "device": device}


def device_memory(device):
    """None: JAX keeps a peak counter per device (``memory_stats()``) but cannot reset it, so it
    cannot say what one run used."""
    return None
