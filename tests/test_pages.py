"""What a page shows besides the chapter's own content: nothing of the machinery that ran it, code
that fits the text column, tables without pandas' index (rosetta.book.reader, rosetta.book.tables,
the build's kernel transport)."""
import re

import jupytext
import nbformat
import pandas as pd
import pytest
import yaml

from rosetta.book import build, reader, tables

from conftest import ROOT

# Characters of code the text column shows without scrolling: 77 in the book's theme at a 1280 px
# wide window (the browser test's), measured in Chromium: the code block is 684 px wide less 2 x
# 16 px padding, and a character of its 14 px monospace font is 8.43 px wide. A wider window
# shows up to 89.
CODE_COLUMNS = 77
HIDDEN = {"remove-cell", "remove_cell", "remove-input", "remove_input"}


def shown_code_cells():
    for name in build.notebook_chapters(ROOT):
        nb = jupytext.read(ROOT / "chapters" / f"{name}.md")
        for cell in nb.cells:
            if cell.cell_type == "code" and not HIDDEN & set(cell.metadata.get("tags", [])):
                yield name, cell.source


def test_code_lines_fit_the_text_column():
    long = [f"{name}: {len(line)}: {line.strip()[:60]}"
            for name, source in shown_code_cells() for line in source.splitlines() if len(line) > CODE_COLUMNS]
    assert not long, f"{len(long)} code lines longer than {CODE_COLUMNS} characters scroll sideways:\n" + \
        "\n".join(long[:40])


# ------------------------------------------------------------------ papermill's cell

def test_reader_removes_papermills_injected_parameters_and_nothing_else():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("quick = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("# Parameters\nquick = True\n", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(quick)"),
    ])
    read = reader.read_executed(nbformat.writes(nb))
    assert [c.metadata.get("tags", []) for c in read.cells] == [
        ["parameters"], ["injected-parameters", "remove-cell"], []]
    assert [c.source for c in read.cells] == [c.source for c in nb.cells]


def test_the_book_reads_executed_chapters_through_the_reader():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert config["nb_custom_formats"] == {".ipynb": "rosetta.book.reader.read_executed"}


# ------------------------------------------------------------------ kernel transport

CHAPTER = """\
---
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# Transport

```{code-cell} ipython3
from ipykernel.kernelapp import IPKernelApp
print("transport:", IPKernelApp.instance().transport)
```
"""


def test_chapters_run_on_a_kernel_listening_on_ipc_not_tcp(tmp_path, capfd):
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/transport\n")
    (root / "chapters" / "transport.md").write_text(CHAPTER)
    res = build.run_chapter("transport", {}, root / "_build", root, kernel="python3")
    assert res.ok, res.error
    outputs = nbformat.read(res.notebook, as_version=4).cells[-1].outputs
    assert "".join(o.get("text", "") for o in outputs) == "transport: ipc\n"
    assert "over TCP without encryption" not in capfd.readouterr().err


# ------------------------------------------------------------------ tables

def test_compact_numbers():
    values = [1304.17, 64.7365, 0.38521, 99.96, 3.2e-7, -0.0012345, 0.0, 12, None, float("nan"), True, "text"]
    assert [tables.compact(v) for v in values] == [
        "1304", "64.7", "0.385", "100", "3.20e-07", "-0.00123", "0", "12", "–", "–", "True", "text"]
    assert tables.compact(1.5e-5, digits=2) == "1.5e-05"


def rows_and_heads(styler):
    """(header cells, body rows) of the rendered table; body cells rendered as <th> are pandas' index."""
    html = styler.to_html()
    head, body = html.split("<tbody>")
    assert "<th" not in body, "a row label (pandas' index) is shown"
    return html, head, body


def test_text_table_has_no_index_and_wraps():
    df = pd.DataFrame({"claim (2016)": ["Theano's compile times are long " * 4, "Control flow: <b>yes</b>"],
                       "verdict": ["holds", "partly"]})
    html, head, body = rows_and_heads(tables.text(df))
    assert "width: 100%" in html and "white-space: normal" in html and "text-align: left" in html
    assert "&lt;b&gt;yes&lt;/b&gt;" in body                      # text is text, not markup
    assert 'class="dataframe"' in html                           # the theme's table look


def test_numeric_table_is_compact_and_keeps_meaningful_row_labels():
    df = pd.DataFrame({"step median (ms)": [0.38521, 1304.17], "max rel. deviation": [3.2e-7, None]},
                      index=pd.Index(["tensors", "autograd"], name="variant"))
    html, head, body = rows_and_heads(tables.numbers(df))
    assert ">variant<" in head and ">tensors<" in body           # the named index became a column
    assert ">0.385<" in body and ">1304<" in body and ">3.20e-07<" in body and ">–<" in body
    assert "width: auto" in html
    assert re.search(r"td\.col0 \{\s*text-align: left;\s*white-space: normal", html)      # words: left
    assert re.search(r"td\.col1 \{\s*text-align: right;\s*white-space: nowrap", html)     # numbers: right
    _, _, body = rows_and_heads(tables.numbers(df, **{"max rel. deviation": "{:.1e}"}))
    assert ">3.2e-07<" in body


def test_tables_say_what_is_wrong():
    with pytest.raises(TypeError, match="expected a pandas DataFrame, got list"):
        tables.text([1, 2])
    with pytest.raises(KeyError, match=r"formats name columns the table lacks: \['nope'\]"):
        tables.numbers(pd.DataFrame({"a": [1.0]}), nope="{:.1f}")
