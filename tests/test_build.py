"""The build command: a failing chapter stops nothing else and corrupts nothing; an unchanged chapter
is reused; a chapter whose environment cannot be built is skipped and shown as not executed."""
import json
import os
from pathlib import Path
import shutil
import subprocess
import textwrap

import pytest

from rosetta.book import build
from rosetta.core import records

# a fixture chapter's front matter and title (str.format: {name})
HEADER = """\
---
jupytext:
  text_representation: {{extension: .md, format_name: myst}}
kernelspec: {{display_name: Python 3, language: python, name: python3}}
---
# {name}
"""

CHAPTER = HEADER + """

```{{code-cell}} ipython3
:tags: [parameters]
fail = False
```

```{{code-cell}} ipython3
from rosetta.core import records, timing
with timing.Probe(warmup=0) as probe:
    with probe.step():
        pass
for variant in ("first", "second"):
    rec = records.make(framework="{name}", framework_version="0", variant=variant, model="two_layer",
                       device="cpu", device_name="cpu", threads=1, params={{"fail": fail}}, losses=[1.0],
                       reference=[1.0], tolerance=1e-4, probe_summary=probe.summary())
    records.write(rec)
    if fail:
        raise RuntimeError("injected failure after one record")
```
"""


@pytest.fixture
def book_root(tmp_path, monkeypatch):
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: chapters/intro
        chapters:
          - file: chapters/good
          - file: chapters/bad
        """))
    (root / "chapters" / "intro.md").write_text("# Intro\n")
    for name in ("good", "bad"):
        (root / "chapters" / f"{name}.md").write_text(CHAPTER.format(name=name))
    monkeypatch.setenv("ROSETTA_ROOT", str(root))
    return root


def test_failed_chapter_keeps_old_records_others_run_and_exit_names_it(book_root, capsys):
    build_dir = book_root / "_build"
    old = build_dir / "records" / "bad" / "bad--two_layer--first--cpu.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"old": true}')

    code = build.main(["--no-html", "-p", "fail", "True", "--only", "bad"])
    assert code == 1
    err = capsys.readouterr().err
    assert "chapter 'bad' failed: RuntimeError: injected failure after one record" in err
    assert json.loads(old.read_text()) == {"old": True}          # previous record untouched
    assert sorted(p.name for p in old.parent.iterdir()) == [old.name]  # nothing half-written
    assert not any((build_dir / "records.partial").iterdir())
    assert (build_dir / "executed" / "bad.failed.ipynb").is_file()

    assert build.main(["--no-html"]) == 0                       # both succeed without the fault
    good = sorted((build_dir / "records" / "good").glob("*.json"))
    assert [records.read(p)["variant"] for p in good] == ["first", "second"]
    assert len(list((build_dir / "records" / "bad").glob("*.json"))) == 2


def test_failure_in_one_chapter_does_not_stop_the_next(book_root):
    (book_root / "chapters" / "bad.md").write_text(CHAPTER.format(name="bad").replace("fail = False", "fail = True"))
    (book_root / "_toc.yml").write_text((book_root / "_toc.yml").read_text().replace(
        "  - file: chapters/good\n  - file: chapters/bad\n", "  - file: chapters/bad\n  - file: chapters/good\n"))
    results = build.build(book_root, book_root / "_build", html=False, log=lambda *a, **k: None)
    assert [(r.name, r.ok) for r in results] == [("bad", False), ("good", True)]
    assert len(results[1].records) == 2


def test_unknown_chapter_and_missing_kernel_are_clear(book_root):
    with pytest.raises(build.BuildError, match=r"unknown chapter\(s\) \['nope'\]"):
        build.build(book_root, book_root / "_build", only=["nope"], html=False)
    with pytest.raises(build.BuildError, match="kernel 'no-such-kernel' is not installed; run `make env`"):
        build.build(book_root, book_root / "_build", html=False, kernel="no-such-kernel")


SIDE_BY_SIDE = HEADER + """

