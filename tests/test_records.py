"""Records: complete, atomic, refused when garbage, loadable as a table."""
import json

import numpy as np
import pytest

from rosetta.core import files, records, timing
from rosetta.core.records import RecordError


def sample(**over):
    with timing.Probe(warmup=1) as probe:
        for _ in range(3):
            with probe.step():
                pass
    kw = dict(framework="numpy", framework_version="1", variant="v", model="two_layer", device="cpu",
              device_name="cpu", threads=2, params={"seed": 0}, losses=[3.0, 2.0, 1.0],
              reference=[3.0, 2.0], tolerance=1e-4, probe_summary=probe.summary())
    kw.update(over)
    return records.make(**kw)


def test_record_has_every_field_and_parity(tmp_path):
    rec = sample(losses=[3.0, 2.001, 1.0])
    path = records.write(rec, tmp_path)
    back = records.read(path)
    for key in records.REQUIRED:
        assert key in back
    assert back["parity"]["steps"] == 2 and not back["parity"]["passed"]
    assert back["parity"]["max_rel_dev"] == pytest.approx(5e-4)
    assert path.name == "numpy--two_layer--v--cpu.json"


def test_crash_mid_write_leaves_old_record_and_no_partial_file(tmp_path, monkeypatch):
    first = records.write(sample(), tmp_path)
    before = first.read_text()

    class HalfThenDie:
        """The temporary file: takes 50 characters of the record, then the process is killed."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[:50])
            self.f.flush()
            raise KeyboardInterrupt("killed mid-write")

    real_open = open
    monkeypatch.setattr(files, "open", lambda *a, **kw: HalfThenDie(real_open(*a, **kw)), raising=False)
    with pytest.raises(KeyboardInterrupt):
        records.write(sample(losses=[9.0, 9.0, 9.0]), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    assert first.read_text() == before


def test_diverged_run_is_not_recorded():
    with pytest.raises(RecordError, match="loss is nan at step 1; the run diverged"):
        sample(losses=[1.0, float("nan"), 1.0])


def test_incomplete_or_corrupt_records_are_refused(tmp_path):
    with pytest.raises(RecordError, match="lacks"):
        records.write({"framework": "x"}, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match="cannot read record .*bad.json.*re-run its chapter"):
        records.read(bad)


def test_load_makes_a_tidy_table(tmp_path):
    records.write(sample(variant="a"), tmp_path / "one")
    records.write(sample(variant="b", model="lenet", test_accuracy=0.9), tmp_path / "two")
    df = records.load(tmp_path)
    assert sorted(df["variant"]) == ["a", "b"]
    assert {"timing.median_s", "memory.peak_rss_bytes", "parity.max_rel_dev", "params.seed"} <= set(df.columns)
    long = records.losses_long(df)
    assert len(long) == 6 and np.isnan(long["reference"]).sum() == 2


def gpu_sample(gpu, **over):
    """A FIXTURE GPU record (a CPU sample with its device fields changed), never a measurement."""
    from rosetta.core import accelerator
    return sample(device="cuda", device_name=gpu, extra={"fixture": "not a GPU measurement"},
                  accelerator=accelerator.describe(name=gpu, capability=(8, 0), cuda="12.9", cudnn="9",
                                                   driver="fixture"), **over)


def test_load_keeps_each_machines_record_and_one_record_once(tmp_path):
    """The same run (same file name) on two GPUs, both ``cuda``: two rows; the same record in this
    build and in data/records: one row, the first folder's."""
    build, kept = tmp_path / "_build" / "records" / "pytorch", tmp_path / "data" / "records"
    a, b = gpu_sample("FIXTURE GPU A"), gpu_sample("FIXTURE GPU B")
    assert records.filename(a) == records.filename(b)
    assert (records.machine(a), records.machine(b)) == ("FIXTURE GPU A", "FIXTURE GPU B")
    records.write(a, kept / "fixture-gpu-a" / "pytorch")
    records.write(b, kept / "fixture-gpu-b" / "pytorch")
    cpu = sample()
    records.write(cpu, build)
    records.write(cpu, kept / "cpu" / "pytorch")                     # the same record imported: once
    records.write(dict(a, date="2000-01-01T00:00:00+00:00"), build)    # this build's run on GPU A shadows the kept one
    df = records.load(build, kept)
    assert len(df) == 3
    assert sorted(df["device_name"]) == ["FIXTURE GPU A", "FIXTURE GPU B", "cpu"]
    on_a = df[df["device_name"] == "FIXTURE GPU A"].iloc[0]
    assert on_a["date"].startswith("2000") and on_a["source"].startswith(str(build))
    assert df[df["device"] == "cpu"].iloc[0]["source"].startswith(str(build))
    # a GPU record without an accelerator dict is named by its device name; a CPU record by its CPU
    assert records.machine(dict(a, accelerator=None)) == "FIXTURE GPU A" and records.machine(cpu) == "cpu"


def test_frame_of_records_in_memory_is_what_load_reads_from_files(tmp_path):
    recs = [sample(variant="a"), sample(variant="b", model="lenet", test_accuracy=0.9)]
    for rec in recs:
        records.write(rec, tmp_path)
    loaded = records.load(tmp_path).drop(columns="source").sort_values("variant").reset_index(drop=True)
    framed = records.frame(recs)
    assert list(framed.columns) == list(loaded.columns)
    assert framed.drop(columns=["losses", "parity.rel_dev", "parity.reference"]).equals(
        loaded.drop(columns=["losses", "parity.rel_dev", "parity.reference"]))
    assert framed["losses"].tolist() == loaded["losses"].tolist()


def test_recorder_saves_then_enforces_parity_unless_told_not_to(tmp_path, capsys):
    """A run outside the tolerance is written either way; ``check=False`` (float32 LeNet runs, whose
    parity a float64 run checks) reports it in one line instead of raising."""
    from rosetta.core.reference import ParityError
    probe = sample()["timing"], sample()["memory"]
    summary = {"timing": probe[0], "memory": probe[1]}
    rec = records.Recorder(framework="numpy", framework_version="1", device="cpu", device_name="cpu",
                           threads=2, params={"seed": 0}, folder=tmp_path)
    common = dict(model="lenet", losses=[3.0, 2.1, 1.0], reference=[3.0, 2.0], tolerance=1e-3,
                  probe_summary=summary)
    with pytest.raises(ParityError, match="numpy lenet strict: losses deviate .* at step 1"):
        rec.save(variant="strict", **common)
    saved = rec.save(variant="lenient", check=False, **common)
    assert "parity not reached in this float32 run: numpy lenet lenient" in capsys.readouterr().out
    assert not saved["parity"]["passed"] and saved["parity"]["max_rel_dev"] == pytest.approx(0.05)
    assert {p.name for p in tmp_path.iterdir()} == {"numpy--lenet--strict--cpu.json", "numpy--lenet--lenient--cpu.json"}
