"""The build: every chapter executed by papermill, then the HTML by Jupyter Book.

``rosetta-build`` (what ``make book`` runs):

1. converts each notebook chapter of ``_toc.yml`` from its Jupytext source to ``.ipynb``;
2. checks every input before any chapter runs: each ``-p`` name against the parameters cell of
   the chapters (papermill's inspection; an unknown name stops the build, naming the nearest
   one), the values of the shared parameters (:func:`rosetta.core.params.check_inputs`, which
   also checks the folders of ``records_dirs``); a chapter gets only the parameters it declares;
3. skips a chapter whose extra environment could not be built here (``envs/<env>.mk`` wrote
   ``.envs/<env>.skipped`` with the reason; the chapter names its environment in its front
   matter, ``rosetta: {env: <env>}``): its page shows a box "Not executed in this build:
   <reason>" instead of results, its earlier outputs are moved to ``_build/stale/``, and the
   run report lists it as skipped; ``--strict`` (``make ... STRICT=1``) makes that a failure;
4. reuses a chapter's executed notebook and records when nothing it depends on changed
   (:mod:`rosetta.book.cache`: its code cells, parameters, the helper package, the lock files,
   its kernel's environment and, for the chapters that run last, the other chapters'
   records); ``--force`` (``FORCE=1``) executes every chapter anyway;
5. executes the others with papermill on the ``rosetta`` kernel, one at a time (with ``--quick``,
   ``--jobs N`` runs N side by side, each in a process of its own: what ``make test`` does; the
   chapters that run last wait for all the others), with their parameters, their
   records going to a staging folder that replaces ``_build/records/<chapter>/`` only if the
   whole chapter succeeded (a failed chapter leaves the previous records untouched and no
   partial ones);
6. goes on with the other chapters whatever happened;
7. stages the executed notebooks and the prose pages in ``_build/book/`` and runs
   ``jupyter-book build -W`` on them with execution off, producing ``_build/html/``.

It exits non-zero, naming each failed chapter and its error, if any chapter failed; skipped
chapters alone leave it at zero.
"""
import argparse
import concurrent.futures
from dataclasses import dataclass, field
from datetime import datetime, timezone
import difflib
import json
import multiprocessing
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from rosetta.book import cache
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
    reused: bool = False        # outputs of an earlier run, nothing it depends on changed
    skipped: str = ""           # why it was not executed (its environment could not be built)
    finished: str = ""          # when it ran (UTC, ISO)


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


def chapter_env(root: Path, name: str):
    """The extra environment a chapter needs (``rosetta: {env: ...}``), or None."""
    return (front_matter(root / "chapters" / f"{name}.md").get("rosetta") or {}).get("env")


def skip_reason(root: Path, name: str) -> str:
    """Why a chapter cannot be executed here ('' if it can): the reason its environment's
    ``envs/<env>.mk`` wrote to ``.envs/<env>.skipped`` when it could not build it."""
    env = chapter_env(root, name)
    marker = root / paths.ENVS / f"{env}.skipped"
    if env and marker.is_file():
        return marker.read_text().strip() or f"the {env} environment could not be built"
    return ""


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


def write_notebook(root: Path, build_dir: Path, name: str) -> Path:
    """The chapter's Jupytext source as ``_build/notebooks/<chapter>.ipynb``."""
    import jupytext
    out = build_dir / "notebooks" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(jupytext.read(root / "chapters" / f"{name}.md"), out)
    return out


# ---------------------------------------------------------------- parameters

def chapter_parameters(notebook: Path) -> dict:
    """The names the chapter's ``parameters`` cell declares, with their defaults (papermill's inspection)."""
    import papermill
    return {k: v["default"] for k, v in papermill.inspect_notebook(str(notebook)).items()}


def parameters_for(given: dict, declared: dict) -> dict:
    """Each chapter's share of ``given``: the names its parameters cell declares.

    ``declared`` maps each chapter to its parameters. A name that no chapter declares stops
    the build, naming it, the chapters' parameters and the nearest name.
    """
    known = sorted({p for names in declared.values() for p in names})
    for name in given:
        if name not in known:
            which = ", ".join(declared) if len(declared) <= 3 else f"any of the {len(declared)} chapters"
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise BuildError(f"unknown parameter {name!r}: not a parameter of {which}, whose parameters are "
                             f"{', '.join(known) or '(none)'}{hint}")
    return {chapter: {k: v for k, v in given.items() if k in names} for chapter, names in declared.items()}


# ---------------------------------------------------------------- skipped chapters