```{{code-cell}} ipython3
import json, os, time
from pathlib import Path
from rosetta.core import records, timing
start = time.time()
time.sleep(3)
with timing.Probe(warmup=0) as probe:
    with probe.step():
        pass
rec = records.make(framework="{name}", framework_version="0", variant="only", model="two_layer",
                   device="cpu", device_name="cpu", threads=1, params={{}}, losses=[1.0],
                   reference=[1.0], tolerance=1e-4, probe_summary=probe.summary())
records.write(rec)
times = Path(os.environ["ROSETTA_BUILD"]) / "times"
times.mkdir(exist_ok=True)
(times / "{name}.json").write_text(json.dumps([start, time.time(), os.environ["ROSETTA_RECORDS"]]))
{fail}
```
"""


def test_jobs_run_chapters_side_by_side_and_the_last_one_after_them(book_root):
    """FIXTURE chapters: with ``jobs=2`` (quick mode only) two chapters run at once, each with its own
    records folder; one failing leaves the other's records whole; the chapter that runs last waits."""
    for name, fail in (("good", ""), ("bad", "raise RuntimeError('injected failure')")):
        (book_root / "chapters" / f"{name}.md").write_text(SIDE_BY_SIDE.format(name=name, fail=fail))
    (book_root / "chapters" / "summary.md").write_text(SUMMARY)
    (book_root / "_toc.yml").write_text((book_root / "_toc.yml").read_text() + "  - file: chapters/summary\n")
    build_dir = book_root / "_build"
    with pytest.raises(build.BuildError, match="for quick mode .* only"):
        build.build(book_root, build_dir, html=False, jobs=2, log=quiet)
    with pytest.raises(build.BuildError, match="jobs=0"):
        build.build(book_root, build_dir, quick=True, html=False, jobs=0, log=quiet)
    results = build.build(book_root, build_dir, quick=True, html=False, jobs=2, log=quiet)
    assert [(r.name, r.ok) for r in results] == [("good", True), ("bad", False), ("summary", True)]
    (g0, g1, g_records), (b0, b1, b_records) = (json.loads((build_dir / "times" / f"{n}.json").read_text())
                                                for n in ("good", "bad"))
    assert g0 < b1 and b0 < g1, "the two chapters did not run at the same time"
    assert g_records != b_records and Path(g_records).name == "good" and Path(b_records).name == "bad"
    assert [records.read(p)["framework"] for p in results[0].records] == ["good"]
    assert not (build_dir / "records" / "bad").exists() or not any((build_dir / "records" / "bad").iterdir())
    summary = json.loads(results[2].notebook.read_text())["cells"][-1]["outputs"][0]["text"]
    assert "".join(summary) == "1 records\n"          # it ran after both: the good one's record only
    report = json.loads((build_dir / "run_report.json").read_text())
    assert {n: r["ok"] for n, r in report.items()} == {"good": True, "bad": False, "summary": True}


# ------------------------------------------------------------------ cache

SUMMARY = """\
---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
rosetta: {run_last: true}
---
# Summary

```{code-cell} ipython3
import os
from pathlib import Path
n = len(list((Path(os.environ["ROSETTA_BUILD"]) / "records").rglob("*.json")))
print(f"{n} records")
```
"""


def quiet(*args, **kwargs):
    pass


def run(root, **kw):
    results = build.build(root, root / "_build", html=False, log=quiet, **kw)
    return {r.name: ("reused" if r.reused else "executed") if r.ok else "failed" for r in results}


def test_cache_reuses_a_chapter_until_something_it_depends_on_changes(book_root):
    (book_root / "chapters" / "summary.md").write_text(SUMMARY)
    (book_root / "_toc.yml").write_text((book_root / "_toc.yml").read_text() + "  - file: chapters/summary\n")
    (book_root / "requirements.txt").write_text("numpy==1.26.4\n")
    (book_root / "code" / "rosetta").mkdir(parents=True)
    (book_root / "code" / "rosetta" / "helper.py").write_text("X = 1\n")
    build_dir = book_root / "_build"
    good = book_root / "chapters" / "good.md"

    assert run(book_root) == {"good": "executed", "bad": "executed", "summary": "executed"}
    first = build.read_report(build_dir)["good"]
    assert run(book_root) == {"good": "reused", "bad": "reused", "summary": "reused"}
    report = build.read_report(build_dir)
    assert report["good"]["reused"] and report["good"]["finished"] == first["finished"]

    good.write_text(good.read_text().replace("# good", "# good\n\nNew prose, no new code."))
    assert run(book_root) == {"good": "reused", "bad": "reused", "summary": "reused"}
    executed = json.loads((build_dir / "executed" / "good.ipynb").read_text())
    assert "New prose, no new code." in "".join(executed["cells"][0]["source"])
    assert "papermill" in executed["metadata"]                            # the earlier run's outputs, kept
    assert all(c["execution_count"] for c in executed["cells"] if c["cell_type"] == "code")

    good.write_text(good.read_text().replace("pass", "x = 1"))                    # code: it and summary
    assert run(book_root) == {"good": "executed", "bad": "reused", "summary": "executed"}
    assert run(book_root, parameters={"fail": False}) == {"good": "executed", "bad": "executed", "summary": "executed"}
    assert run(book_root, parameters={"fail": False}) == {"good": "reused", "bad": "reused", "summary": "reused"}
    (book_root / "code" / "rosetta" / "helper.py").write_text("X = 2\n")         # the helper package
    assert set(run(book_root).values()) == {"executed"}
    (book_root / "requirements.txt").write_text("numpy==1.26.3\n")               # a lock file
    assert set(run(book_root).values()) == {"executed"}
    (build_dir / "records" / "bad" / "bad--two_layer--first--cpu.json").unlink()   # an output gone
    assert run(book_root) == {"good": "reused", "bad": "executed", "summary": "executed"}
    assert set(run(book_root, force=True).values()) == {"executed"}


