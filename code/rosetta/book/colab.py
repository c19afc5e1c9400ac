"""Running a NumPy-1 chapter (MXNet, Theano, Lasagne) from Colab, whose Python 3.13 has only NumPy 2.

MXNet 1.9.1 and Theano-PyMC 1.1.2 need NumPy 1, and NumPy 1 has no wheels for Python 3.13, so
these chapters cannot run in Colab's own kernel. :func:`run_chapter` builds a Python 3.11
environment beside it with ``uv`` (which fetches a Python 3.11 where none is installed), with
the book's own pins from ``requirements.txt``, executes the chapter's notebook there with
papermill, and :func:`show` puts the executed chapter, text and outputs, into the Colab page.
The Colab copy of such a chapter calls this from its first cell (see :mod:`rosetta.book.notebooks`).
"""
import ast
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

PYTHON = "3.11"
KERNEL = "rosetta-py311"
INNER = "ROSETTA_PY311"          # set inside the environment's kernel: its first cell does nothing
# what the chapters import, with their pins taken from requirements.txt (the rest of the book's
# environment, PyTorch and TensorFlow above all, is not needed and would take minutes more)
PACKAGES = ("numpy", "mxnet", "theano-pymc", "pandas", "matplotlib", "seaborn", "myst-nb", "myst-parser",
            "docutils", "papermill", "nbclient", "nbformat", "ipykernel", "psutil", "tqdm")

EXTRA_REQUIREMENTS = ("envs/requirements-lasagne.txt",)     # pure-Python additions (the Lasagne appendix)


class ColabError(RuntimeError):
    """The Python 3.11 environment could not be built, or the chapter failed in it."""


def _pins(path) -> dict:
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            pins[line.split("==", 1)[0].strip().lower()] = line
    return pins


def requirements(root) -> list:
    """The pinned requirements of :data:`PACKAGES` from the book's ``requirements.txt``, then
    those of :data:`EXTRA_REQUIREMENTS`."""
    pins = _pins(Path(root) / "requirements.txt")
    missing = [p for p in PACKAGES if p not in pins]
    if missing:
        raise ColabError(f"requirements.txt pins no version of {', '.join(missing)}")
    extra = [line for path in EXTRA_REQUIREMENTS if (Path(root) / path).is_file()
             for line in _pins(Path(root) / path).values()]
    return [pins[p] for p in PACKAGES] + extra


def _run(cmd, what, **kw):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, **kw)
    if res.returncode != 0:
        raise ColabError(f"{what} failed (exit {res.returncode}):\n{res.stdout[-3000:]}")
    return res.stdout


def build_env(root, env) -> Path:
    """Create the Python 3.11 environment ``env`` (once) and register its Jupyter kernel."""
    env = Path(env)
    python = env / "bin" / "python"
    if (env / ".rosetta-ready").is_file():
        return python
    uv = shutil.which("uv")
    if uv is None:
        _run([sys.executable, "-m", "pip", "install", "-q", "uv"], "installing uv")
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    print(f"building a Python {PYTHON} environment in {env} (a few minutes, once per Colab session) ...")
    _run([uv, "venv", "--quiet", "--python", PYTHON, env], f"creating a Python {PYTHON} environment")
    _run([uv, "pip", "install", "--quiet", "--python", python, *requirements(root), "-e", Path(root) / "code"],
         "installing the chapter's packages")
    _run([python, "-m", "ipykernel", "install", "--user", "--name", KERNEL,
          "--display-name", f"Python {PYTHON} (rosetta)"], "registering the kernel")
    (env / ".rosetta-ready").write_text("ok\n")
    return python


