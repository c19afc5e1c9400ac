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
            # The region spans many steps: autocast's cache of the weights' low-precision copies
            # would keep the first step's copies for every later forward pass (the network would
            # not learn), so the cache is off and each forward pass casts the current weights.
            self.autocast = torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=dtype,
                                           cache_enabled=False)
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


# ------------------------------------------------------ the CPU's settings

# What PyTorch offers on a CPU to run the same LeNet step faster without changing what it
# computes, measured one at a time from the same weights over the same batches (``cpu_setting``).
CPU_SETTINGS = {
    "eager": "PyTorch as it comes: eager execution, oneDNN convolutions, NCHW tensors",
    "channels_last": "weights and images in channels-last (NHWC) order",
    "flush_denormal": "denormal floats flushed to zero (torch.set_flush_denormal)",
    "onednn_off": "oneDNN switched off: PyTorch's own convolution kernels",
    "jit_trace": "the network traced into a TorchScript graph (torch.jit.trace)",
    "compile": "torch.compile: forward and backward captured and compiled to C++ by Inductor",
}
DEFAULT_SETTING = "eager"
CLOSE = 0.05              # a tuned setting less than 5% faster than the default: within noise
# Left out of quick mode: a cold compilation alone takes longer than a quick chapter may.
QUICK_LEAVES_OUT = {"compile": "quick mode leaves it out, because its cold compilation alone "
                               "takes longer than the whole quick chapter may (the full build "
                               "measures it)"}
_compiled = False         # whether this process has compiled a network (Inductor's cache is warm)


def compile_problem():
    """Why ``torch.compile`` cannot run on this CPU, or None where it can.

    Inductor, ``torch.compile``'s default backend, writes C++ for the CPU and builds it with a C++
    compiler (``g++``, or the one ``$CXX`` names); a machine without one cannot compile.
    """
    try:
        from torch._inductor import cpp_builder
        cpp_builder.get_cpp_compiler()
    except Exception as err:            # InvalidCxxCompiler, or an Inductor that moved it
        return (f"torch.compile needs a C++ compiler for its CPU code and found none "
                f"({type(err).__name__}: {err}); install one (Debian: apt-get install g++) "
                f"or name it in $CXX")
    return None


class cpu_setting:
    """``with cpu_setting(name, net, example) as s:`` train ``net`` with the CPU setting ``name``
    (:data:`CPU_SETTINGS`); ``s.module`` is the module to train in place of ``net`` (``net``
    itself, or its trace or compiled wrapper, which share its parameters) and ``s.one_off`` its
    one-off costs as ``(name, kind, seconds)``. PyTorch's global switches (denormals, oneDNN)
    come back when the block ends.

    ``example`` is an (images, labels) batch: tracing and compiling run it forward and backward
    once (the one-off cost, timed) and then clear the gradients, so that the weights the
    training starts from are the shared ones. A compilation that fails raises
    :class:`CompileError` with the reason.
    """

    def __init__(self, name: str, net, example):
        if name not in CPU_SETTINGS:
            raise ValueError(f"CPU setting must be one of {sorted(CPU_SETTINGS)}, got {name!r}")
        self.name, self.net, self.example = name, net, example
        self.module, self.one_off, self.deprecated = net, [], False

    def __enter__(self):
        import time
        self._mkldnn = torch.backends.mkldnn.enabled
        if self.name == "flush_denormal":
            torch.set_flush_denormal(True)
        elif self.name == "onednn_off":
            torch.backends.mkldnn.enabled = False
        elif self.name == "channels_last":
            # in place; a one-channel image is the same in either order
            self.net.to(memory_format=torch.channels_last)
        elif self.name in ("jit_trace", "compile"):
            on = next(self.net.parameters()).device
            x, y = (torch.as_tensor(a, device=on) for a in self.example)
            t0 = time.perf_counter()
            if self.name == "jit_trace":
                import warnings
                with warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("always", DeprecationWarning)
                    self.module = torch.jit.trace(self.net, x)
                self.deprecated = any(issubclass(w.category, DeprecationWarning) for w in said)
            else:
                problem = compile_problem()
                if problem:
                    raise CompileError(problem)
                self.module = torch.compile(self.net)
            try:
                torch.nn.functional.cross_entropy(self.module(x), y).backward()
            except Exception as err:
                raise CompileError(f"torch.compile failed on this machine: {type(err).__name__}: "
                                   f"{str(err).splitlines()[0] if str(err) else ''}") from err
            global _compiled
            kind = "trace" if self.name == "jit_trace" else \
                "compile_warm" if _compiled else "compile_cold"
            _compiled = _compiled or self.name == "compile"
            self.one_off = [(f"{'trace' if kind == 'trace' else 'compile'} the network", kind,
                             time.perf_counter() - t0)]
            self.net.zero_grad(set_to_none=True)
        return self

    def __exit__(self, *exc):
        if self.name == "flush_denormal":
            torch.set_flush_denormal(False)          # PyTorch's default; it has no getter
        torch.backends.mkldnn.enabled = self._mkldnn
        return False