NOT_EXECUTED = "Not executed in this build"
_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
_GLUE_BLOCK = re.compile(r"^```\{glue(?::\w+)?\}.*?^```[ \t]*$\n?", re.S | re.M)


def not_executed_notebook(notebook: Path, reason: str):
    """The chapter without results: a box saying why under its title, its code without outputs,
    and every number or figure it would glue replaced by "not measured in this build"."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    box = f"```{{warning}}\n{NOT_EXECUTED}: {reason}\n\nThe code below is shown without results.\n```\n"
    prose = [c for c in nb.cells if c.cell_type == "markdown"]
    labels = [m for c in prose for b in _GLUE_BLOCK.findall(c.source) for m in re.findall(r":name:\s*(\S+)", b)]
    for cell in prose:       # the glued figures go, and so do the references to them
        text = _GLUE_ROLE.sub("(not measured in this build)", _GLUE_BLOCK.sub("", cell.source))
        for label in labels:
            text = re.sub(rf" ?\(?\{{numref\}}`{re.escape(label)}`\)?", "", text)
        cell.source = text
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    if first is None:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(box))
    else:
        lines = nb.cells[first].source.split("\n")
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
        nb.cells[first].source = "\n".join(lines[:at] + ["", box] + lines[at:])
    return nb


def skip_chapter(name: str, reason: str, build_dir: Path, notebook: Path) -> Path:
    """Put the chapter's earlier outputs out of the book's way and stage its not-executed page."""
    import nbformat
    stale = build_dir / "stale" / name
    for src in (build_dir / "records" / name, build_dir / "downloads" / name, build_dir / "executed" / f"{name}.ipynb"):
        if src.exists():
            stale.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(stale / src.name, ignore_errors=True)
            src.rename(stale / src.name)
    cache.forget(build_dir, name)
    out = build_dir / "executed" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(not_executed_notebook(notebook, reason), out)
    return out


def run_chapter(name: str, parameters: dict, build_dir: Path, root: Path, kernel: str = KERNEL,
                timeout: int = None) -> ChapterResult:
    """Execute one chapter; its records replace the previous ones only if it succeeds."""
    import papermill
    from traitlets.config import Config

    notebooks, executed = build_dir / "notebooks", build_dir / "executed"
    staging, final = build_dir / "records.partial" / name, build_dir / "records" / name
    for folder in (notebooks, executed, staging.parent, final.parent):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    nb_in = write_notebook(root, build_dir, name)
    nb_tmp = executed / f".{name}.running.ipynb"
    env_before = {k: os.environ.get(k) for k in ("ROSETTA_RECORDS", "ROSETTA_ROOT", "ROSETTA_BUILD")}
    os.environ.update(ROSETTA_RECORDS=str(staging), ROSETTA_ROOT=str(root), ROSETTA_BUILD=str(build_dir))
    start = time.perf_counter()
    sockets = tempfile.mkdtemp(prefix="rosetta-kernel-")
    try:
        # The kernel listens on Unix sockets (IPC), not on TCP ports of localhost; in a folder of
        # its own, so that kernels running side by side (--jobs) cannot take each other's sockets.
        papermill.execute_notebook(str(nb_in), str(nb_tmp), parameters=parameters, kernel_name=kernel,
                                   cwd=str(root / "chapters"), progress_bar=False, log_output=False,
                                   execution_timeout=timeout,
                                   config=Config(KernelManager={"transport": "ipc",
                                                                "ip": os.path.join(sockets, "kernel")}))
    except Exception as err:  # papermill raises for any failing cell; the others go on
        shutil.rmtree(staging, ignore_errors=True)
        failed = executed / f"{name}.failed.ipynb"
        if nb_tmp.exists():
            nb_tmp.replace(failed)
        return ChapterResult(name, False, time.perf_counter() - start, _error_text(err), failed)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
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
    return ChapterResult(name, True, seconds, notebook=out, records=sorted(final.glob("*.json")),
                         finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def update_report(build_dir: Path, res: ChapterResult, kernel: str, parameters: dict) -> Path:
    """Add one chapter's outcome to ``run_report.json`` (kept for the chapters not run this time)."""
    path = build_dir / "run_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    report[res.name] = {
        "ok": res.ok, "seconds": round(res.seconds, 2), "error": res.error, "kernel": kernel,
        "parameters": parameters, "records": len(res.records),
        "finished": res.finished or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reused": res.reused, "skipped": res.skipped,
    }
    return files.write_text(path, json.dumps(report, indent=1, sort_keys=True))


