"""What the Theano chapter needs beyond Theano: flags, compile cache, BLAS, quiet compiler, device.

Call :func:`setup` **before** ``import theano``: Theano reads its flags once, when it is
imported. It puts the compile cache inside the build folder, links Theano's C code to
Debian's OpenBLAS, and keeps Theano's log lines and deprecation warnings (start-up and
compiler chatter, not about the reader's code) out of the book::

    from rosetta.frameworks import theano as fw_theano
    fw_theano.setup(cfg.threads)
    import theano

The helpers below then set flags for one compilation (:func:`compiling_with`), start an empty
compile cache for a cold compilation (:func:`fresh_compile_cache`) and resolve the device.
"""
from contextlib import contextmanager, redirect_stderr, redirect_stdout
import ctypes.util
import io
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
def compiling_with(**flags):
    """Functions compiled inside the block get Theano ``flags`` (``blas__ldflags=""``: NumPy's C API
    instead of OpenBLAS; ``openmp=True``; ``gcc__cxxflags=...``) and keep them after it.

    A setting that Theano cannot compile raises its exception from the block; what Theano prints
    and logs on the way (the path of the failed C code, the optimiser's traceback) is kept out of
    the book, the exception says what failed.
    """
    import theano
    opt_log = logging.getLogger("theano.graph.opt")
    level = opt_log.level
    opt_log.setLevel(logging.CRITICAL)
    try:
        with theano.config.change_flags(**flags), redirect_stdout(io.StringIO()), \
                redirect_stderr(io.StringIO()):
            yield
    finally:
        opt_log.setLevel(level)


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


def modules_in_cache() -> int:
    """How many compiled modules the compile cache in use holds now."""
    from theano.link.c.basic import get_module_cache
    return cache_modules(get_module_cache().dirname)


def compile_kind(modules_compiled: int) -> str:
    """The one-off kind of a compilation (``records.ONE_OFF_KINDS``): ``compile_cold`` when it had to
    compile C modules (the cache held none of them, as on a machine that never ran this program),
    ``compile_warm`` when every module came from the cache."""
    if modules_compiled < 0:
        raise ValueError(f"a compilation cannot remove modules from the cache: {modules_compiled}")
    return "compile_cold" if modules_compiled else "compile_warm"


PROFILE_PARTS = ("convolution", "pooling", "dense layers", "softmax and loss", "elementwise",
                 "other operations", "Theano's virtual machine", "Python around the call")


def profile_part(node) -> str:
    """Which part of a network an apply node of a compiled Theano graph belongs to.

    Convolutions are Theano's convolution ops (``CorrMM`` and its gradients, the legacy ``ConvOp``);
    pooling is Theano's pooling ops and every node that works on a tensor of five or more
    dimensions (a max-pooling written with tensor operations, as the chapter's ``max_pool``, works
    on a view of its 2x2 windows); dense layers are the matrix products (``Dot22``, ``Gemm``...);
    softmax and loss the fused softmax and cross-entropy ops; elementwise the (fused) elementwise
    loops: bias additions, ReLU, the momentum updates; the rest (reductions, reshapes, shapes) is
    other operations.
    """
    name = type(node.op).__name__
    if name.startswith(("CorrMM", "ConvOp", "AbstractConv")):
        return "convolution"
    if name.startswith(("Pool", "MaxPoolGrad", "AveragePoolGrad", "DownsampleFactorMax")) or any(
            getattr(v.type, "ndim", 0) >= 5 for v in list(node.inputs) + list(node.outputs)):
        return "pooling"
    if name.startswith(("Dot", "Gemm", "Gemv", "CGemv", "Ger", "CGer")):
        return "dense layers"
    if "Softmax" in name or "Crossentropy" in name:
        return "softmax and loss"
    if name == "Elemwise":
        return "elementwise"
    return "other operations"


def profile_parts(profile) -> dict:
    """Where the calls of a profiled function (``theano.function(..., profile=ProfileStats())``)
    spent their time, in seconds per call, by :data:`PROFILE_PARTS`.

    The ops' own times come from the profiler's per-node timings (:func:`profile_part` sorts the
    nodes); "Theano's virtual machine" is the time inside the compiled function that no node
    accounts for (running the graph: scheduling the nodes, freeing intermediate arrays), and
    "Python around the call" is the rest of the call (checking and converting the inputs,
    applying the updates, returning the outputs). The parts add up to the time per call.
    """
    calls = profile.fct_callcount
    if not calls:
        raise ValueError("the profile holds no call: call the profiled function before reading its profile")
    if not profile.apply_time:
        raise ValueError("the profile holds no per-node times: compile with profile=ProfileStats() and a "
                         "linker that times its nodes (Theano's default cvm does)")
    parts = dict.fromkeys(PROFILE_PARTS, 0.0)
    for (_, node), seconds in profile.apply_time.items():
        parts[profile_part(node)] += seconds
    nodes = sum(profile.apply_time.values())
    parts["Theano's virtual machine"] = max(0.0, profile.vm_call_time - nodes)
    parts["Python around the call"] = max(0.0, profile.fct_call_time - max(profile.vm_call_time, nodes))
    return {part: seconds / calls for part, seconds in parts.items()}
