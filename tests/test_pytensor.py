"""The PyTensor chapter's loop and its typed one-off costs.

``test_theano.py`` checks the chapter's 2-layer records; here: the recurrence in ``pytensor.scan``
(built in the PyTensor environment and checked against the NumPy reference), the rule that types a
compile cold or warm (:func:`rosetta.frameworks.compile_timed`), and the chapter's records from
the quick build (select with ``ROSETTA_TEST_CHAPTERS=pytensor``).
"""
import json
from pathlib import Path
import subprocess

import pytest

from rosetta.core import control_flow as cf, records
from rosetta.frameworks import compile_timed

from conftest import ROOT, require_env

PACKAGE = Path(cf.__file__).resolve().parents[2]


def test_a_compile_is_cold_when_it_fills_its_cache_and_warm_when_it_finds_it(tmp_path):
    cache = tmp_path / "cache"

    def compile_into_cache():
        cache.mkdir(exist_ok=True)
        if not (cache / "module.so").exists():
            (cache / "module.so").write_text("compiled")
        return "function"
    assert compile_timed(compile_into_cache, cache)[::2] == ("function", "compile_cold")   # an empty cache
    result, seconds, kind = compile_timed(compile_into_cache, cache)
    assert (result, kind) == ("function", "compile_warm") and seconds >= 0              # found it there
    assert compile_timed(lambda: None, None)[2] == "compile_cold"                        # keeps nothing


LOOP_PROGRAM = """
import json
from rosetta.frameworks import pytensor as fw
fw.setup(1, device="cpu")
from rosetta.core import control_flow as cf
from rosetta.frameworks import control_flow as loops
first = loops.build("pytensor")
measured = cf.measure(first, 0, cf.LENGTHS[True], 2)
again = loops.build("pytensor")
print(json.dumps({"kinds": [first.setup_kind, again.setup_kind], "construct": first.construct,
                  "body_calls": measured["body_calls"], "checks": measured["checks"]}))
"""


def test_the_pytensor_loop_agrees_with_numpy_and_types_its_compile(tmp_path):
    """``pytensor.scan`` with ``until``, compiled to C into an empty build folder: every check agrees with
    the NumPy loop and its gradient; the first compile is cold, the same loop built again is warm."""
    python = ROOT / ".envs" / "pytensor" / "bin" / "python"
    require_env(python, "PyTensor environment")
    out = subprocess.run([str(python), "-c", LOOP_PROGRAM], capture_output=True, text=True, timeout=900,
                         env={"PYTHONPATH": str(PACKAGE), "ROSETTA_ROOT": str(ROOT),
                              "ROSETTA_BUILD": str(tmp_path / "_build"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["kinds"] == ["compile_cold", "compile_warm"] and "pytensor.scan" in got["construct"]
    checks = got["checks"]
    assert {c["construct"] for c in checks} == {"plain loop", "early exit"} and all(c["agrees"] for c in checks)
    early = [c for c in checks if c["construct"] == "early exit"]
    assert all(c["steps"] == c["reference steps"] < c["T"] for c in early)          # it stopped early, where NumPy did
    assert got["body_calls"] == 0                                   # the compiled loop runs no Python body


def test_the_chapter_records_its_loop_and_types_its_compiles(quick_book):
    res = quick_book.chapter("pytensor")
    assert res.ok, res.error
    recs = {(r["model"], r["variant"]): r for r in map(records.read, res.records)}
    loop = recs[("recurrence", "loop")]
    assert loop["framework"] == "pytensor" and loop["device"] == "cpu" and loop["parity"]["gates"]
    assert loop["parity"]["passed"] and loop["extra"]["lengths"] == list(cf.LENGTHS[True])
    assert all(c["agrees"] for c in loop["extra"]["checks"])
    assert [c["kind"] for c in loop["one_off"]] in (["compile_cold"], ["compile_warm"])
    for variant, kinds in (("shared_c", ("compile_cold", "compile_warm")), ("shared_jax", ("compile_cold",))):
        rec = recs[("two_layer", variant)]
        assert "compile_s" not in rec["extra"]                     # typed, not an untyped extra
        (cost,) = rec["one_off"]
        assert cost["kind"] in kinds and cost["seconds"] > 0
