"""Result records: one JSON file per (framework, model, variant, device) run.

:func:`write` puts a record in place atomically (a temporary file in the same
folder, then a rename), so a run that dies half-way leaves the previous record
or none, never half of one. :func:`load` turns every record into one row of a
tidy pandas DataFrame for the comparison chapter.
"""
from datetime import datetime, timezone
import json
from pathlib import Path
import platform
import re
import subprocess
import sys

import numpy as np

from rosetta.core import files, paths

SCHEMA = 2   # 2: ``parity.gates`` and the typed ``one_off`` costs
# lenet_dp: LeNet trained data-parallel (scaling chapter); recurrence: the control-flow loop of every
# framework chapter; matmul: the machine's float32 matrix-multiply rate (no losses), the yardstick
MODELS = ("two_layer", "lenet", "lenet_dp", "lenet_race", "lenet_data", "recurrence", "matmul")
REQUIRED = ("schema", "framework", "framework_version", "variant", "model", "device", "device_name",
            "threads", "params", "losses", "parity", "one_off", "timing", "memory", "python", "git_commit",
            "date")
# One-off costs a run pays before (or apart from) its steps, by kind.
ONE_OFF_KINDS = ("trace", "compile_cold", "compile_warm", "hybridize", "export")
# each kind as the pages say it
ONE_OFF_WORDS = {"trace": "trace", "compile_cold": "compile, empty cache", "compile_warm": "compile, filled cache",
                 "hybridize": "hybridize", "export": "export"}


def one_off_words(entry: dict) -> str:
    """A typed one-off cost in words: its name, and its kind where the name does not say it."""
    kind = ONE_OFF_WORDS.get(entry["kind"], entry["kind"])
    return entry["name"] if entry["name"].startswith(entry["kind"]) else f"{entry['name']} ({kind})"


class RecordError(ValueError):
    """A record that must not be written or cannot be read."""


def default_dir() -> Path:
    """Where this build's records go: ``ROSETTA_RECORDS``, else ``<build folder>/records``."""
    return paths.records_dir()


def committed_dir() -> Path:
    """Records kept in the repository (runs on machines the build does not have, e.g. GPUs)."""
    return paths.data_dir() / "records"


