"""The built book read as a reader reads it: every page in headless Chromium, offline.

The pages are served from 127.0.0.1 and every request to anywhere else is blocked and
counted: the book must not need the network (no CDN, no fonts, no analytics). Each page
must load without console errors, render its math (MathJax output present), load every
image, and link only to pages that exist. Screenshots go to <build>/screenshots/.
"""
import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import urlparse, unquote

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(quick_book):
    assert quick_book.html is not None, "the quick build ran a subset of chapters: no HTML"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(quick_book.html))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield quick_book.html, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# What a page must not show: papermill's injected-parameters cell, a code cell wider than the
# text column (it would scroll sideways), a table with pandas' row labels (rosetta.book.tables).
PAGE_CHECKS = """() => ({
  injected: Array.from(document.querySelectorAll('.tag_injected-parameters, div.cell_input pre'))
    .filter(e => !e.matches('pre') || e.textContent.startsWith('# Parameters')).length,
  scrolling: Array.from(document.querySelectorAll('div.cell_input pre'))
    .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.split('\\n')[0].slice(0, 60)),
  indexed: Array.from(document.querySelectorAll('div.cell_output table'))
    .filter(t => t.querySelector('tbody th')).map(t => t.querySelector('thead') ?
      t.querySelector('thead').textContent.trim().replace(/\\s+/g, ' ').slice(0, 60) : '?'),
})"""


def visit_all(root: Path, base: str, shots: Path):
    pages = sorted(p.relative_to(root).as_posix() for p in [root / "index.html", *root.glob("chapters/*.html")])
    outside, report = [], {}
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def route(r):
            if urlparse(r.request.url).netloc == urlparse(base).netloc:
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        for rel in pages:
            page = context.new_page()
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/{rel}", wait_until="networkidle")
            has_math = page.evaluate("document.querySelectorAll('.math').length") > 0
            rendered = page.evaluate(
                "window.MathJax && MathJax.startup ? MathJax.startup.promise.then("
                "() => document.querySelectorAll('mjx-container').length) : 0")
            broken_images = page.evaluate(
                "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
            links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            machinery = page.evaluate(PAGE_CHECKS)
            page.screenshot(path=str(shots / (rel.replace("/", "_") + ".png")), full_page=False)
            report[rel] = dict(errors=errors, has_math=has_math, rendered=rendered,
                               broken_images=broken_images, links=links,
                               images=page.evaluate("document.images.length"), **machinery)
            page.close()
        browser.close()
    return report, outside


@pytest.fixture(scope="module")
def visited(site, quick_book):
    root, base = site
    return (root, base, *visit_all(root, base, quick_book.build_dir / "screenshots"))


def test_no_request_leaves_the_machine(visited):
    _, _, report, outside = visited
    assert len(report) >= 3
    assert outside == [], f"{len(outside)} requests left the machine: {outside[:5]}"


def test_pages_load_without_console_errors(visited):
    _, _, report, _ = visited
    assert {p: r["errors"] for p, r in report.items() if r["errors"]} == {}


def test_math_is_rendered_and_images_load(visited):
    root, _, report, _ = visited
    math_pages = [p for p, r in report.items() if r["has_math"]]
    assert "chapters/pytorch.html" in math_pages
    assert {p: report[p]["rendered"] for p in math_pages if report[p]["rendered"] == 0} == {}
    assert {p: r["broken_images"] for p, r in report.items() if r["broken_images"]} == {}
    assert report["chapters/pytorch.html"]["images"] >= 3   # its glued figures


def test_no_broken_internal_link(visited):
    root, base, report, _ = visited
    broken = []
    for page, r in report.items():
        for href in r["links"]:
            url = urlparse(href)
            if url.netloc != urlparse(base).netloc or not url.path.endswith((".html", "/")):
                continue
            target = root / unquote(url.path.lstrip("/"))
            target = target / "index.html" if url.path.endswith("/") else target
            if not target.is_file():
                broken.append((page, href))
            elif url.fragment and not re.search(rf'id="{re.escape(unquote(url.fragment))}"', target.read_text()):
                broken.append((page, href))
    assert broken == []


def test_a_screenshot_of_every_page(visited, quick_book):
    _, _, report, _ = visited
    shots = quick_book.build_dir / "screenshots"
    for page in report:
        png = shots / (page.replace("/", "_") + ".png")
        assert png.is_file() and png.stat().st_size > 10_000


def test_pages_show_no_machinery_and_no_sideways_scrolling(visited):
    _, _, report, _ = visited
    assert {p: r["injected"] for p, r in report.items() if r["injected"]} == {}, "papermill's parameters cell"
    assert {p: r["scrolling"] for p, r in report.items() if r["scrolling"]} == {}, "code wider than the column"


def test_no_table_shows_the_pandas_index(visited):
    _, _, report, _ = visited
    assert {p: r["indexed"] for p, r in report.items() if r["indexed"]} == {}, "tables showing pandas' index"
