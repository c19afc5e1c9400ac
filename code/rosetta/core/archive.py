"""Records from other machines (a GPU in Colab, any CUDA machine) brought into the book.

A run elsewhere packs its chapter's records into one zip file (:func:`pack`; the last cell of
every Colab copy calls :func:`pack_chapter`), laid out as ``<chapter>/<record>.json``; a
build's ``_build/records/`` folder has the same layout. ``rosetta-records import PATH`` checks
every record in it (:func:`problems`) and files the good ones under
``data/records/<machine>/<chapter>/``, where ``<machine>`` names the GPU (or the CPU) the run
used. It is all-or-nothing: one bad record, or one that would replace a different record of
the same name without ``--replace``, and nothing is written. ``rosetta-records list`` shows
what is kept; :func:`beside` puts a chapter's results next to the kept GPU results.
"""
import argparse
from datetime import datetime, timezone
import json
import math
import os
from pathlib import Path
import re
import sys
import tempfile
import zipfile

from rosetta.core import accelerator as acc
from rosetta.core import records

DEVICES = ("cpu", "cuda")
TEXT_FIELDS = ("framework", "framework_version", "variant", "device_name", "python", "git_commit", "date")


class ArchiveError(ValueError):
    """Records that cannot be imported; the message names each file and field."""



def _count(n: int, noun: str) -> str:
    """'1 record', '3 records': the sentences of this module say their numbers in English."""
    return f"{n} {noun}{'' if n == 1 else 's'}"

def _slug(text) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-") or "unknown"


def machine(rec: dict) -> str:
    """The folder of a record's machine (:func:`rosetta.core.records.machine`): its GPU's name, or
    its CPU's for a CPU record."""
    return _slug(records.machine(rec))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def problems(rec) -> list:
    """Everything wrong with one record: a list of (field, problem); empty for a good record."""
    if not isinstance(rec, dict):
        return [("(record)", f"must be a JSON object, got {type(rec).__name__}")]
    if rec.get("schema") != records.SCHEMA:
        return [("schema", f"is {rec.get('schema')!r}; this book reads schema {records.SCHEMA}")]
    bad = [(k, "missing") for k in records.REQUIRED if k not in rec]
    bad += [(k, "missing or empty") for k in TEXT_FIELDS if k in rec and not rec[k]]
    if rec.get("model") not in records.MODELS:
        bad.append(("model", f"must be one of {records.MODELS}, got {rec.get('model')!r}"))
    device = rec.get("device")
    if device not in DEVICES:
        bad.append(("device", f"must be one of {DEVICES}, got {device!r}"))
    elif device == "cuda":
        bad += acc.check(rec.get("accelerator"))
    elif rec.get("accelerator") is not None:
        bad.append(("accelerator", "must be null for a CPU record"))
    losses = rec.get("losses")
    if not isinstance(losses, list) or (not losses and rec.get("model") != "matmul"):   # the yardstick has none
        bad.append(("losses", "must be a non-empty list"))
        losses = []
    for i, v in enumerate(losses):
        if not _finite(v):
            bad.append((f"losses[{i}]", f"is {v!r}, not a finite number"))
            break
    bad += _parity_problems(rec.get("parity"), losses)
    timing = rec.get("timing")
    if not isinstance(timing, dict) or not _finite(timing.get("median_s")) or timing["median_s"] <= 0:
        bad.append(("timing.median_s", "must be a positive number"))
    try:
        records.one_off_costs((o.get("name"), o.get("kind"), o.get("seconds")) for o in rec.get("one_off", []))
    except (records.RecordError, AttributeError, TypeError, ValueError) as err:
        bad.append(("one_off", str(err)))
    return bad


def _parity_problems(parity, losses) -> list:
    if not isinstance(parity, dict):
        return [("parity", "missing")]
    need = ("steps", "reference", "tolerance", "max_rel_dev", "rel_dev", "passed", "gates")
    missing = [("parity." + k, "missing") for k in need if k not in parity]
    if missing:
        return missing
    ref, dev, steps = parity["reference"], parity["rel_dev"], parity["steps"]
    if not (isinstance(ref, list) and isinstance(dev, list) and steps == len(ref) == len(dev) <= len(losses)):
        return [("parity.steps", f"is {steps!r} but the reference has {len(ref) if isinstance(ref, list) else '?'} "
                                 f"values, rel_dev {len(dev) if isinstance(dev, list) else '?'} and losses {len(losses)}")]
    if not all(_finite(v) and v != 0 for v in ref) or not _finite(parity["tolerance"]):
        return [("parity.reference", "must hold finite, non-zero numbers and a finite tolerance")]
    if losses and all(_finite(v) for v in losses[:steps]):
        worst = max(abs(a - r) / abs(r) for a, r in zip(losses, ref))
        if not _finite(parity["max_rel_dev"]) or abs(worst - parity["max_rel_dev"]) > 1e-9 * max(1.0, worst):
            return [("parity.max_rel_dev", f"is {parity['max_rel_dev']!r} but the losses and the reference give {worst:.6g}")]
        if parity["passed"] is not (worst <= parity["tolerance"]):
            return [("parity.passed", f"is {parity['passed']!r} but the deviation {worst:.3g} is "
                                      f"{'within' if worst <= parity['tolerance'] else 'above'} the tolerance "
                                      f"{parity['tolerance']:g}")]
    if not isinstance(parity["gates"], bool):
        return [("parity.gates", f"must be true or false, got {parity['gates']!r}")]
    return []


