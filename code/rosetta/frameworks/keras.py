"""What the Keras appendix's program needs beyond Keras itself: each backend's threads and version.

Keras 3 reads ``KERAS_BACKEND`` once, when it is imported, so each backend runs in a
process of its own (see :mod:`rosetta.frameworks.worker`). Call :func:`setup` after
``worker.job()`` and before ``import keras``: it gives the backend the chapter's thread
count the way that backend takes it.
"""
import os

BACKENDS = ("tensorflow", "torch", "jax")


def backend() -> str:
    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    if name not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND is {name!r}; this book runs Keras on {', '.join(BACKENDS)}")
    return name


def setup(threads: int) -> dict:
    """Pin the backend named by ``KERAS_BACKEND`` to ``threads`` intra-op threads (before ``import keras``)."""
    name = backend()
    if name == "tensorflow":
        from rosetta.frameworks import tensorflow as fw_tensorflow          # imports TensorFlow with its start-up log kept quiet
        return fw_tensorflow.setup(threads)
    if name == "torch":
        from rosetta.frameworks import pytorch as fw_torch
        return fw_torch.setup(threads)
    # XLA's CPU thread pools take their size from PJRT_NPROC, read when jax starts its backend
    # (rosetta.frameworks.jax says how this was measured)
    os.environ["PJRT_NPROC"] = str(threads)
    return {"intra_op": threads, "inter_op": 1}


def backend_version() -> str:
    """The version of the library under Keras."""
    name = backend()
    module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}[name]
    return __import__(module).__version__
