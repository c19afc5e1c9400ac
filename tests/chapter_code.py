"""The chapters' own code, for tests that run it: read from the chapter's source with jupytext.

A test that checks a copy of a chapter's program checks the copy; these helpers hand it the
chapter's code instead, found by a marker (a line it contains, or the name it defines), and fail
with the chapter's name when the marker is gone, so that a renamed function breaks the test
rather than letting it pass on stale code.
"""
import ast

import jupytext

from conftest import ROOT


# The front matter of a Jupytext MyST chapter, for the small chapters tests write themselves.
MYST_FRONT_MATTER = '''\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
'''


def code_cells(chapter: str) -> list:
    nb = jupytext.read(ROOT / "chapters" / f"{chapter}.md")
    return [c.source for c in nb.cells if c.cell_type == "code"]


def cell(chapter: str, marker: str) -> str:
    """The one code cell of the chapter that contains ``marker``."""
    hits = [src for src in code_cells(chapter) if marker in src]
    assert len(hits) == 1, f"chapters/{chapter}.md: {len(hits)} code cells contain {marker!r}, the test expects one"
    return hits[0]


def until(source: str, stop: str) -> str:
    """The code of ``source`` before its first line that starts with ``stop``."""
    lines = source.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith(stop)]
    assert at, f"no line starts with {stop!r} in the cell:\n{source[:300]}"
    return "\n".join(lines[:at[0]]) + "\n"


def definitions(chapter: str, *names: str) -> str:
    """The source of the chapter's top-level functions and classes called ``names``, in that order."""
    found = {}
    for src in code_cells(chapter):
        try:
            tree = ast.parse(src)
        except SyntaxError:          # a cell with an IPython magic (%%writefile ...)
            continue
        lines = src.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                found[node.name] = "\n".join(lines[first - 1:node.end_lineno])
    missing = [n for n in names if n not in found]
    assert not missing, f"chapters/{chapter}.md defines no {missing}"
    return "\n\n\n".join(found[n] for n in names) + "\n"
