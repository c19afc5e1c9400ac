"""The side-by-side page: the chapters' marks, the reasons for the missing ones, the extraction
from executed notebooks, the figures and the code-cost counts (rosetta.book.side_by_side)."""
import os
from pathlib import Path
import shutil
import textwrap

import pytest

from rosetta.book import build, side_by_side as sbs

import chapter_code

ROOT = Path(__file__).resolve().parents[1]


def book_chapters():
    """The notebook chapters of the book's table of contents that have a tab."""
    return [c for c in build.notebook_chapters(ROOT) if sbs.tabs_of(c)]


def test_every_tab_shows_every_concept_or_says_why():
    found = sbs.source_marks(ROOT, book_chapters())
    assert sbs.coverage_problems(found, book_chapters()) == []
    tabs = {m.tab for m in found}
    assert {"pytorch", "tf1", "tf2", "mx_ndarray", "mx_symbol", "mx_gluon", "theano", "pytensor"} <= tabs


def test_the_book_has_the_side_by_side_page_early():
    pages = build.toc_files(ROOT)
    assert pages.index(f"chapters/{sbs.PAGE}") < pages.index("chapters/pytorch")


def test_reasons_name_known_tabs_and_concepts():
    keys = {t.key for t in sbs.TABS}
    assert len(keys) == len(sbs.TABS)
    assert {tab for tab, _ in sbs.REASONS} <= keys
    assert {concept for _, concept in sbs.REASONS} <= set(sbs.CONCEPTS)
    assert all(len(reason.split()) >= 5 for reason in sbs.REASONS.values())


def test_the_variants_a_tab_shows_are_its_chapters():
    """A renamed run would silently leave its tab's figures: every variant named in TABS is saved by its chapter."""
    for tab in sbs.TABS:
        if tab.variants and tab.chapter in book_chapters():
            source = (ROOT / "chapters" / f"{tab.chapter}.md").read_text()
            missing = [v for vs in tab.variants.values() for v in vs if f'"{v}"' not in source]
            assert missing == [], f"{tab.key}: chapters/{tab.chapter}.md saves no run named {missing}"


def test_a_chapter_that_loses_a_marked_cell_fails():
    chapters = book_chapters()
    found = sbs.source_marks(ROOT, chapters)
    lost = [m for m in found if not (m.tab == "pytorch" and m.concept == "control_flow")]
    problems = sbs.coverage_problems(lost, chapters)
    assert len(problems) == 1 and "'PyTorch'" in problems[0] and "control_flow" in problems[0]


def test_a_reason_for_a_marked_concept_is_stale(monkeypatch):
    monkeypatch.setitem(sbs.REASONS, ("pytorch", "forward"), "PyTorch has no forward pass, says this stale reason.")
    problems = sbs.coverage_problems(sbs.source_marks(ROOT, ["pytorch"]), ["pytorch"])
    assert problems == ["tab 'PyTorch': 'forward' has a marked cell and a reason for having none; "
                        "delete the reason from REASONS"]


@pytest.mark.parametrize("chapter, tag, message", [
    ("pytorch", "sbs:backprop", "concept one of"),
    ("tensorflow", "sbs:loss", "name one: sbs:loss:<tab>"),
    ("tensorflow", "sbs:loss:tf3", "tab 'tf3' is not one of this chapter's (tf1, tf2)"),
    ("scaling", "sbs:loss", "has no tab in rosetta.book.side_by_side.TABS"),
])
def test_a_wrong_tag_says_what_to_fix(chapter, tag, message):
    with pytest.raises(sbs.MarkError, match="code cell 7") as err:
        sbs.parse_tag(tag, chapter, 7)
    assert message in str(err.value)


def test_marks_know_their_section_and_program():
    found = {(m.tab, m.concept): m for m in sbs.source_marks(ROOT, ["pytorch"])}
    step = found["pytorch", "train_step"]
    assert step.section[:2] == ("PyTorch", "LeNet on MNIST") and step.anchor == "lenet-on-mnist"
    assert step.program == "lenet" and "def training_step(net):" in step.source
    assert found["pytorch", "loss"].program == "two_layer"
    assert found["pytorch", "control_flow"].program is None


