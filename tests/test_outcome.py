"""One meaning of "passed": the rule of ``rosetta.core.outcome``, the intro that states it, the run
report that applies it and the chapters' summaries that say it, on fixture records (written to a
temporary build folder, never to data/records)."""
import json
import re

import nbformat
import pytest

from conftest import ROOT

from rosetta.book import build
from rosetta.core import outcome, records, timing


def fixture_record(variant, losses, gates=True, framework="fixture"):
    """A LeNet record (a fixture) whose first losses are ``losses`` against a reference of ones."""
    with timing.Probe(warmup=0) as probe:
        with probe.step():
            pass
    return records.make(framework=framework, framework_version="0", variant=variant, model="lenet", device="cpu",
                        device_name="cpu", threads=1, params={"fixture": True}, losses=losses,
                        reference=[1.0] * len(losses), tolerance=1e-3, probe_summary=probe.summary(), gates=gates)


WITHIN = [1.0, 1.0001, 1.0]
OUTSIDE = [1.0, 1.0, 1.004]            # 4e-3 from step 2 on, tolerance 1e-3


@pytest.fixture
def deviation_set():
    """A chapter's records: two runs within the tolerance, one float32 run outside it that does not gate."""
    return [fixture_record("float64", WITHIN), fixture_record("nn_module", WITHIN),
            fixture_record("float32_main", OUTSIDE, gates=False)]


def test_run_results():
    assert outcome.run_result(fixture_record("a", WITHIN)) == outcome.PASSED
    assert outcome.run_result(fixture_record("a", WITHIN, gates=False)) == outcome.PASSED
    assert outcome.run_result(fixture_record("a", OUTSIDE, gates=False)) == outcome.DEVIATION
    assert outcome.run_result(fixture_record("a", OUTSIDE)) == outcome.FAILED


def test_chapter_result_names_the_deciding_runs(deviation_set):
    out = outcome.chapter(deviation_set)
    assert out.result == outcome.DEVIATION and out.passed
    assert [r["variant"] for r in out.deviations] == ["float32_main"] and out.failures == []
    assert out.label() == f"{outcome.DEVIATION}: fixture lenet float32_main (4.0e-03 from step 2, tolerance 0.001)"
    assert outcome.chapter(deviation_set[:2]).label() == outcome.PASSED
    failed = outcome.chapter(deviation_set + [fixture_record("gating", OUTSIDE)])
    assert failed.result == outcome.FAILED and not failed.passed
    assert "fixture lenet gating" in failed.label() and "float32_main" not in failed.label()
    broken = outcome.chapter(deviation_set[:2], executed=False, error="RuntimeError: boom\nmore")
    assert broken.result == outcome.FAILED and broken.label() == f"{outcome.FAILED}: RuntimeError: boom"


def test_summary_says_each_runs_result(deviation_set):
    text = outcome.summary(deviation_set)
    assert text.startswith("2 of 3 runs passed; 1 passed, with a float32 deviation that does not gate: "
                           "fixture lenet float32_main (4.0e-03 from step 2")
    assert text.endswith(f"The chapter {outcome.DEVIATION}.")
    assert outcome.summary(deviation_set[:2]).startswith("All 2 runs of this chapter passed")
    assert outcome.summary(deviation_set[:1]).startswith("The chapter's one run passed")
    with pytest.raises(ValueError, match="needs the chapter's records"):
        outcome.summary([])


def test_float32_lenet_names_each_frameworks_deviations(deviation_set):
    others = [fixture_record("custom_loop", WITHIN, gates=False, framework="other")]
    text = outcome.float32_lenet(deviation_set + others, "fixture")
    assert text == ("In this build, of fixture's float32 LeNet runs 1 of 1 left it: fixture lenet float32_main "
                    "(4.0e-03 from step 2, tolerance 0.001); of the other frameworks' the one stayed within the "
                    "tolerance.")
    assert "no float32 LeNet record of nobody" in outcome.float32_lenet(deviation_set, "nobody")


def intro_results():
    """The results the intro's rule defines: its bold bullet labels under 'What "passed" means'."""
    text = (ROOT / "chapters" / "intro.md").read_text()
    section = text.split('## What "passed" means', 1)[1].split("\n## ", 1)[0]
    labels = re.findall(r"^\* \*\*(.+?)\*\*:", section, re.M)
    # a glossary link {term}`text` or {term}`text <term>` reads as its text
    return [re.sub(r"\{term\}`([^`<]+?)\s*(?:<[^>]*>)?`", r"\1", label) for label in labels], section


def test_intro_states_the_rule_the_package_applies():
    labels, section = intro_results()
    assert labels == list(outcome.RESULTS)
    assert "rosetta.core.outcome" in section


def glued(nb, name):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return json.loads(out["data"]["application/papermill.record/json"]) \
                    if "application/papermill.record/json" in out["data"] else \
                    out["data"]["application/papermill.record/text/plain"]
    raise AssertionError(f"{name} is not glued in the executed notebook")


def test_intro_run_report_and_summary_agree_on_a_non_gating_deviation(tmp_path, deviation_set):
    """A build whose one chapter has a float32 deviation that does not gate: the run report (the
    status chapter, executed on it) and the chapter summary's sentence both say the intro's second
    result, and name the run; neither calls the chapter failed."""
    build_dir = tmp_path / "_build"
    for rec in deviation_set:
        records.write(rec, build_dir / "records" / "fixture")
    paths = sorted((build_dir / "records" / "fixture").glob("*.json"))
    build.update_report(build_dir, build.ChapterResult("fixture", True, 1.0, records=paths), "rosetta", {"quick": True})

    report = build.read_report(build_dir)
    assert report["fixture"]["result"] == outcome.DEVIATION
    label = report["fixture"]["result_text"]
    summary = outcome.summary([records.read(p) for p in paths])
    labels, _ = intro_results()
    assert labels[1] == outcome.DEVIATION
    for text in (label, summary):
        assert outcome.DEVIATION in text and "fixture lenet float32_main" in text
        assert "failed" not in text.lower()

    res = build.run_chapter("status", {}, build_dir, ROOT)
    assert res.ok, res.error
    nb = nbformat.read(res.notebook, as_version=4)
    table = "".join("".join(out.get("data", {}).get("text/html", "")) for cell in nb.cells
                    for out in cell.get("outputs", []))
    assert label in table
    assert (glued(nb, "st_chapters"), glued(nb, "st_passed"), glued(nb, "st_deviation"), glued(nb, "st_failed")) \
        == ("1", "1", "1", "0")


def test_executed_summaries_are_the_rule_applied_to_the_chapters_records(quick_book):
    """Each executed chapter's summary sentence (``<prefix>_outcome``) is ``outcome.summary`` of the
    records the chapter left, so that every summary applies the same rule to its own runs."""
    import ast
    from test_glue import used_names
    checked = 0
    quick_book._execute(quick_book.allowed or quick_book.chapters)
    for name, res in quick_book.results.items():
        names = [n for n in used_names(name) if n.endswith("_outcome")]
        if not res.ok or res.skipped or not names:
            continue
        nb = nbformat.read(res.notebook, as_version=4)
        recs = [records.read(p) for p in res.records]
        assert ast.literal_eval(glued(nb, names[0])) == outcome.summary(recs), name
        checked += 1
    assert checked, "no executed chapter has an outcome summary"
