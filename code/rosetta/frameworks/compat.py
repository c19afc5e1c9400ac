"""Shims that let the retired frameworks (MXNet 1.9.1, Theano-PyMC 1.1.2) import today.

Apply them before importing those frameworks::

    from rosetta.frameworks import compat
    compat.numpy_aliases()        # both
    compat.theano_flags(folder)   # Theano, before `import theano`

Each shim changes only what is missing, so it is harmless where the old names
still exist and can be applied any number of times.
"""
import os
import sys
import types
import warnings

import numpy as np

# NumPy aliases removed in NumPy 1.24 that MXNet and Theano still use
ALIASES = {"bool": bool, "int": int, "float": float, "complex": complex, "object": object, "str": str}


def numpy_aliases() -> list:
    """Restore the removed NumPy type aliases where absent; returns the names restored."""
    restored = []
    for name, value in ALIASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # probing a deprecated alias warns on some NumPy versions
            present = hasattr(np, name)
        if not present:
            setattr(np, name, value)
            restored.append(name)
    return restored


def numpy_distutils_stub() -> bool:
    """On Python 3.12+ (no ``numpy.distutils``), give Theano the one function it imports from it."""
    try:
        import numpy.distutils.misc_util  # noqa: F401
        return False
    except ImportError:
        pass
    pkg = types.ModuleType("numpy.distutils")
    misc = types.ModuleType("numpy.distutils.misc_util")
    misc.get_numpy_include_dirs = lambda: [np.get_include()]
    pkg.misc_util = misc
    pkg.__path__ = []
    sys.modules["numpy.distutils"] = pkg
    sys.modules["numpy.distutils.misc_util"] = misc
    np.distutils = pkg
    return True


def pkg_resources_stub() -> bool:
    """Where setuptools no longer ships ``pkg_resources`` (setuptools 81+), give Theano the one name
    it takes from it: ``theano.gpuarray.linalg`` (imported by ``theano.scan``) catches
    ``pkg_resources.DistributionNotFound``. Returns True if the stub was installed."""
    try:
        import pkg_resources  # noqa: F401
        return False
    except ImportError:
        pass
    mod = types.ModuleType("pkg_resources")

    class DistributionNotFound(Exception):
        """Stand-in for setuptools' exception of that name."""

    mod.DistributionNotFound = DistributionNotFound
    sys.modules["pkg_resources"] = mod
    return True


def theano_flags(compiledir, blas_ldflags: str = "", extra: str = "") -> str:
    """Set ``THEANO_FLAGS`` (float32, compile cache in ``compiledir``, no OpenMP) before Theano imports.

    ``openmp=True`` makes Theano-PyMC 1.1.2 generate C code that does not
    compile, so OpenMP stays off; ``blas_ldflags`` links a BLAS (empty: Theano
    calls NumPy's).
    """
    numpy_aliases()
    numpy_distutils_stub()
    pkg_resources_stub()
    os.makedirs(compiledir, exist_ok=True)
    flags = [f"floatX=float32", f"base_compiledir={compiledir}", "openmp=False",
             f"blas__ldflags={blas_ldflags}", "cxx=g++", "device=cpu"]
    if extra:
        flags.append(extra)
    os.environ["THEANO_FLAGS"] = ",".join(flags)
    return os.environ["THEANO_FLAGS"]