def fresh_compile_cache() -> str:
    """Point Inductor at an empty cache folder for the rest of this process, so that the first
    compilation is a cold one (not one served from an earlier run's cache); removed at exit."""
    import atexit
    import os
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="rosetta-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def settings_table(recs, steps: int):
    """One row per CPU setting's record: its median step, its speed against the default, its
    one-off cost and whether it kept parity over the first ``steps`` checked steps."""
    import pandas as pd
    from rosetta.core import tuning
    recs = list(recs)
    base = next(r for r in recs if r["variant"] == DEFAULT_SETTING)["timing"]["median_s"]
    return pd.DataFrame([{
        "setting": r["variant"], "what it changes": CPU_SETTINGS[r["variant"]],
        "median step (ms)": 1e3 * r["timing"]["median_s"],
        "speed vs default": base / r["timing"]["median_s"],
        "one-off (s)": sum(c["seconds"] for c in r["one_off"]),
        "max rel. deviation": tuning.held_steps(r, steps),
        "keeps parity": tuning.qualifies(r, steps)} for r in recs])


def tuning_text(settings: dict, tuned: str, steps: int, not_run: dict) -> str:
    """Which CPU setting won and why, from the records of :data:`CPU_SETTINGS` (``settings``:
    name -> record) and the settings that could not run (``not_run``: name -> reason)."""
    from rosetta.core import tuning
    ms = {n: 1e3 * r["timing"]["median_s"] for n, r in settings.items()}
    if tuned == DEFAULT_SETTING:
        text = ("No setting was faster than the default while keeping parity on this run, so the "
                "main run below uses the default.")
    else:
        text = (f"On this run `{tuned}` ({CPU_SETTINGS[tuned]}) was the fastest setting that "
                f"kept parity, and the main run below uses it.")
    if tuned != DEFAULT_SETTING and ms[DEFAULT_SETTING] / ms[tuned] < 1 + CLOSE:
        text += (f" It was less than {100 * CLOSE:.0f}% faster, a margin that step times on a busy "
                 f"machine can cross from one run to the next, so another run may choose "
                 f"differently.")
    lost = [n for n, r in settings.items() if ms[n] < ms[tuned] and not tuning.qualifies(r, steps)]
    if lost:
        text += " " + " and ".join(f"`{n}`" for n in lost) + (
            f" would have been faster, but left the reference by more than the tolerance within "
            f"the first {steps} steps.")
    if "compile" in settings:
        cost = sum(c["seconds"] for c in settings["compile"]["one_off"])
        saved = ms[DEFAULT_SETTING] - ms["compile"]
        text += (f" `torch.compile` spent {cost:.1f} s compiling before its first step"
                 + (f", which its {saved:.2f} ms saved per step pays back after about "
                    f"{1e3 * cost / saved:,.0f} steps." if saved > 0 else
                    ", and its steps were no faster than the default's on this run."))
    trace = settings.get("jit_trace")
    if trace and trace["extra"].get("deprecated"):
        text += (f" PyTorch {trace['framework_version']} warns that `torch.jit.trace` is deprecated "
                 f"in favour of `torch.compile` and `torch.export`.")
    for name, why in not_run.items():
        text += f" `{name}` was not measured on this machine: {why}."
    return text


class CompileError(RuntimeError):
    """``torch.compile`` cannot run here (no C++ compiler, or Inductor failed); the message says why."""


# ------------------------------------------------ feeding and the data's effect

def activations_and_gradients(net, images, labels) -> list:
    """One forward and backward pass of ``net`` on a batch: every layer's output, its gradient
    and every parameter's gradient, as NumPy arrays (the gradients are cleared again)."""
    outputs = []

    def keep(module, inputs, out):
        out.retain_grad()
        outputs.append(out)
    hooks = [m.register_forward_hook(keep) for m in net.children()]
    try:
        net.zero_grad(set_to_none=True)
        on = next(net.parameters()).device
        torch.nn.functional.cross_entropy(net(torch.as_tensor(images, device=on)),
                                          torch.as_tensor(labels, device=on)).backward()
    finally:
        for h in hooks:
            h.remove()
    arrays = [t.detach().cpu().numpy() for t in outputs]
    arrays += [t.grad.detach().cpu().numpy() for t in outputs if t.grad is not None]
    arrays += [p.grad.detach().cpu().numpy() for p in net.parameters() if p.grad is not None]
    net.zero_grad(set_to_none=True)
    return arrays


