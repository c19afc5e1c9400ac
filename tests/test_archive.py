"""Records from other machines: `rosetta-records import` checks them, keeps good ones, refuses bad ones.

The GPU records here are FIXTURES: a real CPU run of PyTorch's 2-layer net (records.make), with the
device fields changed to name a GPU that does not exist ("FIXTURE GPU"). They are written under
pytest's tmp_path only, never into data/records/.
"""
import json
import math
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from rosetta.core import accelerator, archive, params, records, reference, timing, weights

from conftest import ROOT

FIXTURE_GPU = "FIXTURE GPU (not a measurement)"


@pytest.fixture(scope="module")
def cpu_record():
    """A real record: PyTorch's 2-layer net with autograd, a few steps on the CPU."""
    import torch
    x, y, w1, w2 = weights.two_layer(0)
    steps = 8
    ref = reference.two_layer_losses(x, y, w1, w2, params.TWO_LAYER_LR, steps)
    x, y = torch.tensor(x), torch.tensor(y)
    w1, w2 = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
    losses = []
    with timing.Probe(warmup=1) as probe:
        for _ in range(steps):
            with probe.step():
                loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
                loss.backward()
                with torch.no_grad():
                    for w in (w1, w2):
                        w -= params.TWO_LAYER_LR * w.grad
                        w.grad.zero_()
                losses.append(float(loss.detach()))
    return records.make(framework="pytorch", framework_version=torch.__version__, variant="autograd",
                        model="two_layer", device="cpu", device_name=records.cpu_name(), threads=1,
                        params={"seed": 0}, losses=losses, reference=ref, tolerance=params.TWO_LAYER_TOL,
                        probe_summary=probe.summary())


def gpu_fixture(rec, name=FIXTURE_GPU, **acc):
    """``rec`` with its device fields changed to a GPU's: a fixture, not a measurement."""
    out = json.loads(json.dumps(rec))
    out.update(device="cuda", device_name=name,
               accelerator=accelerator.describe(name=name, capability=acc.get("capability", (8, 9)),
                                                cuda=acc.get("cuda", "12.9"), cudnn=acc.get("cudnn", "9.10.0"),
                                                driver=acc.get("driver", "fixture")))
    out["extra"]["fixture"] = "device fields changed from a CPU record; not a GPU measurement"
    return out


def put(folder, chapter, rec, text=None):
    path = folder / chapter / records.filename(rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else json.dumps(rec))
    return path


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_good_records_are_filed_by_machine_and_chapter_and_listed(tmp_path, cpu_record, capsys):
    src, dest = tmp_path / "colab", tmp_path / "records"
    gpu = gpu_fixture(cpu_record)
    put(src, "pytorch", gpu)
    put(src, "pytorch", cpu_record)
    assert archive.main(["import", str(src), "--into", str(dest)]) == 0
    kept_gpu = dest / "fixture-gpu-not-a-measurement" / "pytorch" / "pytorch--two_layer--autograd--cuda.json"
    assert json.loads(kept_gpu.read_text()) == gpu
    assert len(list(dest.rglob("*.json"))) == 2
    capsys.readouterr()
    assert archive.main(["list", "--into", str(dest)]) == 0
    out = capsys.readouterr().out
    assert FIXTURE_GPU in out and "2 records kept" in out
    # the same records again: nothing to do, nothing changed
    before = tree(dest)
    assert archive.import_records(src, dest) == []
    assert tree(dest) == before


