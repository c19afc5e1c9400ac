"""Every input the build takes is checked at the door (CONTRIBUTING.md, "Inputs"): a bad one
stops the build within seconds, before any chapter runs, with a message that names the input,
what was expected and what to do, and leaves earlier records untouched. No chapter executes here."""
import json
import time

import pytest

from rosetta.book import build
from rosetta.compare import tables as compare
from rosetta.core import records

from conftest import ROOT


@pytest.fixture
def build_dir(tmp_path):
    """A build folder holding one earlier record, which no bad input may touch."""
    folder = tmp_path / "_build"
    old = folder / "records" / "pytorch" / "old.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"earlier": true}')
    return folder


def refused(build_dir, capsys, *args):
    """Run rosetta-build with ``args``; it must refuse within seconds and touch no record."""
    start = time.perf_counter()
    code = build.main(["--no-html", "--build-dir", str(build_dir), *args])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 1, err
    assert seconds < 15, f"took {seconds:.1f} s to refuse"
    assert json.loads((build_dir / "records" / "pytorch" / "old.json").read_text()) == {"earlier": True}
    assert sorted(p.name for p in (build_dir / "records").rglob("*") if p.is_file()) == ["old.json"]
    assert not (build_dir / "executed").exists() or not any((build_dir / "executed").iterdir())
    return err


def test_unknown_parameter_names_it_lists_the_chapters_and_suggests_the_nearest(build_dir, capsys):
    err = refused(build_dir, capsys, "--only", "pytorch", "-p", "epoc", "3")
    assert "unknown parameter 'epoc': not a parameter of pytorch" in err
    assert "did you mean 'epochs'?" in err
    for name in ("device", "epochs", "batch_size", "train_subset", "test_subset", "seed", "quick", "threads"):
        assert name in err


def test_parameter_of_another_chapter_is_unknown_to_this_one(build_dir, capsys):
    err = refused(build_dir, capsys, "--only", "pytorch", "-p", "records_dirs", '["/tmp"]')
    assert "unknown parameter 'records_dirs': not a parameter of pytorch" in err


def test_each_chapter_gets_only_the_parameters_it_declares():
    declared = {"pytorch": {"epochs": 3, "quick": False}, "scaling": {"steps": 300, "quick": False},
                "comparison": {"quick": False, "records_dirs": []}}
    got = build.parameters_for({"quick": True, "steps": 40}, declared)
    assert got == {"pytorch": {"quick": True}, "scaling": {"quick": True, "steps": 40}, "comparison": {"quick": True}}
    with pytest.raises(build.BuildError, match=r"unknown parameter 'step'.*did you mean 'steps'\?"):
        build.parameters_for({"step": 40}, declared)


@pytest.mark.parametrize("name, value, message", [
    ("epochs", "-1", "parameter 'epochs' must be between 1 and 100, got -1"),
    ("batch_size", "0", "parameter 'batch_size' must be between 1 and 60000, got 0"),
    ("device", "tpu", "parameter 'device' must be one of auto, cpu, cuda; got 'tpu'"),
    ("threads", "abc", "parameter 'threads' must be a whole number, got 'abc'"),
    ("seed", "1.5", "parameter 'seed' must be a whole number, got 1.5"),
])
def test_bad_shared_value_stops_before_any_chapter(build_dir, capsys, name, value, message):
    err = refused(build_dir, capsys, "--only", "pytorch", "-p", name, value)
    assert message in err


def test_records_folder_that_does_not_exist(build_dir, capsys, tmp_path):
    err = refused(build_dir, capsys, "--only", "comparison", "-p", "records_dirs", f'["{tmp_path}/nonexistent/x"]')
    assert f"records folder {tmp_path}/nonexistent/x does not exist" in err and "data/records" in err


def test_records_folder_that_is_empty(build_dir, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    err = refused(build_dir, capsys, "--only", "comparison", "-p", "records_dirs", f'["{tmp_path}/empty"]')
    assert f"records folder {tmp_path}/empty is empty; execute the chapters first" in err


def test_records_folder_holding_files_that_are_not_records(build_dir, capsys, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "results.json").write_text('{"accuracy": 0.99}')
    (folder / "notes.txt").write_text("hello")
    err = refused(build_dir, capsys, "--only", "comparison", "-p", "records_dirs", f'["{folder}"]')
    assert f"records folder {folder} holds files that are not records of this book" in err
    assert "results.json" in err and "remove them or give another folder" in err


def test_records_dirs_must_be_a_list(build_dir, capsys, tmp_path):
    err = refused(build_dir, capsys, "--only", "comparison", "-p", "records_dirs", str(tmp_path))
    assert "records_dirs must be a list of folders" in err and "-p records_dirs '[" in err


def test_the_comparisons_loader_checks_the_folders_it_is_given(tmp_path):
    """The same checks hold when the comparison chapter is run by hand (papermill, Colab)."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(records.RecordError, match="does not exist"):
        compare.load(folders=[tmp_path / "missing"])
    with pytest.raises(records.RecordError, match="is empty"):
        compare.load(folders=[tmp_path / "empty"])
    (tmp_path / "empty" / "x.csv").write_text("a,b\n")
    with pytest.raises(records.RecordError, match="holds files that are not records.*x.csv"):
        compare.load(folders=[tmp_path / "empty"])


def test_no_chapter_declares_a_parameter_it_does_not_use():
    """A declared parameter is read by the chapter's code, not only by its parameters cell."""
    import jupytext
    for name in build.notebook_chapters(ROOT):
        nb = jupytext.read(ROOT / "chapters" / f"{name}.md")
        cells = [c for c in nb.cells if c.cell_type == "code"]
        declared = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        if not declared:
            continue
        assert "not used" not in declared[0].source, f"{name}: {declared[0].source}"
        rest = "\n".join(c.source for c in cells if c is not declared[0])
        for line in declared[0].source.splitlines():
            param = line.split("=")[0].strip()
            if param and not param.startswith("#"):
                assert param in rest, f"chapter {name} declares parameter {param!r} but never reads it"


def test_root_without_a_toc_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROSETTA_ROOT", str(tmp_path))
    assert build.main(["--no-html"]) == 2
    assert f"{tmp_path} holds no _toc.yml: ROSETTA_ROOT must be the book's folder" in capsys.readouterr().err


def test_build_dir_must_be_named_build(tmp_path, capsys):
    assert build.main(["--no-html", "--build-dir", str(tmp_path / "out")]) == 2
    assert "--build-dir must be a folder named _build" in capsys.readouterr().err


def test_unknown_chapter_is_refused(build_dir, capsys):
    err = refused(build_dir, capsys, "--only", "pytorchh")
    assert "unknown chapter(s) ['pytorchh']" in err and "'pytorch'" in err


def test_records_dirs_are_made_absolute_for_the_chapter(tmp_path, monkeypatch):
    """The comparison runs in chapters/: a folder given relative to where the build was started is resolved first."""
    from rosetta.core import params
    folder = tmp_path / "_build" / "records" / "pytorch"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"schema": records.SCHEMA, **{k: None for k in records.REQUIRED[1:]}}))
    monkeypatch.chdir(tmp_path)
    got = params.check_inputs({"records_dirs": ["_build/records"], "quick": True})
    assert got == {"records_dirs": [str(tmp_path / "_build" / "records")], "quick": True}