def feeding_text(feeding: dict, first_ms: dict, threads: int) -> str:
    """What :func:`rosetta.core.pipeline.compare`'s result (median steps, feeding included) says
    about PyTorch's ``DataLoader``; ``first_ms`` is each feed's first step, where workers start."""
    names = {"dataloader_0": "without workers", "dataloader_2": "with two workers"}
    numpy_ms, share = 1e3 * feeding["numpy_s"], feeding["prepare_share"]
    text = (f"Fed NumPy batches, the median step took {numpy_ms:.2f} ms on this run, feeding "
            f"included; gathering a batch with NumPy took {1e6 * feeding['prepare_s']:.0f} µs of "
            f"it ({100 * share:.1f}%), which is the most a loader could hide. ")
    parts = []
    for name, r in feeding["loaders"].items():
        how = {"helps": "faster", "costs": "slower", "no difference": "about as fast"}[r["verdict"]]
        parts.append(f"the `DataLoader` {names.get(name, name)} {1e3 * r['s']:.2f} ms "
                     f"({r['ratio']:.2f} times NumPy's: {how})")
    text += "Over the same batches, " + "; ".join(parts) + "."
    if "dataloader_2" in first_ms and "numpy" in first_ms:
        text += (f" Its first step, which starts the two workers, took "
                 f"{first_ms['dataloader_2']:.0f} ms against {first_ms['numpy']:.0f} ms with "
                 f"NumPy batches, and a `DataLoader` starts its workers again every epoch unless "
                 f"told to keep them (`persistent_workers=True`).")
    if any(r["verdict"] == "helps" for r in feeding["loaders"].values()):
        text += " A loader paid off on this machine."
    else:
        text += (f" On this machine no loader paid off: there was little to hide, and the step "
                 f"already keeps its {threads} threads busy, so worker processes compete with it "
                 f"for the cores, while a `DataLoader` without workers adds its own per-image "
                 f"indexing and collating to each step.")
    return text


NOISY_STEPS = 100     # fewer timed steps than this: a median step that may not repeat


def data_text(effect: dict, steps: int) -> str:
    """What :func:`rosetta.core.synthetic.compare`'s result says, in words."""
    from rosetta.core import synthetic
    name = synthetic.SHORT
    differ = [k for k, v in effect.items() if v["differs"]]
    ratios = "; ".join(f"{name[k]} {v['ratio']:.2f} times" for k, v in effect.items() if k != "mnist")
    text = f"Over {steps} steps, against shuffled MNIST's median step: {ratios}. "
    margin = f"{100 * synthetic.SAME:.0f}%"
    if not differ:
        return text + (f"On this run no stream moved the step time by more than {margin}: here, "
                       f"random tensors would have timed this step fairly.")
    explained = [k for k in differ if effect[k]["flush_explains"]]
    rest = [k for k in differ if k not in explained]
    text += _upper(" and ".join(name[k] for k in differ) + f" moved it by more than {margin}. ")
    if explained:
        text += ("With denormals flushed to zero, " + " and ".join(name[k] for k in explained)
                 + f" came back within {margin} of MNIST's (flushed) step: denormal numbers explain "
                 "that difference. ")
    if rest:
        text += _upper(" and ".join(name[k] for k in rest) + " stayed apart with denormals "
                       "flushed: denormal numbers do not explain that difference. ")
    most = max(effect, key=lambda k: effect[k]["subnormal"])
    text += (f"The largest share of denormal numbers among one step's activations and gradients "
             f"was {effect[most]['subnormal']:.1e}, with {name[most]}. " if effect[most]["subnormal"]
             else "No denormal number appeared among one step's activations and gradients in any "
                  "stream. ")
    if steps < NOISY_STEPS:
        return text + (f"Over only {steps} steps a stream's median is noisy, and differences of "
                       f"this size may not repeat; the full build times more steps.")
    return text + ("A benchmark that timed " + " or ".join(name[k] for k in differ)
                   + " instead of the real batches would have measured a different step on this "
                   "machine.")


def _upper(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]