def test_environment_change_changes_the_key(tmp_path):
    from rosetta.book import cache
    stamp = tmp_path / ".envs" / "chainer" / ".installed"
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    before = cache.environment_hash(tmp_path, "python3", "chainer")
    os.utime(stamp, ns=(1, 1))
    assert cache.environment_hash(tmp_path, "python3", "chainer") != before
    assert cache.environment_hash(tmp_path, "python3", "chainer") != cache.environment_hash(tmp_path, "python3")


# ------------------------------------------------------------------ skipped environments

ROOT = Path(__file__).resolve().parents[1]


def make_skip_marker(root, **env):
    """Run the Makefile's own rule for CNTK on a scratch copy, as on a machine without Python 3.6."""
    scratch = root / "make"
    scratch.mkdir()
    shutil.copy2(ROOT / "Makefile", scratch)
    shutil.copytree(ROOT / "envs", scratch / "envs")
    vars_ = [f"{k}={v}" for k, v in env.items()]
    chosen = subprocess.run(["make", "-s", "-C", str(scratch), *vars_, "--eval", "show: ; @echo $(EXTRA_ENVS)", "show"],
                            capture_output=True, text=True, env=outer_make_free())
    assert "skip-cntk" in chosen.stdout.split() and ".envs/cntk/.installed" not in chosen.stdout, chosen
    proc = subprocess.run(["make", "-s", "-C", str(scratch), *vars_, "skip-cntk"], capture_output=True, text=True, env=outer_make_free())
    (root / ".envs").mkdir(exist_ok=True)
    if (scratch / ".envs" / "cntk.skipped").is_file():
        shutil.copy2(scratch / ".envs" / "cntk.skipped", root / ".envs" / "cntk.skipped")
    return proc