def read_report(build_dir: Path) -> dict:
    """The last outcome of every chapter executed into ``build_dir``, judged by the book's rule.

    Each chapter's entry is what :func:`update_report` wrote, plus ``saved`` (its records, read from
    ``<build_dir>/records/<chapter>``), ``result`` (``rosetta.core.outcome``: passed, passed with a
    float32 deviation that does not gate, or failed) and ``result_text`` (the result with the runs
    that decided it named).
    """
    from rosetta.core import outcome, records
    path = Path(build_dir) / "run_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    for name, run in report.items():
        folder = Path(build_dir) / "records" / name
        saved = [records.read(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        out = outcome.chapter(saved, executed=run["ok"], error=run["error"])
        run.update(saved=saved, result=out.result, result_text=out.label())
    return report


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
    from rosetta.book import side_by_side   # the side-by-side page, from the executed notebooks
    side_by_side.write_page(root, build_dir, book, notebooks)
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

def chapter_key(root: Path, build_dir: Path, name: str, notebook: Path, kernel: str, parameters: dict) -> dict:
    """What the chapter's execution depends on, as hashes (see :mod:`rosetta.book.cache`)."""
    import nbformat
    meta = front_matter(root / "chapters" / f"{name}.md").get("rosetta") or {}
    env = meta.get("env")
    key = {"code": cache.code_hash(nbformat.read(notebook, as_version=4), kernel),
           "parameters": cache.digest(parameters), "package": cache.package_hash(root),
           "locks": cache.locks_hash(root, env), "environment": cache.environment_hash(root, kernel, env)}
    if meta.get("run_last"):
        report = read_report(build_dir) if meta.get("reads_report") else None
        key["records"] = cache.records_hash(build_dir, name, root / "data" / "records",
                                            parameters.get("records_dirs") or (), report)
    return key


def reuse_chapter(name: str, build_dir: Path, notebook: Path, key: dict):
    """The chapter's earlier run if nothing it depends on changed (its page gets the current prose)."""
    import nbformat
    entry = cache.lookup(build_dir, name, key)
    if entry is None:
        return None
    out = build_dir / "executed" / f"{name}.ipynb"
    executed = nbformat.read(out, as_version=4)
    merged = cache.merge(nbformat.read(notebook, as_version=4), executed)
    if merged != executed:          # prose changed: re-render (an unchanged file keeps Sphinx's page)
        nbformat.write(merged, out)
        cache.store(build_dir, name, key, entry["seconds"], entry["finished"])
    return ChapterResult(name, True, entry["seconds"], notebook=out, reused=True, finished=entry["finished"],
                         records=sorted((build_dir / "records" / name).glob("*.json")))


def build(root: Path, build_dir: Path, quick=False, only=(), parameters=None, html=None,
          kernel=KERNEL, timeout=None, log=print, force=False, strict=False, jobs=1):
    """Execute the chapters (all, or ``only``) and, unless told otherwise, build the HTML.

    Returns the list of :class:`ChapterResult`; the HTML is built only when no chapter failed
    (skipped ones are shown as not executed). ``force`` executes every chapter even when its
    earlier run could be reused; ``strict`` makes a chapter that must be skipped a failure.
    ``jobs`` > 1 (quick mode only) executes that many chapters at a time, each in a process of its
    own; the chapters that run last still wait for all the others.
    """
    from rosetta.core import params as shared
    if jobs < 1 or (jobs > 1 and not quick):
        raise BuildError(f"jobs={jobs}: chapters executed side by side share the CPU, which changes every "
                         f"time they measure, so more than one at a time is for quick mode (--quick) only")
    chapters = notebook_chapters(root)
    unknown = [c for c in only if c not in chapters]
    if unknown:
        raise BuildError(f"unknown chapter(s) {unknown}; the notebook chapters are {chapters}")
    selected = [c for c in chapters if not only or c in only]
    given = dict(parameters or {})
    notebooks = {name: write_notebook(root, build_dir, name) for name in selected}
    declared = {name: chapter_parameters(nb) for name, nb in notebooks.items()}
    per_chapter = parameters_for(given, declared)          # the user's names are checked
    if quick:                                              # --quick goes to the chapters that take it
        given["quick"] = True
        for name, names in declared.items():
            if "quick" in names:
                per_chapter[name]["quick"] = True
    try:
        given = shared.check_inputs(given)
    except ValueError as err:
        raise BuildError(str(err)) from None
    per_chapter = {name: {k: given[k] for k in params} for name, params in per_chapter.items()}
    kernels = {name: chapter_kernel(root, name, kernel) for name in selected}
    skips = {name: skip_reason(root, name) for name in selected}
    for k in sorted({kernels[name] for name in selected if not skips[name]}):
        check_kernel(k)
    last = {name for name in selected if (front_matter(root / "chapters" / f"{name}.md").get("rosetta") or {})
            .get("run_last")}
    results, running = {}, {}           # name -> ChapterResult; name -> (position, future, key)

    def finish(i, name, res, key):
        if res.ok:
            cache.store(build_dir, name, key, res.seconds, res.finished)
        status = "ok" if res.ok else f"FAILED: {res.error}"
        log(f"[{i}/{len(selected)}] {name}: {status} ({res.seconds:.1f} s, {len(res.records)} records)", flush=True)
        update_report(build_dir, res, kernels[name], per_chapter[name])
        results[name] = res

    def wait_for_running():                 # each chapter's outcome as soon as it has one
        names = {future: name for name, (_, future, _) in running.items()}
        for future in concurrent.futures.as_completed(names):
            name = names[future]
            i, _, key = running[name]
            try:
                res = future.result()
            except Exception as err:     # the worker process itself died
                res = ChapterResult(name, False, 0.0, f"its process ended: {err!r}")
            finish(i, name, res, key)
        running.clear()

    pool = None
    if jobs > 1:
        pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        for i, name in enumerate(selected, 1):
            if name in last:            # it reads the others' records: they must all be done
                wait_for_running()
            params = per_chapter[name]
            res = key = None
            if skips[name]:
                out = skip_chapter(name, skips[name], build_dir, notebooks[name])
                res = ChapterResult(name, True, 0.0, notebook=out, skipped=skips[name])
                if strict:
                    res.ok, res.error = False, f"not executed: {skips[name]} (STRICT=1 makes this a failure)"
                log(f"[{i}/{len(selected)}] {name}: not executed: {skips[name]}", flush=True)
            else:
                key = chapter_key(root, build_dir, name, notebooks[name], kernels[name], params)
                res = None if force else reuse_chapter(name, build_dir, notebooks[name], key)
                if res is not None:
                    log(f"[{i}/{len(selected)}] {name}: reused, run on {res.finished} ({res.seconds:.1f} s then)",
                        flush=True)
            if res is not None:
                update_report(build_dir, res, kernels[name], params)
                results[name] = res
                continue
            why = "--force" if force else cache.changed(build_dir, name, key)
            log(f"[{i}/{len(selected)}] {name}: executing ({why}) ...", flush=True)
            if pool is not None and name not in last:
                running[name] = (i, pool.submit(run_chapter, name, params, build_dir, root, kernels[name], timeout),
                                 key)
            else:
                finish(i, name, run_chapter(name, params, build_dir, root, kernels[name], timeout), key)
        wait_for_running()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    results = [results[name] for name in selected]
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
    ap.add_argument("--force", action="store_true", help="execute every chapter, even those whose earlier run "
                    "could be reused (make ... FORCE=1)")
    ap.add_argument("--strict", action="store_true", help="a chapter whose environment could not be built is a "
                    "failure, not a skip (make ... STRICT=1)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="with --quick: execute N chapters at a time (they share the CPU, so their timings "
                         "are not comparable; what make test does)")
    args = ap.parse_args(argv)
    from rosetta import repo_root
    root = repo_root()
    if not (root / "_toc.yml").is_file():
        print(f"rosetta-build: {root} holds no _toc.yml: ROSETTA_ROOT must be the book's folder (or unset it "
              f"and run from inside the repository)", file=sys.stderr)
        return 2
    build_dir = (args.build_dir or paths.build_dir()).resolve()
    if build_dir.name != "_build":
        print("rosetta-build: --build-dir must be a folder named _build (Jupyter Book writes <parent>/_build/html)",
              file=sys.stderr)
        return 2
    params = {k: _parse_value(v) for k, v in args.parameter}
    try:
        results = build(root, build_dir, args.quick, args.only, params, args.html, timeout=args.timeout,
                        force=args.force, strict=args.strict, jobs=args.jobs)
    except BuildError as err:
        print(f"rosetta-build: {err}", file=sys.stderr)
        return 1
    for r in results:
        if r.skipped and r.ok:
            print(f"rosetta-build: chapter {r.name!r} not executed: {r.skipped}", file=sys.stderr)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"rosetta-build: chapter {r.name!r} failed: {r.error} (notebook: {r.notebook})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