# ------------------------------------------------------------------ reading

def _entries(path) -> list:
    """(where, chapter, text) of every ``<chapter>/<record>.json`` in a zip file or a folder."""
    path = Path(path)
    if path.is_dir():
        return [(str(p), p.parent.name if p.parent != path else None, p.read_text())
                for p in sorted(path.rglob("*.json"))]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [(f"{path}:{n}", Path(n).parent.name or None, z.read(n).decode())
                    for n in sorted(z.namelist()) if n.endswith(".json")]
    if path.suffix == ".json" and path.is_file():
        raise ArchiveError(f"{path}: a single record needs its chapter: import the folder or zip file "
                           f"that holds <chapter>/{path.name}")
    raise ArchiveError(f"{path}: not a folder or zip file of records")


def plan(path, dest, replace=False) -> list:
    """Check every record under ``path``; returns [(target path, text)] to write, or raises
    :class:`ArchiveError` listing every problem. Records already kept unchanged are left out."""
    dest = Path(dest)
    entries = _entries(path)
    if not entries:
        raise ArchiveError(f"{path}: no records (*.json) found")
    errors, todo, targets = [], [], {}
    for where, chapter, text in entries:
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as err:
            errors.append(f"{where}: not valid JSON ({err})")
            continue
        bad = problems(rec)
        if not chapter or not re.fullmatch(r"[A-Za-z0-9_]+", chapter):
            bad.append(("(folder)", f"the record must lie in a folder named for its chapter, not {chapter!r}"))
        if not bad and Path(where).name.split(":")[-1].split("/")[-1] != records.filename(rec):
            bad.append(("(file name)", f"should be {records.filename(rec)} for this record's framework, "
                                       f"model, variant and device"))
        errors += [f"{where}: field {field}: {what}" for field, what in bad]
        if bad:
            continue
        target = dest / machine(rec) / chapter / records.filename(rec)
        if target in targets:
            errors.append(f"{where}: same record as {targets[target]} ({target})")
            continue
        targets[target] = where
        if target.is_file():
            if json.loads(target.read_text()) == rec:
                continue
            if not replace:
                errors.append(f"{where}: a different record is kept as {target}; pass --replace to replace it")
                continue
        todo.append((target, json.dumps(rec, indent=1, allow_nan=False)))
    if errors:
        raise ArchiveError("nothing imported:\n  " + "\n  ".join(errors))
    return todo


def import_records(path, dest=None, replace=False) -> list:
    """Import the records under ``path`` into ``dest`` (``data/records``); returns the paths written.

    Every file is first written next to its target, then all are renamed into place, so a
    failure leaves ``dest`` as it was.
    """
    dest = Path(dest) if dest is not None else records.committed_dir()
    todo, staged = plan(path, dest, replace), []
    try:
        for target, text in todo:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="." + target.name, suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            staged.append((tmp, target))
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    return [target for _, target in staged]


def kept(dest=None, device="cuda") -> list:
    """The kept records (of ``device``; None for all) as (path, record), sorted by path."""
    dest = Path(dest) if dest is not None else records.committed_dir()
    out = []
    for p in sorted(dest.rglob("*.json")) if dest.is_dir() else []:
        rec = records.read(p)
        if device is None or rec["device"] == device:
            out.append((p, rec))
    return out


# ------------------------------------------------------------------ packing

def pack(folder, out, chapter=None) -> Path:
    """Zip the records under ``folder`` into ``out``: as ``<chapter>/<file>`` when ``chapter`` is
    given (a folder of one chapter's records), else with their paths below ``folder``."""
    folder, out = Path(folder), Path(out)
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise ArchiveError(f"no records (*.json) in {folder}: run the chapter first")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:
            z.write(p, f"{chapter}/{p.name}" if chapter else str(p.relative_to(folder)))
    return out


