"""The build: every chapter executed by papermill, then the HTML by Jupyter Book.

``rosetta-build`` (what ``make book`` runs):

1. converts each notebook chapter of ``_toc.yml`` from its Jupytext source to ``.ipynb``;
2. executes it with papermill on the ``rosetta`` kernel, with the given parameters, its
   records going to a staging folder that replaces ``_build/records/<chapter>/`` only if the
   whole chapter succeeded (a failed chapter leaves the previous records untouched and no
   partial ones);
3. goes on with the other chapters whatever happened;
4. stages the executed notebooks and the prose pages in ``_build/book/`` and runs
   ``jupyter-book build -W`` on them with execution off, producing ``_build/html/``.

It exits non-zero, naming each failed chapter and its error, if any chapter failed.
"""
import argparse
from dataclasses import dataclass, field
from datetime import datetime, timezone
import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import time

import yaml

from rosetta.core import files, paths

KERNEL = "rosetta"
MATHJAX = Path("node_modules") / "mathjax" / "es5"


class BuildError(RuntimeError):
    """The build cannot start or cannot finish."""


@dataclass
class ChapterResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    notebook: Path = None
    records: list = field(default_factory=list)


# ------------------------------------------------------------------ chapters

def toc_files(root: Path) -> list:
    """Every page of ``_toc.yml`` in reading order, as paths relative to the root without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def front_matter(path: Path) -> dict:
    text = path.read_text()
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


def notebook_chapters(root: Path) -> list:
    """Names of the chapters that are notebooks, in execution order.

    Toc order, except that chapters whose front matter says ``rosetta: {run_last: true}``
    (those that read the other chapters' records) run after all the others.
    """
    first, last = [], []
    for page in toc_files(root):
        src = root / f"{page}.md"
        meta = front_matter(src) if src.is_file() else {}
        if "kernelspec" in meta:
            (last if (meta.get("rosetta") or {}).get("run_last") else first).append(Path(page).name)
    return first + last


def chapter_kernel(root: Path, name: str, default: str = KERNEL) -> str:
    """The Jupyter kernel a chapter runs on: ``ROSETTA_KERNELS`` (``chapter=kernel,...``, set by
    ``make GPU=1`` for MXNet's CUDA environment), else ``rosetta: {kernel: ...}`` in its front
    matter, else the default."""
    chosen = dict(item.split("=", 1) for item in os.environ.get("ROSETTA_KERNELS", "").split(",") if "=" in item)
    if name in chosen:
        return chosen[name]
    meta = front_matter(root / "chapters" / f"{name}.md")
    return (meta.get("rosetta") or {}).get("kernel", default)


def check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise BuildError(f"Jupyter kernel {kernel!r} is not installed; run `make env` (it registers it)") from None


def _error_text(err: Exception) -> str:
    name = getattr(err, "ename", type(err).__name__)
    value = getattr(err, "evalue", str(err))
    cell = getattr(err, "cell_index", None)
    where = f" (cell {cell})" if cell is not None else ""
    return f"{name}: {value}{where}"


def run_chapter(name: str, parameters: dict, build_dir: Path, root: Path, kernel: str = KERNEL,
                timeout: int = None) -> ChapterResult:
    """Execute one chapter; its records replace the previous ones only if it succeeds."""
    import jupytext
    import papermill
    from traitlets.config import Config

    src = root / "chapters" / f"{name}.md"
    notebooks, executed = build_dir / "notebooks", build_dir / "executed"
    staging, final = build_dir / "records.partial" / name, build_dir / "records" / name
    for folder in (notebooks, executed, staging.parent, final.parent):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    nb_in = notebooks / f"{name}.ipynb"
    jupytext.write(jupytext.read(src), nb_in)
    nb_tmp = executed / f".{name}.running.ipynb"
    env_before = {k: os.environ.get(k) for k in ("ROSETTA_RECORDS", "ROSETTA_ROOT", "ROSETTA_BUILD")}
    os.environ.update(ROSETTA_RECORDS=str(staging), ROSETTA_ROOT=str(root), ROSETTA_BUILD=str(build_dir))
    start = time.perf_counter()
    try:
        # The kernel listens on Unix sockets (IPC), not on TCP ports of localhost.
        papermill.execute_notebook(str(nb_in), str(nb_tmp), parameters=parameters, kernel_name=kernel,
                                   cwd=str(root / "chapters"), progress_bar=False, log_output=False,
                                   execution_timeout=timeout,
                                   config=Config(KernelManager={"transport": "ipc"}))
    except Exception as err:  # papermill raises for any failing cell; the others go on
        shutil.rmtree(staging, ignore_errors=True)
        failed = executed / f"{name}.failed.ipynb"
        if nb_tmp.exists():
            nb_tmp.replace(failed)
        return ChapterResult(name, False, time.perf_counter() - start, _error_text(err), failed)
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    files.replace_dir(staging, final)
    out = executed / f"{name}.ipynb"
    nb_tmp.replace(out)
    (executed / f"{name}.failed.ipynb").unlink(missing_ok=True)
    return ChapterResult(name, True, seconds, notebook=out, records=sorted(final.glob("*.json")))


def update_report(build_dir: Path, res: ChapterResult, kernel: str, parameters: dict) -> Path:
    """Add one chapter's outcome to ``run_report.json`` (kept for the chapters not run this time)."""
    path = build_dir / "run_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report[res.name] = {
        "ok": res.ok, "seconds": round(res.seconds, 2), "error": res.error, "kernel": kernel,
        "parameters": parameters, "records": len(res.records),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return files.write_text(path, json.dumps(report, indent=1, sort_keys=True))


def read_report(build_dir: Path) -> dict:
    """The last outcome of every chapter executed into ``build_dir``."""
    path = Path(build_dir) / "run_report.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# ---------------------------------------------------------------------- HTML

def stage_book(root: Path, build_dir: Path) -> Path:
    """The book's sources with each notebook chapter replaced by its executed notebook."""
    book = build_dir / "book"
    shutil.rmtree(book, ignore_errors=True)
    (book / "chapters").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, book / name)
    notebooks = set(notebook_chapters(root))
    for page in toc_files(root):
        name = Path(page).name
        if name in notebooks:
            done = build_dir / "executed" / f"{name}.ipynb"
            if not done.is_file():
                raise BuildError(f"chapter {name!r} has no executed notebook in {done.parent}; "
                                 f"execute it first (rosetta-build --only {name})")
            shutil.copy2(done, book / f"{page}.ipynb")
        else:
            shutil.copy2(root / f"{page}.md", book / f"{page}.md")
    mathjax = root / MATHJAX
    if not (mathjax / "tex-chtml.js").is_file():
        raise BuildError(f"MathJax is missing at {mathjax}; run `make env` (it installs it with npm ci)")
    shutil.copytree(mathjax, book / "_vendor" / "mathjax")
    return book


def build_html(root: Path, build_dir: Path) -> Path:
    book = stage_book(root, build_dir)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(book), "--path-output", str(build_dir.parent), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = build_dir / "jupyter-book.log"
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise BuildError(f"jupyter-book build failed (full log: {log}):\n{tail}")
    return build_dir / "html"


# ----------------------------------------------------------------------- CLI

def build(root: Path, build_dir: Path, quick=False, only=(), parameters=None, html=None,
          kernel=KERNEL, timeout=None, log=print):
    """Execute the chapters (all, or ``only``) and, unless told otherwise, build the HTML.

    Returns the list of :class:`ChapterResult`; the HTML is built only when every
    chapter succeeded.
    """
    chapters = notebook_chapters(root)
    unknown = [c for c in only if c not in chapters]
    if unknown:
        raise BuildError(f"unknown chapter(s) {unknown}; the notebook chapters are {chapters}")
    selected = [c for c in chapters if not only or c in only]
    params = dict(parameters or {})
    if quick:
        params["quick"] = True
    kernels = {name: chapter_kernel(root, name, kernel) for name in selected}
    for k in sorted(set(kernels.values())):
        check_kernel(k)
    results = []
    for i, name in enumerate(selected, 1):
        log(f"[{i}/{len(selected)}] {name}: executing ...", flush=True)
        res = run_chapter(name, params, build_dir, root, kernels[name], timeout)
        update_report(build_dir, res, kernels[name], params)
        results.append(res)
        status = "ok" if res.ok else f"FAILED: {res.error}"
        log(f"[{i}/{len(selected)}] {name}: {status} ({res.seconds:.1f} s, {len(res.records)} records)", flush=True)
    if html is None:
        html = not only
    if html and all(r.ok for r in results):
        log("building HTML with jupyter-book ...", flush=True)
        out = build_html(root, build_dir)
        log(f"book: {out / 'index.html'}", flush=True)
    return results


def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rosetta-build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="quick mode: small subsets, one epoch (what CI runs)")
    ap.add_argument("--only", nargs="+", default=[], metavar="CHAPTER", help="execute only these chapters")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="papermill parameter for the executed chapters, e.g. -p epochs 1")
    ap.add_argument("--html", dest="html", action="store_true", default=None, help="build the HTML after --only")
    ap.add_argument("--no-html", dest="html", action="store_false", help="execute only, no HTML")
    ap.add_argument("--build-dir", type=Path, default=None, help="default: ROSETTA_BUILD, else <root>/_build")
    ap.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    args = ap.parse_args(argv)
    from rosetta import repo_root
    root = repo_root()
    build_dir = (args.build_dir or paths.build_dir()).resolve()
    if build_dir.name != "_build":
        print("rosetta-build: --build-dir must be a folder named _build (Jupyter Book writes <parent>/_build/html)",
              file=sys.stderr)
        return 2
    params = {k: _parse_value(v) for k, v in args.parameter}
    try:
        results = build(root, build_dir, args.quick, args.only, params, args.html, timeout=args.timeout)
    except BuildError as err:
        print(f"rosetta-build: {err}", file=sys.stderr)
        return 1
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"rosetta-build: chapter {r.name!r} failed: {r.error} (notebook: {r.notebook})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
