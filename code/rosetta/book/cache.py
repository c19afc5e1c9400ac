"""The execution cache: a chapter is executed again only when something it depends on changed.

A chapter's *key* is a set of content hashes, one per thing it depends on (:func:`inputs`):

- ``code``: its code cells (source and tags) and its kernel's name; prose is left out, so a
  prose-only edit re-renders the chapter with the outputs of its last run;
- ``parameters``: the parameters it is executed with;
- ``package``: every file of the helper package (``code/rosetta``, ``code/pyproject.toml``);
- ``locks``: ``requirements.txt``, the lock file of the chapter's extra environment and the
  MNIST checksum list (``data/mnist/SHA256SUMS``, which pins the data);
- ``environment``: its kernel (spec, Python version and installed distributions) and the
  stamp of its extra environment (``.envs/<env>/.installed``, touched whenever make rebuilds it);
- ``records`` (chapters that run last and read the others' records): every record of this
  build's other chapters and of ``data/records/``, and, for a chapter that reads the run report
  (``rosetta: {reads_report: true}``), the other chapters' entries in it.

After a chapter succeeds, :func:`store` writes ``_build/cache/<chapter>.json``: its key, when it
ran, how long it took, and a hash of every file it left (``_build/records/<chapter>/``,
``_build/downloads/<chapter>/``, the executed notebook). :func:`lookup` answers that entry when
the key is unchanged and those files are still as they were.

Why not jupyter-cache (pinned, and used by Jupyter Book): it keys a notebook on its code cells
and kernelspec only, stores copies of the executed notebook and of "artifacts" that must sit
in the notebook's own folder, and executes with nbclient. Here the key also needs the helper
package, the lock files, the environments and the other chapters' records; the outputs are
already kept in place (records replaced atomically by the build, executed notebooks in
``_build/executed/``); and chapters run through papermill. Fitting it would mean smuggling those
hashes into notebook metadata and copying every record into its store; a key file per chapter
is shorter and keeps one copy of each output.
"""
import copy
from datetime import datetime, timezone
import hashlib
import json
from pathlib import Path
import subprocess

import nbformat

from rosetta.core import files, paths

CACHE = "cache"
ORDER = ("code", "parameters", "package", "locks", "environment", "records")


def digest(data) -> str:
    if not isinstance(data, bytes):
        data = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def files_hash(paths, base: Path) -> str:
    """One hash of the names (relative to ``base``) and contents of ``paths``."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        if p.is_file():
            h.update(str(p.relative_to(base) if base in p.parents else p).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def tree_files(folder: Path) -> list:
    folder = Path(folder)
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts] if folder.is_dir() else []


def code_hash(nb, kernel: str) -> str:
    """The code cells (source and tags) and the kernel: what executing the notebook depends on."""
    cells = [(c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells if c.cell_type == "code"]
    return digest({"kernel": kernel, "cells": cells})


def package_hash(root: Path) -> str:
    code = root / "code"
    return files_hash(tree_files(code / "rosetta") + [code / "pyproject.toml"], root)


def locks_hash(root: Path, env: str = None) -> str:
    paths = [root / "requirements.txt", root / "data" / "mnist" / "SHA256SUMS"] + ([root / "envs" / f"requirements-{env}.txt"] if env else [])
    return files_hash(paths, root)


_kernel_cache = {}


def kernel_fingerprint(kernel: str) -> str:
    """The kernel spec and, for a Python kernel, its Python's version and installed distributions."""
    if kernel in _kernel_cache:
        return _kernel_cache[kernel]
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec(kernel)
    probe = ("import sys, importlib.metadata as m; print(sys.version); "
             "print(sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))")
    try:
        out = subprocess.run([spec.argv[0], "-c", probe], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    _kernel_cache[kernel] = digest({"argv": spec.argv, "env": spec.env, "python": out})
    return _kernel_cache[kernel]


def environment_hash(root: Path, kernel: str, env: str = None) -> str:
    stamp = root / paths.ENVS / env / ".installed" if env else None
    stamp_id = stamp.stat().st_mtime_ns if stamp is not None and stamp.is_file() else None
    return digest({"kernel": kernel_fingerprint(kernel), "env": env, "stamp": stamp_id})


def records_hash(build_dir: Path, name: str, committed: Path, extra_folders=(), report: dict = None) -> str:
    """The other chapters' records (and run-report entries): what a chapter that runs last reads."""
    paths = [p for p in tree_files(build_dir / "records") if p.relative_to(build_dir / "records").parts[0] != name]
    for folder in [committed, *map(Path, extra_folders)]:
        paths += tree_files(folder)
    others = None if report is None else {k: v for k, v in report.items() if k != name}
    return digest({"files": files_hash(paths, build_dir), "report": others})


def outputs(build_dir: Path, name: str) -> dict:
    """Hashes of what a chapter leaves: its records, its downloads, its executed notebook."""
    return {"records": files_hash(tree_files(build_dir / "records" / name), build_dir),
            "downloads": files_hash(tree_files(build_dir / "downloads" / name), build_dir),
            "notebook": files_hash([build_dir / "executed" / f"{name}.ipynb"], build_dir)}


def _entry_path(build_dir: Path, name: str) -> Path:
    return build_dir / CACHE / f"{name}.json"


def lookup(build_dir: Path, name: str, key: dict):
    """The cache entry of ``name`` if ``key`` matches it and its outputs are intact, else None."""
    path = _entry_path(build_dir, name)
    try:
        entry = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if entry.get("key") != key or entry.get("outputs") != outputs(build_dir, name):
        return None
    return entry


def changed(build_dir: Path, name: str, key: dict) -> str:
    """Why ``name`` must be executed, in words (for the build's log)."""
    path = _entry_path(build_dir, name)
    try:
        old = json.loads(path.read_text())["key"]
    except (OSError, json.JSONDecodeError, KeyError):
        return "not executed before"
    diff = [k for k in ORDER if old.get(k) != key.get(k)]
    return f"{', '.join(diff)} changed" if diff else "its outputs changed since it ran"


def store(build_dir: Path, name: str, key: dict, seconds: float, finished: str = None) -> Path:
    path = _entry_path(build_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"key": key, "outputs": outputs(build_dir, name), "seconds": round(seconds, 2),
             "finished": finished or datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return files.write_text(path, json.dumps(entry, indent=1, sort_keys=True))


def forget(build_dir: Path, name: str) -> None:
    _entry_path(build_dir, name).unlink(missing_ok=True)


def merge(new_nb, executed_nb):
    """The executed notebook with the prose and cell tags of ``new_nb`` (same code cells).

    The executed notebook has papermill's injected-parameters cell in addition; it is kept
    after the cell tagged ``parameters``.
    """
    out = nbformat.from_dict(copy.deepcopy(executed_nb))
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    kept = [c for c in out.cells if not any(c is i for i in injected)]
    if [c.cell_type for c in kept] == [c.cell_type for c in new_nb.cells]:     # same cells: edit in place
        for old, new in zip(kept, new_nb.cells):
            old.source = new.source
            if list(new.metadata.get("tags", [])) != list(old.metadata.get("tags", [])):
                old.metadata["tags"] = list(new.metadata.get("tags", []))
        return out
    ran = [c for c in kept if c.cell_type == "code"]
    cells, code = [], iter(ran)
    for cell in new_nb.cells:
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "code":
            old = next(code)
            cell.outputs, cell.execution_count = old.get("outputs", []), old.get("execution_count")
        cells.append(cell)
        if "parameters" in cell.metadata.get("tags", []):
            cells.extend(injected)
    out.cells = cells
    return out
