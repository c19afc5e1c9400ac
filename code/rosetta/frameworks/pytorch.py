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