@pytest.mark.parametrize("spoil, field", [
    (lambda r: r["accelerator"].pop("driver"), "accelerator.driver"),
    (lambda r: r["accelerator"].update(compute_capability="sm_89"), "accelerator.compute_capability"),
    (lambda r: r.update(accelerator=None), "accelerator"),
    (lambda r: r.pop("framework_version"), "framework_version"),
    (lambda r: r.update(device_name=""), "device_name"),
    (lambda r: r["losses"].__setitem__(3, float("nan")), "losses[3]"),
    (lambda r: r["parity"].update(passed=not r["parity"]["passed"]), "parity.passed"),
    (lambda r: r["parity"].update(max_rel_dev=r["parity"]["max_rel_dev"] * 3 + 1e-3), "parity.max_rel_dev"),
    (lambda r: r["parity"]["rel_dev"].pop(), "parity.steps"),
    (lambda r: r.update(schema=1), "schema"),
    (lambda r: r.update(device="tpu"), "device"),
])
def test_a_bad_record_is_refused_naming_file_and_field_and_nothing_changes(tmp_path, cpu_record, spoil, field):
    src, dest = tmp_path / "colab", tmp_path / "records"
    put(dest / "earlier-gpu", "pytorch", gpu_fixture(cpu_record, name="earlier GPU"))
    before = tree(dest)
    put(src, "tensorflow", gpu_fixture(cpu_record, name="other GPU"))       # a good one beside it
    bad = gpu_fixture(cpu_record)
    spoil(bad)
    path = put(src, "pytorch", bad)
    res = subprocess.run([sys.executable, "-m", "rosetta.core.archive", "import", str(src), "--into", str(dest)],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert str(path) in res.stderr and f"field {field}:" in res.stderr, res.stderr
    assert "nothing imported" in res.stderr
    assert tree(dest) == before, "a refused import must leave data/records/ as it was"


def test_nan_written_by_json_is_refused(tmp_path, cpu_record):
    bad = gpu_fixture(cpu_record)
    bad["losses"][0] = math.nan
    put(tmp_path / "src", "pytorch", bad, text=json.dumps(bad))       # json writes NaN unless told not to
    with pytest.raises(archive.ArchiveError, match=r"pytorch--two_layer--autograd--cuda.json: field losses\[0\]"):
        archive.import_records(tmp_path / "src", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_different_record_of_the_same_name_is_replaced_only_when_asked(tmp_path, cpu_record):
    dest = tmp_path / "records"
    first = gpu_fixture(cpu_record)
    put(tmp_path / "a", "pytorch", first)
    archive.import_records(tmp_path / "a", dest)
    second = gpu_fixture(cpu_record)
    second["timing"]["median_s"] *= 2
    put(tmp_path / "b", "pytorch", second)
    kept = dest / "fixture-gpu-not-a-measurement" / "pytorch" / records.filename(first)
    with pytest.raises(archive.ArchiveError, match="a different record is kept as .*pass --replace"):
        archive.import_records(tmp_path / "b", dest)
    assert json.loads(kept.read_text()) == first
    assert archive.import_records(tmp_path / "b", dest, replace=True) == [kept]
    assert json.loads(kept.read_text()) == second


def test_records_need_their_chapter_folder_and_their_own_name(tmp_path, cpu_record):
    gpu = gpu_fixture(cpu_record)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / records.filename(gpu)).write_text(json.dumps(gpu))
    with pytest.raises(archive.ArchiveError, match="folder named for its chapter"):
        archive.import_records(tmp_path / "flat", tmp_path / "dest")
    put(tmp_path / "renamed", "pytorch", gpu).rename(tmp_path / "renamed" / "pytorch" / "other.json")
    with pytest.raises(archive.ArchiveError, match=r"field \(file name\): should be pytorch--two_layer--autograd--cuda.json"):
        archive.import_records(tmp_path / "renamed", tmp_path / "dest")
    (tmp_path / "empty").mkdir()
    with pytest.raises(archive.ArchiveError, match="no records"):
        archive.import_records(tmp_path / "empty", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_packed_zip_round_trip_and_pack_chapter(tmp_path, cpu_record, monkeypatch):
    run = tmp_path / "_build" / "records"
    run.mkdir(parents=True)
    gpu = gpu_fixture(cpu_record)
    records.write(gpu, run)
    monkeypatch.setenv("ROSETTA_RECORDS", str(run))
    packed = archive.pack_chapter("pytorch", tmp_path)
    assert packed.name.startswith("rosetta-records-pytorch-") and packed.suffix == ".zip"
    with zipfile.ZipFile(packed) as z:
        assert z.namelist() == ["pytorch/pytorch--two_layer--autograd--cuda.json"]
    written = archive.import_records(packed, tmp_path / "dest")
    assert [p.relative_to(tmp_path / "dest").as_posix() for p in written] == \
        ["fixture-gpu-not-a-measurement/pytorch/pytorch--two_layer--autograd--cuda.json"]
    monkeypatch.setenv("ROSETTA_RECORDS", str(tmp_path / "nothing"))
    monkeypatch.setenv("ROSETTA_COLAB_DIR", str(tmp_path / "nothing"))
    assert archive.pack_chapter("pytorch", tmp_path) is None


def test_chapters_show_kept_gpu_results_beside_their_own(tmp_path, cpu_record):
    dest = tmp_path / "records"
    table, text = archive.beside([cpu_record], "pytorch", dest)
    assert text == "No GPU result of pytorch is kept: the table shows this build's results only."
    assert list(table["source"]) == ["this build"]
    assert archive.summary(dest).startswith("The book keeps no GPU result yet")
    put(tmp_path / "one", "pytorch", gpu_fixture(cpu_record))
    put(tmp_path / "two", "pytorch", gpu_fixture(cpu_record, name="second FIXTURE GPU"))
    archive.import_records(tmp_path / "one", dest)
    archive.import_records(tmp_path / "two", dest)
    table, text = archive.beside([cpu_record], "pytorch", dest)
    assert list(table["source"]) == ["this build", "kept", "kept"]
    kept = table[table["source"] == "kept"]
    assert set(kept["GPU"]) == {FIXTURE_GPU, "second FIXTURE GPU"} and kept["date"].str.match(r"\d{4}-\d\d-\d\d").all()
    assert text.startswith("2 GPU results of pytorch are kept")
    assert archive.beside([], "tensorflow", dest)[1].startswith("No GPU result of tensorflow")
    day = cpu_record["date"][:10]
    assert archive.summary(dest) == (f"The book keeps 2 GPU records: {FIXTURE_GPU} (pytorch; run on {day}); "
                                     f"second FIXTURE GPU (pytorch; run on {day}).")


def test_the_book_keeps_no_fixture_records():
    kept = ROOT / "data" / "records"
    for path in kept.rglob("*.json") if kept.is_dir() else []:
        rec = json.loads(path.read_text())
        assert "fixture" not in json.dumps(rec).lower(), f"{path} is a fixture record: never keep one in data/records/"
        assert not archive.problems(rec), f"{path}: {archive.problems(rec)}"


def test_cpu_records_have_no_accelerator_and_gpu_records_must_name_theirs(cpu_record):
    assert cpu_record["accelerator"] is None and archive.problems(cpu_record) == []
    assert archive.problems(gpu_fixture(cpu_record)) == []
    wrong = dict(cpu_record, accelerator=accelerator.describe(name="x", capability=(8, 0), cuda="1", cudnn="1",
                                                              driver="1"))
    assert archive.problems(wrong) == [("accelerator", "must be null for a CPU record")]


# ------------------------------------------------------------ which GPUs a CUDA library has code for

def test_compute_capability_rule():
    mxnet_cu117 = {"sass": [50, 60, 70, 80, 86], "ptx": []}        # what libmxnet.so of mxnet-cu117 1.9.1 holds
    runs = {cc: accelerator.runs_on(cc, mxnet_cu117) for cc in ("3.7", "5.2", "7.5", "8.0", "8.6", "8.9", "9.0", "12.0")}
    assert runs == {"3.7": False, "5.2": True, "7.5": True, "8.0": True, "8.6": True, "8.9": True,
                    "9.0": False, "12.0": False}
    assert accelerator.runs_on((9, 0), {"sass": [], "ptx": [80]})        # PTX is compiled for newer GPUs
    assert not accelerator.runs_on((7, 5), {"sass": [], "ptx": [80]})


def test_fatbin_architectures_reads_the_gpu_code_of_an_elf_file(tmp_path):
    import struct
    entries = b""
    for kind, arch in ((2, 70), (2, 86), (1, 86)):
        payload = b"\0" * 16
        header = struct.pack("<HHIQIIHHI", kind, 0, 64, len(payload), 0, 0, 0, 0, arch).ljust(64, b"\0")
        entries += header + payload
    fatbin = struct.pack("<IHHQ", accelerator.FATBIN_MAGIC, 1, 16, len(entries)) + entries
    path = tmp_path / "lib.so"
    path.write_bytes(_elf_with_section(b".nv_fatbin", fatbin))
    assert accelerator.fatbin_architectures(path) == {"sass": [70, 86], "ptx": [86]}
    path.write_bytes(_elf_with_section(b".text", b"\x90" * 8))
    assert accelerator.fatbin_architectures(path) == {"sass": [], "ptx": []}


def _elf_with_section(name: bytes, data: bytes) -> bytes:
    """A minimal 64-bit ELF file: a null section, ``name`` holding ``data``, and the name table."""
    import struct
    names = b"\0" + name + b"\0.shstrtab\0"
    body_off = 64
    names_off = body_off + len(data)
    shoff = (names_off + len(names) + 7) // 8 * 8
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    blob = header + data + names
    blob = blob.ljust(shoff, b"\0")
    sh = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sh += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, body_off, len(data), 0, 0, 8, 0)
    sh += struct.pack("<IIQQQQIIQQ", 1 + len(name) + 1, 3, 0, 0, names_off, len(names), 0, 0, 1, 0)
    return blob + sh
