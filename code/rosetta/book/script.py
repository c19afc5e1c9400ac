"""Run one chapter as a plain Python program, without Jupyter: for a GPU machine that has the
frameworks but no notebook tools (a cluster node, a container).

    python -m rosetta.book.script chapters/pytorch.md --records out/pytorch -p device cuda

It reads the chapter (its Jupytext source through jupytext, or an ``.ipynb`` made from it, which
needs no jupytext), puts the ``-p`` parameters after the cell tagged ``parameters`` as papermill
does, and executes the code cells in order in one IPython shell, so that the chapter's magics,
``display`` and ``glue`` behave as in a notebook. The working folder is the book's ``chapters/``,
as in the book's build. Each cell's time is printed. The records go to a staging folder that becomes
``--records`` only when every cell succeeded: a failed run leaves no records and exits non-zero,
naming the cell. ``rosetta-records import`` then files the records in the book.
"""
import argparse
import ast
import json
import os
from pathlib import Path
import shutil
import sys
import time

from rosetta import repo_root
from rosetta.book import english
from rosetta.core import files


class ScriptError(RuntimeError):
    """The chapter cannot be run: a bad parameter, or a cell that failed."""


def code_cells(path) -> list:
    """The chapter's code cells, each (source, tags), from its ``.md`` or ``.ipynb`` file."""
    path = Path(path)
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    else:
        import jupytext
        cells = jupytext.read(path)["cells"]
    out = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        src = cell["source"]
        out.append(("".join(src) if isinstance(src, list) else src,
                    list(cell.get("metadata", {}).get("tags", []))))
    return out


def parse_value(text: str):
    """A ``-p`` value as papermill reads one: a Python literal (``3``, ``0.5``, ``True``,
    ``'cuda'``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def with_parameters(cells: list, parameters: dict) -> list:
    """The cells with one more after the ``parameters`` cell, assigning ``parameters``. A name the
    parameters cell does not assign is refused, naming the ones it does."""
    if not parameters:
        return cells
    at = next((i for i, (_, tags) in enumerate(cells) if "parameters" in tags), None)
    if at is None:
        raise ScriptError("the chapter has no cell tagged 'parameters': it takes no -p")
    declared = [t.id for node in ast.parse(cells[at][0]).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)]
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ScriptError(f"unknown parameter(s) {', '.join(unknown)}: the chapter declares "
                          f"{', '.join(declared)}")
    injected = "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    return cells[:at + 1] + [(injected, ["injected-parameters"])] + cells[at + 1:]


def run(path, records_dir, parameters=None, out=sys.stdout) -> list:
    """Execute the chapter ``path``; its records end up in ``records_dir`` (replaced whole) only if
    every cell succeeded. Returns the seconds each cell took; raises :class:`ScriptError` naming
    the failing cell."""
    from IPython.core.interactiveshell import InteractiveShell

    path, records_dir = Path(path).resolve(), Path(records_dir).resolve()
    cells = with_parameters(code_cells(path), parameters or {})
    staging = records_dir.with_name(records_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    saved = {k: os.environ.get(k) for k in ("ROSETTA_RECORDS", "MPLBACKEND")}
    os.environ.update(ROSETTA_RECORDS=str(staging), MPLBACKEND="Agg")
    cwd = os.getcwd()
    chapters = path.parent if path.parent.name == "chapters" else repo_root() / "chapters"
    shell = InteractiveShell.instance()
    seconds = []
    try:
        os.chdir(chapters)
        for i, (source, _) in enumerate(cells, 1):
            start = time.perf_counter()
            result = shell.run_cell(source, store_history=False, silent=False)
            seconds.append(time.perf_counter() - start)
            first = next((line for line in source.splitlines() if line.strip()), "")
            print(f"[{path.stem}] cell {i}/{len(cells)}: {seconds[-1]:.1f} s  {first[:70]}",
                  file=out, flush=True)
            if not result.success:
                err = result.error_in_exec or result.error_before_exec
                raise ScriptError(f"{path.name}: cell {i} failed: {type(err).__name__}: {err}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    files.replace_dir(staging, records_dir)
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rosetta.book.script", description=__doc__.split("\n\n")[0])
    ap.add_argument("chapter", type=Path, help="chapters/<name>.md, or an .ipynb made from it")
    ap.add_argument("--records", type=Path, required=True, help="the folder the chapter's records go to")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter of the chapter's parameters cell, as papermill's -p")
    args = ap.parse_args(argv)
    if not args.chapter.is_file():
        print(f"rosetta.book.script: no chapter at {args.chapter}", file=sys.stderr)
        return 2
    try:
        seconds = run(args.chapter, args.records, {k: parse_value(v) for k, v in args.p})
    except ScriptError as err:
        print(f"rosetta.book.script: {err} (no records kept)", file=sys.stderr)
        return 1
    kept = sorted(args.records.glob("*.json"))
    print(f"{args.chapter.name}: {english.count(len(seconds), 'cell')} in {sum(seconds):.0f} s, "
          f"{english.count(len(kept), 'record')} in {args.records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