def pack_chapter(chapter, out_dir="."):
    """Pack the records one chapter wrote in this session (Colab) into one zip file in ``out_dir``;
    returns its path, or None (and says so) where the chapter wrote none."""
    base = Path(os.environ.get("ROSETTA_COLAB_DIR", "/content"))
    for folder in (records.default_dir(), base / "rosetta-runs" / "_build" / "records" / chapter):
        folder = folder / chapter if (folder / chapter).is_dir() else folder
        if folder.is_dir() and any(folder.glob("*.json")):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            return pack(folder, Path(out_dir) / f"rosetta-records-{chapter}-{stamp}.zip", chapter)
    print(f"The {chapter} chapter wrote no records in this session (run it first), so there is nothing to pack.")
    return None


# ------------------------------------------------------------------ display

def beside(saved, framework, dest=None):
    """This build's results (``saved`` records) beside the kept GPU results of ``framework``.

    Returns (table, text): a DataFrame with one row per record, each naming its machine and date,
    and a sentence saying which GPU results are kept ("no GPU result is kept" when none).
    """
    import pandas as pd
    gpu = [(p, r) for p, r in kept(dest) if r["framework"] == framework]
    rows = [_row(r, "this build") for r in saved] + [_row(r, "kept") for _, r in gpu]
    if gpu:
        names = sorted({r["accelerator"]["name"] for _, r in gpu})
        text = f"{_count(len(gpu), 'GPU result')} of {framework} {'is' if len(gpu) == 1 else 'are'} kept, from {', '.join(names)}."
    else:
        text = f"No GPU result of {framework} is kept: the table shows this build's results only."
    return pd.DataFrame(rows), text


def _row(r, source) -> dict:
    a = r.get("accelerator") or {}
    return {"source": source, "machine": machine(r), "date": r["date"][:10], "device": r["device"],
            "GPU": a.get("name"), "model": r["model"], "variant": r["variant"],
            "step median (ms)": 1e3 * r["timing"]["median_s"],
            # a run without losses (a matrix-multiply yardstick) has no parity to show
            "max rel. deviation": r["parity"]["max_rel_dev"] if r["losses"] else None,
            "parity passed": r["parity"]["passed"] if r["losses"] else None,
            "test accuracy (%)": None if r.get("test_accuracy") is None else 100 * r["test_accuracy"]}


def summary(dest=None) -> str:
    """One sentence: which GPU results the book keeps (for the intro)."""
    gpu = kept(dest)
    if not gpu:
        return "The book keeps no GPU result yet: every number in it comes from the CPU of the machine that built it."
    by = {}
    for _, r in gpu:
        seen = by.setdefault(r["accelerator"]["name"], {"chapters": set(), "dates": set()})
        seen["chapters"].add(r["framework"])
        seen["dates"].add(r["date"][:10])
    parts = []
    for name, seen in sorted(by.items()):
        dates = sorted(seen["dates"])
        parts.append(f"{name} ({', '.join(sorted(seen['chapters']))}; run "
                     + (f"on {dates[0]}" if len(dates) == 1 else f"from {dates[0]} to {dates[-1]}") + ")")
    return f"The book keeps {_count(len(gpu), 'GPU record')}: " + "; ".join(parts) + "."


# ------------------------------------------------------------------ command line

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rosetta-records", description="Import and list the book's kept records "
                                 "(runs on machines the build does not have, such as GPUs).")
    sub = ap.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="check records (a zip file or a folder of <chapter>/<record>.json) "
                                        "and keep the good ones under data/records/<machine>/<chapter>/")
    imp.add_argument("path", type=Path)
    imp.add_argument("--replace", action="store_true", help="replace kept records that differ")
    imp.add_argument("--into", type=Path, default=None, help="default: data/records of the book")
    ls = sub.add_parser("list", help="show the kept records")
    ls.add_argument("--into", type=Path, default=None, help="default: data/records of the book")
    args = ap.parse_args(argv)
    try:
        if args.command == "import":
            written = import_records(args.path, args.into, args.replace)
            for p in written:
                print(f"kept {p}")
            print(f"{_count(len(written), 'record')} imported" + ("" if written else " (all were already kept)"))
        else:
            rows = kept(args.into, device=None)
            for p, r in rows:
                gpu = (r.get("accelerator") or {}).get("name") or r["device_name"]
                print(f"{p}  {r['framework']} {r['model']} {r['variant']} on {r['device']} ({gpu}), {r['date'][:10]}")
            print(f"{_count(len(rows), 'record')} kept")
    except (ArchiveError, records.RecordError, OSError) as err:
        print(f"rosetta-records: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
