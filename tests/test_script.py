"""A chapter run as a plain program (``python -m rosetta.book.script``): parameters, records kept
only when every cell succeeded, a clear error otherwise. The chapters themselves are executed by
the book's tests; these use a small MyST notebook of their own, written for the test."""
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from rosetta.book import script

import chapter_code

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = chapter_code.MYST_FRONT_MATTER + """
# A chapter

```{code-cell} ipython3
:tags: [parameters]

steps = 2
fail = False
```

```{code-cell} ipython3
import json, os
from pathlib import Path
from myst_nb import glue

glue("steps", steps, display=False)
Path(os.environ["ROSETTA_RECORDS"], "r.json").write_text(json.dumps({"steps": steps, "cwd": os.getcwd()}))
display(steps)
```

```{code-cell} ipython3
%time x = steps * 2
assert not fail, "the chapter was asked to fail"
```
"""


@pytest.fixture
def chapter(tmp_path):
    folder = tmp_path / "chapters"
    folder.mkdir()
    path = folder / "tiny.md"
    path.write_text(CHAPTER)
    return path


def test_parameters_are_put_after_the_parameters_cell(chapter):
    cells = script.with_parameters(script.code_cells(chapter), {"steps": 5})
    assert cells[1] == ("steps = 5\n", ["injected-parameters"])
    assert "parameters" in cells[0][1] and len(cells) == 4
    with pytest.raises(script.ScriptError, match="unknown parameter.*stpes.*declares steps, fail"):
        script.with_parameters(script.code_cells(chapter), {"stpes": 5})
    assert script.parse_value("3") == 3 and script.parse_value("True") is True
    assert script.parse_value("cuda") == "cuda" and script.parse_value("'cuda'") == "cuda"


def test_a_run_keeps_its_records_and_a_failed_one_none(chapter, tmp_path):
    out = tmp_path / "records" / "tiny"
    seconds = script.run(chapter, out, {"steps": 7})
    assert len(seconds) == 4
    rec = json.loads((out / "r.json").read_text())
    assert rec == {"steps": 7, "cwd": str(chapter.parent)}   # run in chapters/, as the build does
    assert not out.with_name("tiny.partial").exists()
    # a failing cell: the error names the cell, the previous records stay, nothing half-written
    with pytest.raises(script.ScriptError, match=r"tiny.md: cell 4 failed: AssertionError: the chapter was asked"):
        script.run(chapter, out, {"steps": 9, "fail": True})
    assert json.loads((out / "r.json").read_text())["steps"] == 7
    assert not out.with_name("tiny.partial").exists()


def test_the_command_line(chapter, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "code")}
    run = subprocess.run([sys.executable, "-m", "rosetta.book.script", str(chapter), "--records",
                          str(tmp_path / "r"), "-p", "steps", "3"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "4 cells" in run.stdout and "1 record in" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "rosetta.book.script", str(chapter), "--records",
                          str(tmp_path / "r2"), "-p", "steps", "3", "-p", "fail", "True"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "cell 4 failed" in bad.stderr and "no records kept" in bad.stderr
    assert not (tmp_path / "r2").exists()
