"""Programs that run in another environment: the chapter writes them, this module runs them.

Some systems cannot share the book's kernel: CNTK needs Python 3.6, Chainer its own
NumPy build, and Keras reads its backend once, when it is imported. Their chapter writes
the program to a file (``%%writefile``) and :func:`run` executes it with that
environment's Python, passing the chapter's parameters as JSON; the program trains with
the shared helpers (weights, batches, ``timing.Probe``, ``training.fit``) and answers
with :func:`reply`. The chapter itself, in the main environment, computes the NumPy
reference, writes the records and draws the figures, as every other chapter does.

The extra environments live in ``.envs/<name>/`` (built by ``envs/<name>.mk``). This
module must import on Python 3.6 (CNTK's): no ``dataclasses`` here, no 3.7+ syntax.

Worker side::

    from rosetta.frameworks import worker
    job = worker.job()          # before importing the framework: it pins the threads
    ...
    worker.reply({"records": [...]})
"""
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

from rosetta.core.files import write_text
from rosetta.core.paths import ENVS, env_dir  # noqa: F401  (env_dir: the chapters' worker.env_dir)


class WorkerError(RuntimeError):
    """The other environment is missing, or its program failed."""


def python(name=None) -> Path:
    """The Python of extra environment ``name`` (None: the Python running this code)."""
    if name is None:
        return Path(sys.executable)
    exe = env_dir(name) / "bin" / "python"
    if not exe.exists():
        raise WorkerError(f"the environment {name!r} is not built: {exe} is missing; run `make env` "
                          f"(or `make {ENVS}/{name}/.installed`), which builds it from envs/{name}.mk")
    return exe


def _jsonable(value):
    if hasattr(value, "tolist"):        # NumPy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def run(script, cfg, env=None, settings=None, environ=None, timeout=None, echo=True) -> dict:
    """Run ``script`` with the Python of environment ``env`` and return its reply.

    ``cfg`` is the chapter's :class:`~rosetta.core.params.Params`; ``settings`` any other
    JSON-able values the program reads from ``job().settings``; ``environ`` extra
    environment variables (a backend's name, a library path). The program's standard
    output is printed (``echo``); its standard error is shown only if it fails.
    """
    exe = python(env)
    from rosetta import repo_root
    with tempfile.TemporaryDirectory(prefix="rosetta-worker-") as tmp:
        job_path, reply_path = Path(tmp) / "job.json", Path(tmp) / "reply.json"
        job_path.write_text(json.dumps({"params": cfg.as_dict(), "settings": dict(settings or {})}))
        child_env = dict(os.environ, ROSETTA_ROOT=str(repo_root()), PYTHONUNBUFFERED="1", **(environ or {}))
        # The helper package of this book's folder, not the main environment's other paths.
        child_env["PYTHONPATH"] = str(repo_root() / "code")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([str(exe), str(script), str(job_path), str(reply_path)], env=child_env,
                                  cwd=str(repo_root()), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WorkerError(f"{script} in environment {env or 'main'!r} ran past {timeout} s and was stopped") from None
        if echo and proc.stdout.strip():
            print(proc.stdout.rstrip())
        if proc.returncode != 0 or not reply_path.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-40:])
            raise WorkerError(f"{Path(script).name} failed in environment {env or 'main'!r} (exit code "
                              f"{proc.returncode}, Python {exe}); its last lines of standard error:\n{tail}")
        reply = json.loads(reply_path.read_text())
    reply["worker_wall_s"] = time.perf_counter() - t0
    return reply


# ------------------------------------------------------------------ worker side

class Job:
    """What :func:`run` handed the program: checked parameters and extra settings."""

    def __init__(self, cfg, settings: dict, reply_path: Path):
        self.cfg, self.settings, self.reply_path = cfg, settings, reply_path


_current = None


def job(argv=None) -> Job:
    """Read the job file, check the parameters and pin the thread count (call before importing a framework)."""
    global _current
    from rosetta.core import params, threads
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python PROGRAM JOB.json REPLY.json (rosetta.frameworks.worker.run starts programs this way)")
    spec = json.loads(Path(argv[0]).read_text())
    cfg = params.resolve(**spec["params"])
    threads.pin(cfg.threads)
    _current = Job(cfg, spec.get("settings", {}), Path(argv[1]))
    return _current


def reply(result: dict) -> None:
    """Hand ``result`` back to the chapter (written atomically: a crash leaves no half reply)."""
    if _current is None:
        raise RuntimeError("call worker.job() before worker.reply()")
    write_text(_current.reply_path, json.dumps(result, default=_jsonable, allow_nan=False))