def git_commit() -> str:
    from rosetta import repo_root
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=repo_root(),
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make(*, framework, framework_version, variant, model, device, device_name, threads, params,
         losses, reference, tolerance, probe_summary, test_accuracy=None, extra=None, gates=True,
         one_off=(), accelerator=None) -> dict:
    """Assemble a record; refuses a run whose losses are not finite (a diverged run is no result).

    ``reference`` holds the NumPy reference's losses for the first steps; the
    parity figure compares those steps of ``losses`` with it. ``gates`` says whether a
    parity miss of this run fails its chapter (``parity.gates``). ``one_off`` lists the run's
    one-off costs as ``(name, kind, seconds)`` with ``kind`` one of :data:`ONE_OFF_KINDS`.
    ``accelerator`` names the GPU of a run on one (:func:`rosetta.core.accelerator.describe`);
    None on the CPU.
    """
    if model not in MODELS:
        raise RecordError(f"model must be one of {MODELS}, got {model!r}")
    losses = [float(v) for v in losses]
    bad = [i for i, v in enumerate(losses) if not np.isfinite(v)]
    if bad:
        raise RecordError(f"{framework}/{model}/{variant}: loss is {losses[bad[0]]} at step {bad[0]}; the run "
                          f"diverged (learning rate too high?) and is not recorded")
    ref = np.asarray(reference, np.float64)
    head = np.asarray(losses[:len(ref)], np.float64)
    dev = np.abs(head - ref) / np.abs(ref)
    max_dev = float(dev.max()) if dev.size else 0.0       # a record without losses (matmul) checks none
    rec = {
        "schema": SCHEMA, "framework": framework, "framework_version": str(framework_version),
        "variant": variant, "model": model, "device": device, "device_name": device_name,
        "threads": int(threads), "params": dict(params), "losses": losses,
        "parity": {"steps": int(len(ref)), "reference": [float(v) for v in ref], "tolerance": tolerance,
                   "max_rel_dev": max_dev, "rel_dev": [float(v) for v in dev],
                   "passed": bool(max_dev <= tolerance), "gates": bool(gates)},
        "one_off": one_off_costs(one_off),
        **probe_summary,
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "extra": dict(extra or {}), "accelerator": None if accelerator is None else dict(accelerator),
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_name(),
        "git_commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return rec


def one_off_costs(items) -> list:
    """``[(name, kind, seconds), ...]`` as the record's typed ``one_off`` list, checked."""
    out = []
    for item in items:
        try:
            name, kind, seconds = item
        except (TypeError, ValueError):
            raise RecordError(f"one_off entries are (name, kind, seconds), got {item!r}") from None
        if kind not in ONE_OFF_KINDS:
            raise RecordError(f"one_off {name!r}: kind must be one of {ONE_OFF_KINDS}, got {kind!r}")
        seconds = float(seconds)
        if not np.isfinite(seconds) or seconds < 0:
            raise RecordError(f"one_off {name!r}: seconds must be finite and >= 0, got {seconds}")
        out.append({"name": str(name), "kind": kind, "seconds": seconds})
    return out


class Recorder:
    """Writes a chapter's records: the fields every record of the chapter shares, given once."""

    def __init__(self, *, framework, framework_version, device, device_name, threads, params, folder=None,
                 accelerator=None):
        self.common = dict(framework=framework, framework_version=framework_version, device=device,
                           device_name=device_name, threads=threads, params=params, accelerator=accelerator)
        self.folder = folder
        self.saved = []

    def save(self, *, variant, model, losses, reference, tolerance, probe_summary, test_accuracy=None,
             extra=None, check=True, one_off=()) -> dict:
        """Write the record, then raise ``ParityError`` if the run left the reference's tolerance.

        ``check=False`` is for float32 LeNet runs, whose parity a float64 run of the same code
        checks (see CONTRIBUTING.md): the record still says whether it passed, says that its parity
        does not gate the build (``parity.gates``), and a line says so.
        """
        from rosetta.core.reference import ParityError, check as check_parity
        rec = make(variant=variant, model=model, losses=losses, reference=reference, tolerance=tolerance,
                   probe_summary=probe_summary, test_accuracy=test_accuracy, extra=extra, gates=check,
                   one_off=one_off, **self.common)
        write(rec, self.folder)
        self.saved.append(rec)
        try:
            check_parity(rec["losses"][:rec["parity"]["steps"]], reference, tolerance,
                         f"{rec['framework']} {model} {variant}")
        except ParityError as err:
            if check:
                raise
            import textwrap
            print(textwrap.fill(f"parity not reached in this float32 run: {err}", width=77))
        return rec

    def table(self):
        return summarize(self.saved)


def summarize(recs):
    """One line per record: what a reader compares first."""
    import pandas as pd
    rows = []
    for r in recs:
        t, m = r["timing"], r["memory"]
        rows.append({
            "model": r["model"], "variant": r["variant"], "device": r["device"],
            "step median (ms)": 1e3 * t["median_s"], "step IQR (ms)": 1e3 * t["iqr_s"],
            "first step (ms)": 1e3 * t["first_step_s"],
            "peak RSS increase (MiB)": None if m["rss_increase_bytes"] is None else m["rss_increase_bytes"] / 2**20,
            # a run without losses (a matrix-multiply yardstick) has no deviation to show
            "max rel. deviation": r["parity"]["max_rel_dev"] if r["losses"] else None,
            "test accuracy (%)": None if r["test_accuracy"] is None else 100 * r["test_accuracy"],
        })
    return pd.DataFrame(rows)


def machine(rec: dict) -> str:
    """The machine a record's run used: its GPU's name for a GPU run (``accelerator.name``, else
    ``device_name``), its processor's name for a CPU run (``device_name``, else ``cpu``)."""
    if rec.get("device") not in (None, "cpu") and isinstance(rec.get("accelerator"), dict) \
            and rec["accelerator"].get("name"):
        return str(rec["accelerator"]["name"])
    return str(rec.get("device_name") or rec.get("cpu") or "unknown")


def filename(rec: dict) -> str:
    parts = (rec["framework"], rec["model"], rec["variant"], rec["device"])
    return "--".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", str(p)) for p in parts) + ".json"


def write(rec: dict, folder=None) -> Path:
    """Write ``rec`` atomically into ``folder``; returns its path."""
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise RecordError(f"record lacks {missing}; build it with records.make()")
    folder = Path(folder) if folder is not None else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return files.write_text(folder / filename(rec), json.dumps(rec, indent=1, allow_nan=False))


def read(path) -> dict:
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordError(f"cannot read record {path}: {err}; delete it and re-run its chapter") from None
    if rec.get("schema") != SCHEMA:
        raise RecordError(f"record {path} has schema {rec.get('schema')!r}, this book reads schema {SCHEMA}; "
                          f"re-run its chapter to write it anew")
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise RecordError(f"record {path} lacks {missing}; delete it and re-run its chapter")
    return rec


def check_folders(folders) -> list:
    """Folders of records given by a user (``-p records_dirs '[...]'``), checked before any work.

    Each must exist, be a folder, hold files, and its JSON files must all be records this book
    reads; otherwise :class:`RecordError` names the folder, what is wrong and what to do.
    """
    example = "for example -p records_dirs '[\"_build/records\", \"data/records\"]'"
    if isinstance(folders, (str, Path)) or not isinstance(folders, (list, tuple)) or \
            not all(isinstance(f, (str, Path)) for f in folders):
        raise RecordError(f"records_dirs must be a list of folders, got {folders!r}; {example}")
    out = []
    for folder in map(Path, folders):
        if not folder.exists():
            raise RecordError(f"records folder {folder} does not exist; give folders that the build wrote "
                              f"(_build/records or one chapter's _build/records/<chapter>) or data/records")
        if not folder.is_dir():
            raise RecordError(f"records folder {folder} is a file, not a folder; give the folder that holds it")
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise RecordError(f"records folder {folder} is empty; execute the chapters first (rosetta-build) "
                              f"or give a folder that holds records")
        bad = [p for p in files if p.suffix == ".json" and not _is_record(p)]
        if bad or not any(p.suffix == ".json" for p in files):
            shown = [str(p.relative_to(folder)) for p in (bad or files)[:5]]
            raise RecordError(f"records folder {folder} holds files that are not records of this book "
                              f"(schema {SCHEMA} JSON written by a chapter): {', '.join(shown)}"
                              f"{' ...' if len(bad or files) > 5 else ''}; remove them or give another folder")
        out.append(folder)
    return out


def _is_record(path: Path) -> bool:
    try:
        read(path)
    except RecordError:
        return False
    return True


def load(*folders):
    """All records under ``folders`` as a DataFrame, one row per record.

    Nested fields are flattened (``timing.median_s``, ``memory.peak_rss_bytes``,
    ``parity.max_rel_dev``, ``params.batch_size``...); list fields stay lists.
    A record is identified by its file name (framework, model, variant, device) and its
    :func:`machine`: records of the same run on two machines (two GPUs, both ``cuda``) are both
    kept, and one record found in several folders (this build's, and the same file imported into
    ``data/records``) is taken once, from the first. Folders that a user gives are checked with
    :func:`check_folders` first (the comparison's loader does).
    """
    import pandas as pd
    folders = folders or (default_dir(), committed_dir())
    rows, seen = [], set()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.json")) if Path(folder).is_dir() else []:
            rec = read(path)
            if (path.name, machine(rec)) in seen:
                continue
            seen.add((path.name, machine(rec)))
            rows.append({**_row(rec), "source": str(path)})
    return pd.DataFrame(rows)


def _row(rec: dict) -> dict:
    import pandas as pd
    return pd.json_normalize(rec, max_level=1).iloc[0].to_dict()


def frame(recs):
    """Records in memory (``Recorder.save``'s return values) as :func:`load` gives them from files."""
    import pandas as pd
    return pd.DataFrame([_row(r) for r in recs])


def losses_long(df):
    """Per-step losses of every record in long form: one row per (record, step)."""
    import pandas as pd
    keys = ["framework", "variant", "model", "device"]
    parts = []
    for _, row in df.iterrows():
        n = len(row["losses"])
        ref = list(row["parity.reference"]) + [np.nan] * (n - len(row["parity.reference"]))
        part = pd.DataFrame({"step": np.arange(n), "loss": row["losses"], "reference": ref})
        for k in keys:
            part[k] = row[k]
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=keys + ["step", "loss", "reference"])
