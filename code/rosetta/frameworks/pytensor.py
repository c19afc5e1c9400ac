"""What the PyTensor chapter needs beyond PyTensor: flags, JAX device, synchronisation.

PyTensor (the continuation of Theano by the PyMC developers) needs NumPy 2, so its chapter
runs in an environment of its own (kernel ``rosetta-pytensor``). Call :func:`setup` before
importing PyTensor or JAX: both read their configuration once, at import.
"""
import os
import warnings

from rosetta.core.params import ParameterError
from rosetta.core.paths import build_dir


def setup(threads: int, *, device: str = "auto") -> dict:
    """float32 by default, compile cache in the build folder, JAX limited to the device asked for.

    ``device``: 'auto' lets JAX take a GPU where it has one, 'cpu' keeps it on the CPU,
    'cuda' requires a GPU (checked by :func:`resolve_device`).
    """
    folder = build_dir() / "pytensor" / "compiledir"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PYTENSOR_FLAGS"] = f"floatX=float32,base_compiledir={folder}"
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    # PyTensor sums float32 in a float64 accumulator; JAX (without x64) keeps float32 and says so
    warnings.filterwarnings("ignore", message=r"Explicitly requested dtype float64", category=UserWarning)
    return {"compiledir": str(folder), "threads": threads, "device": device}


def resolve_device(device: str):
    """The JAX device the chapter runs on; 'cuda' without a GPU is an error."""
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
    asynchronously, and has no call that waits for a whole device); returns ``value``."""
    import jax

    def wait(value=None):
        return jax.block_until_ready(value)
    return wait


def device_memory(device):
    """None: JAX keeps a peak counter per device (``memory_stats()``) but cannot reset it, so it
    cannot say what one run used."""
    return None
