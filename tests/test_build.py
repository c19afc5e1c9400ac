"""The build command: a failing chapter stops nothing else and corrupts nothing."""
import json
import textwrap

import pytest

from rosetta.book import build
from rosetta.core import records

CHAPTER = """\
---
jupytext:
  text_representation: {{extension: .md, format_name: myst}}
kernelspec: {{display_name: Python 3, language: python, name: python3}}
---
# {name}

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
