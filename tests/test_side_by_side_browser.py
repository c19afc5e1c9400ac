"""The side-by-side page read in headless Chromium, offline (as tests/test_browser.py does).

The tabs of every tab set switch together and the choice survives a reload; the page makes no
request outside 127.0.0.1; each cell's link lands on an existing section; and a screenshot of
LeNet's training step with each framework selected goes to <build>/screenshots/.

The book is the session's quick build; ROSETTA_TEST_HTML=<folder> tests an HTML build that
already exists instead (for working on the page without re-executing every chapter).
"""
import functools
import http.server
import os
from pathlib import Path
import re
import threading
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import sync_playwright

from rosetta.book import side_by_side as sbs

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE = f"chapters/{sbs.PAGE}.html"
CHECKED = ("Array.from(document.querySelectorAll('.sd-tab-set')).map(s => "
           "s.querySelector(':scope > input:checked + label').dataset.syncId)")


@pytest.fixture(scope="module")
def html(request):
    given = os.environ.get("ROSETTA_TEST_HTML")
    if given:
        return Path(given)
    book = request.getfixturevalue("quick_book")
    assert book.html is not None, "the quick build ran a subset of chapters: no HTML"
    return book.html


@pytest.fixture(scope="module")
def browsed(html):
    """The page opened in Chromium: what the tests look at, gathered in one visit."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    shots = html.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    seen = {"outside": [], "errors": [], "shots": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def route(r):
            if urlparse(r.request.url).netloc == urlparse(base).netloc:
                r.continue_()
            else:
                seen["outside"].append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.goto(f"{base}/{PAGE}", wait_until="networkidle")
        seen["labels"] = page.evaluate("Array.from(document.querySelector('.sd-tab-set').querySelectorAll("
                                       "':scope > label')).map(l => [l.dataset.syncId, l.textContent.trim()])")
        seen["before"] = page.evaluate(CHECKED)
        last = seen["labels"][-1][0]
        page.locator(f".sd-tab-set >> nth=0 >> label[data-sync-id='{last}']").first.click()
        seen["after_click"] = (last, page.evaluate(CHECKED))
        page.reload(wait_until="networkidle")
        seen["after_reload"] = page.evaluate(CHECKED)
        seen["links"] = page.eval_on_selector_all(".sbs-source a", "as => as.map(a => a.href)")
        page.set_viewport_size({"width": 1280, "height": 4000})   # the whole tab set in one screenshot
        step = page.locator("section#the-training-step .sd-tab-set").first
        for key, _ in seen["labels"]:
            step.locator(f"label[data-sync-id='{key}']").click()
            png = shots / f"side_by_side_train_step_{key}.png"
            step.screenshot(path=str(png))
            seen["shots"][key] = (png, step.locator(".sd-tab-content:visible").inner_text())
        browser.close()
    server.shutdown()
    return html, base, seen


def test_the_page_makes_no_request_outside_and_no_error(browsed):
    _, _, seen = browsed
    assert seen["outside"] == [] and seen["errors"] == []


def test_every_tab_set_has_every_framework(browsed):
    html, _, seen = browsed
    keys = [k for k, _ in seen["labels"]]
    assert keys == [t.key for t in sbs.TABS if (html / "chapters" / f"{t.chapter}.html").is_file()]
    assert "pytorch" in keys
    assert len(seen["before"]) == len(sbs.CONCEPTS) and len(set(seen["before"])) == 1


def test_the_tabs_switch_together_and_the_choice_persists(browsed):
    _, _, seen = browsed
    chosen, after = seen["after_click"]
    assert chosen != seen["before"][0]
    assert after == [chosen] * len(sbs.CONCEPTS)
    assert seen["after_reload"] == [chosen] * len(sbs.CONCEPTS)


def test_every_cell_links_to_an_existing_section(browsed):
    html, base, seen = browsed
    assert len(seen["links"]) >= len(sbs.CONCEPTS)
    for href in seen["links"]:
        url = urlparse(href)
        target = html / unquote(url.path.lstrip("/"))
        assert target.is_file(), href
        assert re.search(rf'id="{re.escape(url.fragment)}"', target.read_text()), href


def test_a_screenshot_of_the_training_step_in_every_framework(browsed):
    _, _, seen = browsed
    assert set(seen["shots"]) == {k for k, _ in seen["labels"]}
    for key, (png, text) in seen["shots"].items():
        assert png.is_file() and png.stat().st_size > 5_000, png
        assert text.strip(), f"the training step's {key} tab shows nothing"
    assert "optimizer.step()" in seen["shots"]["pytorch"][1]
