"""Every `{glue:...}` name a chapter's prose uses is glued by that chapter.

Two checks: one on the sources (the names in the prose against the ``glue(...)`` calls of the
chapter's code, f-string names read as patterns), for every chapter, without running anything;
one on the notebooks the quick build executed, where each name must have been glued in the run.
"""
import re

import jupytext
import pytest

from conftest import ROOT

from rosetta.book import build

CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("*.md"))
ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`]+)`")
DIRECTIVE = re.compile(r"^```\{glue(?::[a-z]+)?\}\s+(\S+)", re.M)
CALL = re.compile(r"""\bglue\(\s*(f?)(["'])(.+?)\2""")


def used_names(chapter: str) -> set:
    """The glue names in the chapter's Markdown cells (roles and directives)."""
    nb = jupytext.read(ROOT / "chapters" / f"{chapter}.md")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return {m.split(":", 1)[0] for m in ROLE.findall(text)} | set(DIRECTIVE.findall(text))


def glued_patterns(chapter: str) -> list:
    """The names the chapter's code glues, as regular expressions (an f-string's fields match any name part)."""
    nb = jupytext.read(ROOT / "chapters" / f"{chapter}.md")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    patterns = []
    for is_f, _, name in CALL.findall(code):
        parts = re.split(r"\{[^}]*\}", name) if is_f else [name]
        patterns.append(re.compile("^" + r"\w+".join(re.escape(p) for p in parts) + "$"))
    return patterns


def test_the_checks_see_names():
    """The patterns find the PyTorch chapter's names, so that an empty match cannot pass for success."""
    assert {"pt_version", "pt_lenet_parity_fig", "pt_outcome"} <= used_names("pytorch")
    assert any(p.match("pt_2l_autograd_us") for p in glued_patterns("pytorch"))
    assert not any(p.match("pt_no_such_name") for p in glued_patterns("pytorch"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_glue_name_in_the_prose_is_glued_by_the_chapter(chapter):
    patterns = glued_patterns(chapter)
    missing = sorted(n for n in used_names(chapter) if not any(p.match(n) for p in patterns))
    assert not missing, f"chapters/{chapter}.md uses glue names it never glues: {missing}"


def test_prose_pages_use_no_glue():
    """A page without a kernel is not executed, so it cannot glue: it must not use glue either."""
    for chapter in CHAPTERS:
        if "kernelspec" not in build.front_matter(ROOT / "chapters" / f"{chapter}.md"):
            assert not used_names(chapter), f"chapters/{chapter}.md is not a notebook but uses glue"


def executed_glue(notebook_path) -> set:
    import nbformat
    nb = nbformat.read(notebook_path, as_version=4)
    return {out["metadata"]["scrapbook"]["name"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "scrapbook" in out.get("metadata", {})}


def test_executed_chapters_glued_every_name_their_prose_uses(quick_book):
    quick_book._execute(quick_book.allowed or quick_book.chapters)
    executed = [name for name, res in quick_book.results.items() if res.ok and not res.skipped]
    assert executed, "the quick build executed no chapter successfully"
    for name in executed:
        missing = sorted(used_names(name) - executed_glue(quick_book.results[name].notebook))
        assert not missing, f"chapter {name} ran without gluing {missing}"
