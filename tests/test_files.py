"""Folders found one way (``rosetta.core.paths``), files and folders put in place whole
(``rosetta.core.files``), the import shims applied once (``rosetta.frameworks.compat``)."""
import json
import os
import sys

import pytest

from rosetta import repo_root
from rosetta.core import files, paths, records
from rosetta.frameworks import compat


def test_the_build_folder_is_rosetta_build_else_repo_build(monkeypatch, tmp_path):
    monkeypatch.delenv("ROSETTA_BUILD", raising=False)
    monkeypatch.delenv("ROSETTA_RECORDS", raising=False)
    assert paths.build_dir() == repo_root() / "_build"
    assert paths.records_dir() == repo_root() / "_build" / "records" == records.default_dir()
    monkeypatch.setenv("ROSETTA_BUILD", str(tmp_path / "_build"))
    assert paths.build_dir() == tmp_path / "_build"
    assert paths.records_dir() == tmp_path / "_build" / "records"
    monkeypatch.setenv("ROSETTA_RECORDS", str(tmp_path / "chapter"))
    assert records.default_dir() == tmp_path / "chapter"
    from rosetta.compare import tables
    from rosetta.frameworks import theano as fw_theano, worker
    assert tables.build_dir() == tmp_path / "_build"
    assert fw_theano.compile_dir() == tmp_path / "_build" / "theano" / "compiledir"
    assert worker.env_dir("cntk") == repo_root() / ".envs" / "cntk"
    assert records.committed_dir() == paths.data_dir() / "records" == repo_root() / "data" / "records"


def test_write_text_replaces_whole_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    assert files.write_text(path, "old") == path
    files.write_text(path, "néw")
    assert path.read_text(encoding="utf-8") == "néw" and os.listdir(tmp_path) == ["report.json"]

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        files.write_text(path, "half")
    assert path.read_text(encoding="utf-8") == "néw" and os.listdir(tmp_path) == ["report.json"]


def test_replace_dir_swaps_a_finished_folder_in(tmp_path):
    final, new = tmp_path / "records", tmp_path / "staging"
    files.replace_dir(_folder(new, "a.json"), final)
    assert [p.name for p in final.iterdir()] == ["a.json"] and not new.exists()
    files.replace_dir(_folder(new, "b.json"), final)
    assert [p.name for p in final.iterdir()] == ["b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]


def _folder(path, name):
    path.mkdir()
    (path / name).write_text("{}")
    return path


def test_a_record_that_cannot_be_written_leaves_nothing(tmp_path):
    from test_records import sample
    rec = sample()
    path = records.write(rec, tmp_path)
    rec["losses"] = [float("nan")]
    with pytest.raises(ValueError):
        records.write(rec, tmp_path)
    assert os.listdir(tmp_path) == [path.name] and json.loads(path.read_text())["losses"] == [3.0, 2.0, 1.0]


def test_pkg_resources_stand_in_gets_each_name_once(monkeypatch):
    import types
    monkeypatch.setitem(sys.modules, "pkg_resources", types.ModuleType("pkg_resources"))
    assert compat.pkg_resources_stub() == ["pkg_resources.DistributionNotFound"]
    assert compat.pkg_resources_stub(["DistributionNotFound", "get_distribution"]) == ["pkg_resources.get_distribution"]
    assert compat.pkg_resources_stub(["DistributionNotFound", "get_distribution"]) == []
    stand_in = sys.modules["pkg_resources"]
    assert stand_in.get_distribution("numpy").version == __import__("numpy").__version__
    assert issubclass(stand_in.DistributionNotFound, Exception)


def test_scan_loop_switch_is_applied_once(monkeypatch):
    monkeypatch.delitem(sys.modules, "theano.scan.scan_perform_ext", raising=False)
    assert compat.python_scan_loop() is True and sys.modules["theano.scan.scan_perform_ext"] is None
    assert compat.python_scan_loop() is False
    monkeypatch.delitem(sys.modules, "theano.scan.scan_perform_ext")
