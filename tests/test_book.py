"""The quick book: HTML built with every glued number from the run, MathJax served locally."""
import html
import re

from rosetta.core import records


def page_text(path):
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_html_built_with_numbers_from_the_run(quick_book):
    assert quick_book.html is not None, "the quick build ran a subset of chapters: no HTML"
    assert (quick_book.html / "index.html").is_file()
    text = page_text(quick_book.html / "chapters" / "pytorch.html")
    recs = quick_book.records("pytorch")
    lenet = recs[("lenet", "nn_module")]
    assert f"classifies {100 * lenet['test_accuracy']:.2f}% of" in re.sub(r"\s+", " ", text)
    assert f"median of {1e3 * lenet['timing']['median_s']:.2f} ms" in re.sub(r"\s+", " ", text)
    assert f"PyTorch {lenet['framework_version']}" in text
    assert "glue" not in text.lower().replace("myst_nb import glue", "").replace("glue(", "")


def test_mathjax_is_served_from_the_book(quick_book):
    page = (quick_book.html / "chapters" / "pytorch.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts)
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    assert (quick_book.html / "_static" / "mathjax" / "tex-chtml.js").is_file()
