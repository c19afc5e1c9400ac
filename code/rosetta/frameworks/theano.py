"""What the Theano chapter needs beyond Theano: flags, compile cache, BLAS, quiet compiler, device.

Call :func:`setup` **before** ``import theano``: Theano reads its flags once, when it is
imported. It puts the compile cache inside the build folder, links Theano's C code to
Debian's OpenBLAS, and keeps Theano's log lines and deprecation warnings (start-up and
compiler chatter, not about the reader's code) out of the book::

    from rosetta.frameworks import theano as fw_theano
    fw_theano.setup(cfg.threads)
    import theano

The helpers below then switch BLAS for one compilation (:func:`numpy_blas`), start an empty
compile cache for a cold compilation (:func:`fresh_compile_cache`) and resolve the device.
"""
from contextlib import contextmanager
import ctypes.util
import logging
from pathlib import Path
import shutil
import warnings

from rosetta.frameworks import compat, no_wait
from rosetta.core.params import ParameterError
from rosetta.core.paths import build_dir

OPENBLAS = "-lopenblas"
NUMPY_C_API = ""              # empty blas__ldflags: Theano calls NumPy's C API for BLAS
QUIET_LOGGERS = ("theano", "theano.tensor.blas", "theano.link.c.cmodule", "theano.configdefaults",
                 "theano.compile.compilelock", "theano.tensor.opt", "theano.graph.opt",
                 "theano.scan.op", "theano.scan.basic")
NO_GPU = ("Theano-PyMC 1.1.2 has no working GPU backend: its CUDA backend (device=cuda, "
          "gpuarray) needs the pygpu/libgpuarray package, which is not on PyPI, and its JAX "
          "linker calls JAX functions that JAX has since removed. Use device='auto' or 'cpu' "
          "here; the PyTensor chapter runs the successor on a GPU")


def compile_dir() -> Path:
    """Theano's compile cache for this build (kept between runs, so a rebuild starts warm)."""
    return build_dir() / "theano" / "compiledir"


def openblas_available() -> bool:
    return ctypes.util.find_library("openblas") is not None


def quiet() -> None:
    """Keep Theano's log lines (BLAS fallback notice, compile locks, cache notes) and its
    deprecation warnings out of the notebook; real errors are still raised."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("theano.link.c.cmodule").addFilter(_CacheDirFilter())
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"theano(\..*)?$")
    warnings.filterwarnings("ignore", message=r".*theano.*", category=UserWarning)


class _CacheDirFilter(logging.Filter):
    """Drops the notice Theano logs once :func:`fresh_compile_cache` pointed it at another folder."""

    def filter(self, record):
        return "module cache instance with different dirname" not in record.getMessage()


def setup(threads: int, *, blas: str = "openblas") -> dict:
    """Set Theano's flags before it is imported; returns what was chosen.

    ``blas``: ``"openblas"`` links the compiled C code to OpenBLAS (Debian's
    ``libopenblas-dev``); ``"numpy"`` leaves ``blas__ldflags`` empty, so that Theano
    falls back to NumPy's C API. OpenBLAS threads come from ``threads.pin`` (called
    before this); Theano's own C code runs single-threaded (``openmp=False``).
    """
    if blas not in ("openblas", "numpy"):
        raise ParameterError(f"theano.setup: blas must be 'openblas' or 'numpy', got {blas!r}")
    if blas == "openblas" and not openblas_available():
        raise RuntimeError("OpenBLAS is not installed, so Theano cannot link to it: run "
                           "`make system-deps` (apt-get install libopenblas-dev), or call "
                           "theano.setup(threads, blas='numpy')")
    if "theano" in __import__("sys").modules:
        raise RuntimeError("theano.setup() must run before `import theano`: Theano reads its "
                           "flags once, when it is imported; restart the kernel")
    quiet()
    compat.python_scan_loop()
    folder = compile_dir()
    flags = compat.theano_flags(folder, blas_ldflags=OPENBLAS if blas == "openblas" else NUMPY_C_API)
    return {"compiledir": str(folder), "blas": blas, "threads": threads, "flags": flags}


def resolve_device(device: str) -> str:
    """'auto' and 'cpu' run on the CPU; 'cuda' is refused with the reason."""
    if device == "cuda":
        raise ParameterError(f"parameter 'device' is 'cuda', but {NO_GPU}")
    if device not in ("auto", "cpu"):
        raise ParameterError(f"parameter 'device' must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return "cpu"


def device_type(device: str) -> str:
    return device


def device_name(device: str) -> str:
    from rosetta.core.records import cpu_name
    return cpu_name()


def sync(device: str):
    """Theano's CPU functions return when their result is ready: nothing to wait for."""
    return no_wait


def device_memory(device: str):
    """None: Theano runs on the CPU here, whose peak the probe measures itself."""
    return None


def blas_in_use() -> str:
    """'openblas' or 'numpy' (NumPy's C API), from the flag in force now."""
    import theano
    return "openblas" if theano.config.blas__ldflags else "numpy"


@contextmanager
def numpy_blas():
    """Inside the block, functions compile against NumPy's C API instead of OpenBLAS
    (``blas__ldflags`` empty); functions compiled there keep it after the block."""
    import theano
    with theano.config.change_flags(blas__ldflags=NUMPY_C_API):
        yield


def fresh_compile_cache(name: str = "cold") -> Path:
    """From now on, Theano compiles into a new, empty cache folder ``<build>/theano/compiledir-<name>``:
    the next function compiled generates and compiles every C module it needs, as on a machine
    that never ran Theano; functions compiled after it reuse those modules. Returns the folder.

    Theano reads its cache folder once, at import, so this swaps the process's module cache
    (``theano.link.c.cmodule._module_cache``) for one on the new folder.
    """
    from theano.link.c import cmodule
    global _chapter_cache
    if _chapter_cache is None:
        from theano.link.c.basic import get_module_cache
        _chapter_cache = get_module_cache()          # the build's own cache (config.compiledir)
    folder = build_dir() / "theano" / f"compiledir-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cmodule._module_cache = cmodule.ModuleCache(str(folder))
    return folder


def restore_compile_cache() -> None:
    """Compile into the build's own cache again (kept between runs), after :func:`fresh_compile_cache`."""
    from theano.link.c import cmodule
    if _chapter_cache is not None:
        cmodule._module_cache = _chapter_cache


_chapter_cache = None


def cache_modules(folder) -> int:
    """How many compiled modules a cache folder holds."""
    return sum(1 for p in Path(folder).rglob("*.so") if p.parent.name.startswith("tmp"))