def run_chapter(name, root, env, out_dir, parameters=None) -> Path:
    """Execute ``notebooks/chapters/<name>.ipynb`` in the environment; returns the executed notebook.

    A chapter that fails raises :class:`ColabError` naming the cell; its partial notebook is kept
    next to the output as ``<name>.failed.ipynb``.
    """
    source = Path(root) / "notebooks" / "chapters" / f"{name}.ipynb"
    if not source.is_file():
        raise ColabError(f"no notebook {source}: is {name!r} a chapter of the book?")
    python = build_env(root, env)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out, failed = out_dir / f"{name}.executed.ipynb", out_dir / f"{name}.failed.ipynb"
    cmd = [python, "-m", "papermill", "--kernel", KERNEL, "--no-progress-bar", source, failed]
    for key, value in (parameters or {}).items():
        cmd += ["-p", key, value if isinstance(value, str) else json.dumps(value)]
    environ = {k: v for k, v in os.environ.items() if k != "ROSETTA_COLAB"}
    environ.update({INNER: "1", "ROSETTA_ROOT": str(root), "ROSETTA_BUILD": str(out_dir / "_build"),
                    "ROSETTA_RECORDS": str(out_dir / "_build" / "records" / name)})
    print(f"running the {name} chapter in Python {PYTHON} with papermill ...")
    res = subprocess.run([str(c) for c in cmd], env=environ, cwd=str(out_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    if res.returncode != 0:
        raise ColabError(f"the {name} chapter failed in Python {PYTHON}; its notebook so far is {failed}:\n"
                         f"{res.stdout[-3000:]}")
    failed.replace(out)
    return out


GLUE_PREFIX = "application/papermill.record/"
FIGURE = re.compile(r"```\{glue:figure\} *(\S+)\n(?::[^\n]*\n)*\n?(.*?)```", re.S)
GLUE_ROLE = re.compile(r"\{glue(?::(?:text|md|any))?\}`([^`:]+)(?::([^`]*))?`")
OTHER_ROLE = re.compile(r"\{(?:numref|doc|ref|download|term)\}`(?:([^`<]*?)\s*<[^`]*>|([^`]*))`")


def glued(nb) -> dict:
    """The values a notebook glued (myst-nb), by name: {name: {mime type: data}}."""
    values = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                values[meta["name"]] = {k[len(GLUE_PREFIX):] if k.startswith(GLUE_PREFIX) else k:
                                        "".join(v) if isinstance(v, list) else v for k, v in output["data"].items()}
    return values


def _text(data, fmt):
    plain = data.get("text/markdown") or data.get("text/plain", "")
    try:
        value = ast.literal_eval(plain)
    except (ValueError, SyntaxError):
        return plain
    if fmt:
        try:
            return format(value, fmt)
        except (TypeError, ValueError):
            pass
    return str(value)


def resolve(markdown: str, values: dict) -> str:
    """A chapter's MyST text as plain Markdown: glued values and figures filled in, other roles as words."""
    def figure(m):
        data = values.get(m.group(1), {})
        if "image/png" not in data:
            return m.group(2)
        return f"![{m.group(1)}](data:image/png;base64,{data['image/png'].strip()})\n\n*{m.group(2).strip()}*\n"

    markdown = FIGURE.sub(figure, markdown)
    markdown = GLUE_ROLE.sub(lambda m: _text(values.get(m.group(1), {}), m.group(2)), markdown)
    return OTHER_ROLE.sub(lambda m: (m.group(1) or m.group(2) or "").strip(), markdown)


def show(path) -> int:
    """Display an executed notebook's text and outputs in the running notebook; returns the cells shown."""
    from IPython.display import Markdown, display
    nb = json.loads(Path(path).read_text())
    values = glued(nb)
    shown = 0
    for cell in nb["cells"]:
        source = "".join(cell.get("source", ""))
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown":
            display(Markdown(resolve(source, values)))
        elif cell["cell_type"] == "code" and "colab-setup" not in tags and "remove-cell" not in tags:
            if "remove-input" not in tags:
                display(Markdown(f"```python\n{source}\n```"))
            for output in cell.get("outputs", []):
                if output.get("metadata", {}).get("scrapbook"):
                    continue                                   # glued values appear in the text
                if output["output_type"] == "stream":
                    print("".join(output["text"]), end="")
                elif output["output_type"] in ("display_data", "execute_result"):
                    display({k: "".join(v) if isinstance(v, list) else v for k, v in output["data"].items()},
                            raw=True)
                elif output["output_type"] == "error":
                    print("\n".join(output.get("traceback", [])))
        else:
            continue
        shown += 1
    return shown


def main(name, parameters=None) -> None:
    """What the first cell of a NumPy-1 chapter's Colab copy calls: build, run, show.

    ``ROSETTA_COLAB_DIR`` moves the environment and the runs out of ``/content``, and
    ``ROSETTA_COLAB_PARAMETERS`` (JSON) adds parameters: both for checking this path off Colab.
    """
    root = Path(os.environ.get("ROSETTA_ROOT", "/content/rosetta"))
    base = Path(os.environ.get("ROSETTA_COLAB_DIR", "/content"))
    parameters = dict(parameters or {}, **json.loads(os.environ.get("ROSETTA_COLAB_PARAMETERS", "{}")))
    out = run_chapter(name, root, base / "py311", base / "rosetta-runs", parameters)
    show(out)
