"""One explicit thread count for every framework.

Call :func:`pin` before importing a framework: OpenMP, MKL, OpenBLAS, oneDNN and
the frameworks' own pools read these variables when they start. Frameworks that
also take the count through their API get it from their ``rosetta.frameworks`` module.
"""
import os

VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS")


def pin(n: int) -> int:
    """Set every thread-count variable to ``n``; returns ``n``.

    TensorFlow's inter-op pool and MXNet's engine workers are pinned to 1, so
    that no framework runs more threads than there are cores.
    """
    for var in VARIABLES:
        os.environ[var] = str(n)
    os.environ["MXNET_CPU_WORKER_NTHREADS"] = "1"
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    return n