def outer_make_free() -> dict:
    """This process's environment without what an outer ``make`` passes down (``make test STRICT=1``
    in CI exports STRICT=1 through MAKEFLAGS): the scratch make must see only the test's variables."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STRICT")}


def test_make_skips_cntk_without_python36_and_strict_fails(tmp_path):
    proc = make_skip_marker(tmp_path, PYTHON36="/nonexistent")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CNTK 2.7 needs Python 3.6" in lines[0] and "PYTHON36=" in lines[0], lines
    assert "/nonexistent does not exist" in (tmp_path / ".envs" / "cntk.skipped").read_text()
    strict = subprocess.run(["make", "-s", "-C", str(tmp_path / "make"), "PYTHON36=/nonexistent", "STRICT=1",
                             "skip-cntk"], capture_output=True, text=True, env=outer_make_free())
    assert strict.returncode != 0 and "cntk environment cannot be built" in strict.stderr


FAILED_PIP = "ERROR: No matching distribution found for a-pinned-package==1.0"
# every extra environment whose build may fail here, with the chapters that name it
ENV_CHAPTERS = {"chainer": ["appendix_chainer"], "keras-jax": ["appendix_keras"], "pytensor": ["jax", "pytensor"]}


def make_failed_build(root, name, **env):
    """Run the Makefile's own try-<name> on a scratch copy whose interpreter fails as pip does without
    its wheels (a FIXTURE script, not a Python): nothing is built, no real environment is touched."""
    scratch = root / "make"
    scratch.mkdir(exist_ok=True)
    shutil.copy2(ROOT / "Makefile", scratch)
    shutil.copytree(ROOT / "envs", scratch / "envs", dirs_exist_ok=True)
    (scratch / "chapters").mkdir(exist_ok=True)
    for chapter in ENV_CHAPTERS[name]:
        shutil.copy2(ROOT / "chapters" / f"{chapter}.md", scratch / "chapters")
    for dep in ("requirements.txt", "code/pyproject.toml"):          # the main environment, as built
        (scratch / dep).parent.mkdir(parents=True, exist_ok=True)
        (scratch / dep).touch()
    (scratch / ".venv").mkdir(exist_ok=True)
    os.utime(scratch / "requirements.txt", ns=(1, 1))
    os.utime(scratch / "code" / "pyproject.toml", ns=(1, 1))
    (scratch / ".venv" / ".rosetta-installed").touch()
    fake = scratch / "python-without-wheels"
    fake.write_text(f"#!/bin/sh\necho '{FAILED_PIP}' >&2\nexit 1\n")
    fake.chmod(0o755)
    vars_ = [f"PYTHON={fake}"] + [f"{k}={v}" for k, v in env.items()]
    chosen = subprocess.run(["make", "-s", "-C", str(scratch), *vars_, "--eval", "show: ; @echo $(EXTRA_ENVS)", "show"],
                            capture_output=True, text=True, env=outer_make_free())
    assert f"try-{name}" in chosen.stdout.split(), chosen
    return scratch, subprocess.run(["make", "-s", "-C", str(scratch), *vars_, f"try-{name}"], capture_output=True,
                                   text=True, env=outer_make_free())


@pytest.mark.parametrize("name", sorted(ENV_CHAPTERS))
def test_an_environment_whose_build_fails_is_skipped_and_strict_fails(tmp_path, name):
    scratch, proc = make_failed_build(tmp_path, name)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines                                     # one line: what failed, how to provide it
    assert lines[0].startswith(f"make: the {name} environment could not be built: \"{FAILED_PIP}\"")
    assert f"requirements-{name}.txt" in lines[0] and "run make again" in lines[0] and "STRICT=1" in lines[0]
    assert not (scratch / ".envs" / name).exists()                   # nothing half-built is left
    assert (scratch / ".envs" / f"{name}.log").read_text().startswith(FAILED_PIP)
    reason = (scratch / ".envs" / f"{name}.skipped").read_text().strip()
    for chapter in ENV_CHAPTERS[name]:                               # the build skips its chapters with it
        assert build.chapter_env(scratch, chapter) == name and build.skip_reason(scratch, chapter) == reason
    strict = subprocess.run(["make", "-s", "-C", str(scratch), f"PYTHON={scratch / 'python-without-wheels'}",
                             "STRICT=1", f"try-{name}"], capture_output=True, text=True, env=outer_make_free())
    assert strict.returncode != 0 and f"the {name} environment could not be built" in strict.stderr


def test_chapter_without_its_environment_is_skipped_shown_as_not_executed_and_strict_fails(book_root, capsys):
    (book_root / "chapters" / "bad.md").write_text(CHAPTER.format(name="bad").replace(
        "kernelspec:", "rosetta: {env: cntk}\nkernelspec:").replace(
        "# bad\n", "# bad\n\nIt trains {glue:text}`bad_steps` steps.\n\n```{glue:figure} bad_fig\n:name: fig-bad\n\n"
                   "A figure.\n```\n\nAs {numref}`fig-bad` shows.\n"))
    old = book_root / "_build" / "records" / "bad" / "bad--two_layer--first--cpu.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"old": true}')
    assert make_skip_marker(book_root, PYTHON36="/nonexistent").returncode == 0
    (book_root / "_config.yml").write_text("title: t\nexecute: {execute_notebooks: 'off'}\n")
    (book_root / "node_modules").symlink_to(ROOT / "node_modules")

    assert build.main(["-p", "fail", "False"]) == 0              # skipped only: exit 0, HTML built
    err = capsys.readouterr().err
    assert "chapter 'bad' not executed: CNTK 2.7 needs Python 3.6" in err
    build_dir = book_root / "_build"
    report = build.read_report(build_dir)
    assert report["bad"]["skipped"].startswith("CNTK 2.7 needs Python 3.6") and report["good"]["skipped"] == ""
    assert not (build_dir / "records" / "bad").exists()          # no earlier numbers shown as this build's
    assert json.loads((build_dir / "stale" / "bad" / "bad" / old.name).read_text()) == {"old": True}
    page = (build_dir / "html" / "chapters" / "bad.html").read_text()
    assert "Not executed in this build: CNTK 2.7 needs Python 3.6" in page
    assert "not measured in this build" in page and "glue" not in page.replace("myst_nb import glue", "")

    assert build.main(["--no-html", "--strict"]) == 1
    assert "chapter 'bad' failed: not executed: CNTK 2.7 needs Python 3.6" in capsys.readouterr().err
