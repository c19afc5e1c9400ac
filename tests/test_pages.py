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


# ------------------------------------------------------------------ what a reader reads

# What must not appear in the text a reader reads (prose, tables and printed outputs; the code
# cells' own source is left out, where `int(s)` is code): "(s)" plurals, temporary and build
# paths, the build's own folder, process ids, a MyST role that was not rendered. The build's ports are never printed: the
# scaling chapter writes "<port>" where one would be.
MACHINERY = {
    "a '(s)' plural": r"[A-Za-z]\(s\)",
    "a temporary path": r"/tmp/",
    "a build path": r"/_build/",
    "a process id": r"\bpids?\b",
    "a MyST role left unrendered": r"\{(glue|doc|numref|term|download)(:[a-z]+)?\}",
}


def reader_text(page) -> str:
    """The text of a built page as a reader reads it: its main content, without the source of
    code cells and of the code blocks the side-by-side tabs show."""
    import bs4
    soup = bs4.BeautifulSoup(page.read_text(), "html.parser")
    main = soup.find("main") or soup
    for code in main.select("div.cell_input, div[class*='highlight-python'], div[class*='highlight-ipython']"):
        code.decompose()
    return main.get_text(" ")


def machinery_on(page, root=ROOT) -> list:
    text = reader_text(page)
    found = [(what, m) for what, pattern in MACHINERY.items() for m in re.finditer(pattern, text, re.I)]
    found += [("the book's folder", m) for m in re.finditer(re.escape(str(root)), text)]
    return [f"{page.name}: {what}: ...{text[max(0, m.start() - 50):m.end() + 30]!r}..." for what, m in found]


def test_machinery_check_finds_what_it_looks_for(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<main><p>Trained for 1 epoch(s) in /work/book/_build/x (pid 42); see /tmp/a.</p>"
                    "<div class='cell_input'><pre>tuple(int(s) for s in shape)</pre></div>"
                    "<div class='cell_output'><pre>traced 2 time(s)</pre></div></main>")
    found = "\n".join(machinery_on(page, root="/work/book"))
    assert found.count("'(s)' plural") == 2 and "int(s)" not in found
    assert "temporary path" in found and "build path" in found and "process id" in found
    assert "the book's folder" in found
    page.write_text("<main><p>JAX's <code>{glue:text}</code><code>jx_backend</code> backend</p></main>")
    assert "a MyST role left unrendered" in "\n".join(machinery_on(page, root="/work/book"))
    page.write_text("<main><p>Trained for 3 epochs (a median of 2.1 ms (s) per step), rapid.</p></main>")
    assert machinery_on(page, root="/work/book") == []


def test_no_page_shows_the_machinery(quick_book):
    assert quick_book.html is not None, "the quick build ran a subset of chapters: no HTML"
    pages = [quick_book.html / "index.html", *sorted((quick_book.html / "chapters").glob("*.html"))]
    found = [line for page in pages for line in machinery_on(page)]
    assert not found, f"{len(found)} places show the machinery to the reader:\n" + "\n".join(found[:40])
