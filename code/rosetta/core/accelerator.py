"""The GPU a run used, as its record names it, and which GPUs a CUDA library has code for.

Every record of a run on a GPU carries an ``accelerator`` dict (None on the CPU): the GPU's
name, its compute capability, the NVIDIA driver, and the CUDA and cuDNN versions the framework
runs with (:func:`describe`; each framework module's ``accelerator(device)`` fills in what the
framework knows). :func:`check` says what is wrong with one, for ``rosetta-records import``.

:func:`fatbin_architectures` reads the GPU code a CUDA library carries (the ``.nv_fatbin``
section of its ELF file), and :func:`runs_on` applies NVIDIA's compatibility rule to it:
compiled code (SASS) for ``sm_XY`` runs on GPUs of compute capability X.Z with Z >= Y, PTX for
``compute_XY`` on any GPU of capability X.Y or newer
(https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#binary-compatibility).
"""
from pathlib import Path
import re
import shutil
import struct
import subprocess

FIELDS = ("name", "compute_capability", "driver", "cuda", "cudnn")
PRECISIONS = ("float32", "tf32")          # the matrix-multiply rates a GPU record may carry
FATBIN_MAGIC = 0xBA55ED50


def driver_version():
    """The NVIDIA driver's version, from ``nvidia-smi`` or ``/proc/driver/nvidia/version``; None without one."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        m = re.search(r"Kernel Module\s+(\S+)", Path("/proc/driver/nvidia/version").read_text())
        return m.group(1) if m else None
    except OSError:
        return None


def describe(*, name, capability, cuda, cudnn, driver=None, memory_bytes=None, matmul=None) -> dict:
    """The record's ``accelerator`` dict. ``capability`` is (major, minor) or "X.Y"; ``matmul``
    the device's measured matrix-multiply rates: GFLOP/s by precision (:data:`PRECISIONS`), and
    optionally the matrix size ``n`` and the timed products' ``samples_s`` by precision, from
    which :func:`rosetta.core.peak.save` keeps the rates as ``matmul`` records of the GPU."""
    if capability is not None and not isinstance(capability, str):
        capability = "{}.{}".format(*capability)
    matmul = matmul or {}
    return {"name": str(name), "compute_capability": capability,
            "driver": driver if driver is not None else driver_version(),
            "cuda": None if cuda is None else str(cuda), "cudnn": None if cudnn is None else str(cudnn),
            "memory_bytes": None if memory_bytes is None else int(memory_bytes),
            "matmul_gflops": {k: float(v) for k, v in matmul.items() if k in PRECISIONS} or None,
            "matmul_n": int(matmul["n"]) if matmul.get("n") else None,
            "matmul_samples_s": {k: [float(t) for t in v] for k, v in matmul["samples_s"].items()}
            if matmul.get("samples_s") else None}


def check(acc) -> list:
    """What is missing or wrong in a record's ``accelerator`` dict: a list of (field, problem)."""
    if not isinstance(acc, dict):
        return [("accelerator", f"must be a dict naming the GPU, got {type(acc).__name__}")]
    bad = [(f"accelerator.{k}", "missing or empty") for k in FIELDS if not acc.get(k)]
    cc = acc.get("compute_capability")
    if cc and not re.fullmatch(r"\d+\.\d+", str(cc)):
        bad.append(("accelerator.compute_capability", f"must read like '8.9', got {cc!r}"))
    return bad


def fatbin_architectures(path) -> dict:
    """The GPU code in the ELF file ``path``: {"sass": sorted sm numbers, "ptx": sorted numbers}
    (86 means sm_86 / compute_86). Empty lists where the file has no ``.nv_fatbin`` section."""
    data = Path(path).read_bytes()
    section = _elf_section(data, b".nv_fatbin")
    found = {"sass": set(), "ptx": set()}
    pos = 0
    while section is not None and pos + 16 <= len(section):
        magic, _version, header, size = struct.unpack_from("<IHHQ", section, pos)
        if magic != FATBIN_MAGIC:
            pos += 8                      # fat binaries are 8-byte aligned; skip padding
            continue
        entry, end = pos + header, pos + header + size
        while entry + 32 <= end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", section, entry)
            arch = struct.unpack_from("<I", section, entry + 28)[0]
            if kind in (1, 2):
                found["ptx" if kind == 1 else "sass"].add(arch)
            entry += entry_header + entry_size
        pos = end
    return {k: sorted(v) for k, v in found.items()}


def _elf_section(data: bytes, name: bytes):
    """The bytes of section ``name`` of a 64-bit little-endian ELF file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    names = data[strtab[4]:strtab[4] + strtab[5]]
    for sh_name, _type, _flags, _addr, offset, size in headers:
        if names[sh_name:names.index(b"\0", sh_name)] == name:
            return data[offset:offset + size]
    return None


def runs_on(capability, archs: dict) -> bool:
    """Whether code with ``archs`` (from :func:`fatbin_architectures`) runs on a GPU of ``capability``."""
    if isinstance(capability, str):
        capability = tuple(int(p) for p in capability.split("."))
    major, minor = capability
    if any(a // 10 == major and a % 10 <= minor for a in archs.get("sass", ())):
        return True
    return any(a <= 10 * major + minor for a in archs.get("ptx", ()))