def test_a_comment_in_a_fenced_block_is_no_heading():
    cells = [{"cell_type": "markdown", "source": "# Book\n\n## LeNet on MNIST\n\n```\n# solver.prototxt\n```"},
             {"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["sbs:data"]}}]
    (mark,) = sbs.marks(cells, "pytorch")
    assert mark.section == ("Book", "LeNet on MNIST") and mark.anchor == "lenet-on-mnist"


def test_code_lines_and_framework_calls():
    names = sbs.Names(["import torch\nimport numpy as np\nfrom rosetta.core import training, records\n"
                       "recorder = records.Recorder(framework='x')\n"])
    cell = textwrap.dedent("""\
        %%time
        # a comment
        y = torch.zeros(3)

        z = np.ones(3)
        loss = (y * 2).pow(2).sum()
        training.repeat(print, 3)
        recorder.save(variant="v")
        d = {}.items()
        print(len(z))
        """)
    assert len(sbs.code_lines(cell)) == 7
    assert names.calls(cell) == {"torch.zeros", ".pow", ".sum"}
    # what the program takes: the NumPy line, the helper calls and the print do not count
    assert names.lines(cell) == 2


def test_a_program_written_by_the_notebook_re_exports_its_framework():
    names = sbs.Names(["%%writefile {programs}/start.py\nimport chainer\nimport chainer.functions as F\nimport numpy as np\n",
                       "%%writefile {programs}/run.py\nfrom start import F, np, chainer\n"])
    assert names.calls("F.relu(np.zeros(3))\nchainer.Variable(1)") == {"F.relu", "chainer.Variable"}


def test_the_figures_of_a_run():
    rec = {"framework": "pytorch", "variant": "nn_module", "model": "lenet",
           "parity": {"max_rel_dev": 3.2e-6, "steps": 20, "tolerance": 1e-4, "passed": True},
           "timing": {"median_s": 0.0049, "first_step_s": 1.5}}
    table = sbs.figures_table([rec, dict(rec, framework="keras-jax", variant="sequential",
                                         parity=dict(rec["parity"], passed=False))])
    assert "| `nn_module` | 3.2e-06 over 20 steps (within 0.0001) | 4.90 ms | 1.50 s |" in table
    assert "| `jax sequential` | 3.2e-06 over 20 steps (above 0.0001) |" in table
    tab = sbs.tab_named("tf2")
    recs = [dict(rec, variant=v) for v in ("train_on_batch", "graph_session", "custom_loop")]
    assert [r["variant"] for r in sbs.runs(tab, "lenet", recs)] == ["custom_loop", "train_on_batch"]


# ---------------------------------------------------------------- the build path, on a scratch book

FIXTURE_CHAPTER = chapter_code.MYST_FRONT_MATTER + '''
# PyTorch

A fixture chapter for tests/test_side_by_side.py: one tiny marked cell per concept.

## The 2-layer net

```{code-cell} ipython3
:tags: [sbs:data]

x = [1.0, 2.0]
```

```{code-cell} ipython3
:tags: [sbs:loss, sbs:gradient, sbs:update]

def step(w):
    return sum((w * v) ** 2 for v in x), [w - 0.1 * 2 * w * v * v for v in x]
```

## LeNet on MNIST

```{code-cell} ipython3
:tags: [sbs:forward]

def forward(v):
    return 2 * v
```

```{code-cell} ipython3
:tags: [sbs:train_step, sbs:evaluate]

print(forward(3.0), step(1.0)[0])
```

## What it is like

```{code-cell} ipython3
:tags: [sbs:control_flow]

for t in range(3):
    x.append(forward(x[-1]))
```
'''


@pytest.fixture
def scratch_book(tmp_path):
    """A scratch copy of the book with two pages and a fixture PyTorch chapter."""
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: chapters/intro\nchapters:\n"
                                   f"  - file: chapters/{sbs.PAGE}\n  - file: chapters/pytorch\n")
    shutil.copy2(ROOT / "_config.yml", root / "_config.yml")
    (root / "chapters" / "intro.md").write_text("# A fixture book\n\nIts root page, prose only.\n")
    shutil.copy2(ROOT / "chapters" / f"{sbs.PAGE}.md", root / "chapters" / f"{sbs.PAGE}.md")
    (root / "chapters" / "pytorch.md").write_text(FIXTURE_CHAPTER)
    os.symlink(ROOT / "node_modules", root / "node_modules")
    return root


def build_page(root: Path) -> str:
    """Execute the chapters and stage the book, as rosetta-build does; the staged page's text."""
    build_dir = root / "_build"
    results = build.build(root, build_dir, only=["pytorch"], html=False, log=lambda *a, **k: None)
    assert all(r.ok for r in results), [r.error for r in results]
    book = build.stage_book(root, build_dir)
    return (book / "chapters" / f"{sbs.PAGE}.md").read_text()


def test_editing_a_marked_cell_changes_the_page_on_the_next_build(scratch_book):
    page = build_page(scratch_book)
    assert page.startswith((ROOT / "chapters" / f"{sbs.PAGE}.md").read_text().rstrip("\n"))
    assert page.count("::::{tab-set}\n:sync-group: framework") == len(sbs.CONCEPTS)
    assert "return 2 * v" in page and "return 5 * v" not in page
    assert 'href="pytorch.html#lenet-on-mnist"' in page
    assert (scratch_book / "_build" / "book" / "chapters" / sbs.CHART).stat().st_size > 10_000

    chapter = scratch_book / "chapters" / "pytorch.md"
    chapter.write_text(chapter.read_text().replace("return 2 * v", "return 5 * v"))
    page = build_page(scratch_book)
    assert "return 5 * v" in page and "return 2 * v" not in page


def test_the_page_shows_the_executed_notebook_not_the_source(scratch_book):
    """The code comes from _build/executed: a cell edited there (and not in the source) is what the page shows."""
    build_page(scratch_book)
    build_dir = scratch_book / "_build"
    executed = build_dir / "executed" / "pytorch.ipynb"
    executed.write_text(executed.read_text().replace("return 2 * v", "return 7 * v"))
    page = (build.stage_book(scratch_book, build_dir) / "chapters" / f"{sbs.PAGE}.md").read_text()
    assert "return 7 * v" in page


def test_a_build_without_a_marked_concept_fails_and_says_which(scratch_book):
    chapter = scratch_book / "chapters" / "pytorch.md"
    chapter.write_text(chapter.read_text().replace(":tags: [sbs:control_flow]\n", ""))
    with pytest.raises(build.BuildError, match="tab 'PyTorch': no cell of chapters/pytorch.md is tagged for "
                                               "'control_flow'"):
        build_page(scratch_book)
