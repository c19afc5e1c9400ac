"""The comparison chapter's tables, computed from the records of the framework chapters.

:func:`load` reads every record of a build (``_build/records/<chapter>/``) and the records
kept in the repository (``data/records/``, GPU runs); every other function turns that
DataFrame into one table. A framework without records is reported by :func:`missing`, and
every table is simply shorter without it: nothing here fails because a chapter did not run.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from rosetta.core import flops, records, timing, weights
from rosetta.core.paths import build_dir  # noqa: F401  (the chapter's compare.build_dir())

# Every framework the comparison reads: the records' framework name -> (its name on the page, the chapter
# that writes its records). A new framework chapter needs one entry here and nothing else.
REGISTRY = {
    "pytorch": ("PyTorch", "pytorch"),
    "tensorflow": ("TensorFlow", "tensorflow"),
    "mxnet": ("MXNet", "mxnet"),
    "theano": ("Theano", "theano"),
    "pytensor": ("PyTensor", "pytensor"),
    "jax": ("JAX", "jax"),
    "keras-tensorflow": ("Keras on TensorFlow", "appendix_keras"),
    "keras-torch": ("Keras on PyTorch", "appendix_keras"),
    "keras-jax": ("Keras on JAX", "appendix_keras"),
}
FRAMEWORKS = tuple(REGISTRY)
NAMES = {f: name for f, (name, _) in REGISTRY.items()}
CHAPTERS = {f: chapter for f, (_, chapter) in REGISTRY.items()}
MODELS = ("two_layer", "lenet")
MODEL_NAMES = {"two_layer": "2-layer net", "lenet": "LeNet"}
NOT_RECORD_CHAPTERS = ("comparison", "status")        # pages whose folders hold no framework records
MIB = 2 ** 20


def record_folders(build=None, committed=None) -> list:
    """This build's chapter record folders, then the committed records' folder."""
    build = Path(build) if build is not None else build_dir()
    root = build / "records"
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name not in NOT_RECORD_CHAPTERS] \
        if root.is_dir() else []
    committed = Path(committed) if committed is not None else records.committed_dir()
    return folders + ([committed] if committed.is_dir() else [])


def _all_records(build, committed, folders) -> pd.DataFrame:
    """Every record in ``folders``, else in this build's chapter folders and the committed folder."""
    committed = Path(committed) if committed is not None else records.committed_dir()
    folders = records.check_folders(folders) if folders else record_folders(build, committed)
    return records.load(*folders) if folders else pd.DataFrame()


def load(build=None, committed=None, folders=None) -> pd.DataFrame:
    """Every record as one row (see :func:`rosetta.core.records.load`), with where it came from and labels.

    Only the book's two shared models are kept (a chapter's own experiments, such as data-parallel
    LeNet, are compared in that chapter). ``folders`` replaces the default folders (this build's chapters, then ``data/records``).
    Added columns: ``origin`` ("this build" or "committed"), ``chapter`` (the folder the record
    was in), ``name`` (the framework's name) and ``label`` ("<Framework> <variant>"). A record of
    this build shadows a committed one of the same framework, model, variant, device and machine
    (:func:`rosetta.core.records.machine`); runs of two machines are both kept.
    """
    committed = Path(committed) if committed is not None else records.committed_dir()
    df = _all_records(build, committed, folders)
    if df.empty:
        return pd.DataFrame(columns=["framework", "variant", "model", "device", "origin", "chapter", "label", "name"])
    df = df[df["framework"].isin(FRAMEWORKS) & df["model"].isin(MODELS)].copy()   # the two shared models
    df["origin"] = ["committed" if committed.resolve() in Path(s).resolve().parents else "this build"
                    for s in df["source"]]
    df["chapter"] = [Path(s).parent.name for s in df["source"]]
    df["name"] = df["framework"].map(NAMES)
    df["label"] = df["name"] + " " + df["variant"] + np.where(
        (df["chapter"] == df["framework"].map(CHAPTERS)) | (df["origin"] == "committed"), "", " [" + df["chapter"] + "]")
    order = {f: i for i, f in enumerate(FRAMEWORKS)}
    df["_order"] = df["framework"].map(order)
    return df.sort_values(["_order", "model", "variant", "device"]).drop(columns="_order").reset_index(drop=True)


def expected(pages) -> list:
    """The frameworks whose chapter is one of ``pages`` (the book's table of contents)."""
    names = {Path(p).name for p in pages}
    return [f for f in FRAMEWORKS if CHAPTERS[f] in names]


def missing(df, expected=FRAMEWORKS) -> list:
    """The frameworks of ``expected`` that have no record at all."""
    found = set(df["framework"]) if len(df) else set()
    return [f for f in expected if f not in found]


def missing_cells(df) -> list:
    """(framework, model) pairs without a record, for the frameworks that have some."""
    have = set(zip(df["framework"], df["model"])) if len(df) else set()
    return [(f, m) for f in FRAMEWORKS if f not in missing(df) for m in MODELS if (f, m) not in have]


def coverage(df, expected=None) -> pd.DataFrame:
    """Per framework: version, devices, number of variants per model, quick or full runs, where from.

    One row for every framework of ``expected`` (default: every framework with records)."""
    rows = []
    have = set(df["framework"]) if len(df) else set()
    for fw in expected if expected is not None else [f for f in FRAMEWORKS if f in have]:
        part = df[df["framework"] == fw] if len(df) else df
        row = {"framework": NAMES[fw]}
        if part.empty:
            row.update({"version": "no records", "devices": "", "2-layer variants": 0, "LeNet variants": 0,
                        "runs": "", "records from": ""})
        else:
            row.update({
                "version": ", ".join(sorted(set(part["framework_version"]))),
                "devices": ", ".join(sorted(set(part["device"]))),
                "2-layer variants": int((part["model"] == "two_layer").sum()),
                "LeNet variants": int((part["model"] == "lenet").sum()),
                "runs": ", ".join(sorted({"quick" if q else "full" for q in part["params.quick"]})),
                "records from": ", ".join(sorted(set(part["origin"]))),
            })
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- parity

def speed_setting(df) -> pd.Series:
    """Per record, the speed setting its run measures ("" for a main run and a float64 parity run).

    A chapter marks such a run ``extra["speed_setting"]`` (CONTRIBUTING.md). Also a speed setting:
    a run whose matrix products ran below full float32 precision (``extra.matmul_precision`` other
    than "highest": JAX's default, TF32), and a candidate of the chapter's tuning saved before
    chapters marked them (``extra.candidate``, or ``extra.setting`` without ``extra.tuning``, which
    only the main run carries): the JAX records kept from a GPU are such.
    """
    def col(name):
        return df[name] if name in df else pd.Series(None, index=df.index, dtype=object)
    switch = col("extra.speed_setting")
    precision = col("extra.matmul_precision")
    low = precision.notna() & (precision != "highest")
    switch = switch.where(switch.notna() | ~low, "matmul_precision=" + precision.astype(str))
    candidate = col("extra.candidate").notna() | (col("extra.setting").notna() & col("extra.tuning").isna())
    switch = switch.where(switch.notna() | ~candidate, df["variant"] if "variant" in df else "")
    return switch.fillna("").astype(str)


def parity_table(df) -> pd.DataFrame:
    """Largest relative deviation from the NumPy reference, per run; ``device name`` is "cpu" or the
    GPU's name, ``speed setting`` the switch a run measures outside parity (:func:`speed_setting`;
    "" for the others)."""
    cols = ["framework", "model", "variant", "device", "device name", "speed setting", "steps checked",
            "max rel. deviation", "tolerance", "passed"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({
        "framework": df["name"], "model": df["model"].map(MODEL_NAMES), "variant": df["variant"],
        "device": df["device"], "device name": device_of(df), "speed setting": speed_setting(df),
        "steps checked": df["parity.steps"].astype(int),
        "max rel. deviation": df["parity.max_rel_dev"], "tolerance": df["parity.tolerance"],
        "passed": df["parity.passed"].astype(bool)})
    return out[cols].reset_index(drop=True)


def parity_long(df) -> pd.DataFrame:
    """The checked steps of every run in long form: loss, reference and relative deviation per step."""
    if df.empty:
        return pd.DataFrame(columns=["framework", "variant", "model", "device", "label", "step", "loss",
                                     "reference", "rel_dev"])
    long = records.losses_long(df)
    long = long[long["reference"].notna()].copy()
    long["rel_dev"] = (long["loss"] - long["reference"]).abs() / long["reference"].abs()
    long["label"] = long["framework"].map(NAMES) + " " + long["variant"]
    return long.reset_index(drop=True)


# ----------------------------------------------------------------- accuracy

def accuracy_table(df) -> pd.DataFrame:
    """LeNet's final test accuracy per run that measured it, with the training it had."""
    cols = ["framework", "variant", "device", "test accuracy (%)", "epochs", "training images", "test images",
            "quick"]
    part = df[(df["model"] == "lenet") & df["test_accuracy"].notna()] if len(df) else df
    if part.empty:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame({
        "framework": part["name"], "variant": part["variant"], "device": part["device"],
        "test accuracy (%)": 100 * part["test_accuracy"].astype(float), "epochs": part["params.epochs"].astype(int),
        "training images": part["params.train_subset"].astype(int),
        "test images": part["params.test_subset"].astype(int), "quick": part["params.quick"].astype(bool),
    })[cols].reset_index(drop=True)


def accuracy_spread(table) -> dict:
    """Spread of the final accuracy across frameworks, among runs trained alike.

    Runs are grouped by (epochs, training images, test images); the group with the most
    frameworks is compared, each framework by its best variant. Returns the group's settings,
    the best and worst framework and the spread in percentage points (NaN without two frameworks).
    """
    empty = {"frameworks": 0, "spread_pp": float("nan"), "best": "", "worst": "", "best_pct": float("nan"),
             "worst_pct": float("nan"), "epochs": 0, "training_images": 0, "test_images": 0}
    if table.empty:
        return empty
    keys = ["epochs", "training images", "test images"]
    groups = table.groupby(keys)
    settings = max(groups.groups, key=lambda k: (groups.get_group(k)["framework"].nunique(), k))
    best = groups.get_group(settings).groupby("framework")["test accuracy (%)"].max().sort_values()
    return {"frameworks": int(len(best)), "spread_pp": float(best.iloc[-1] - best.iloc[0]) if len(best) > 1
            else float("nan"), "best": best.index[-1], "worst": best.index[0], "best_pct": float(best.iloc[-1]),
            "worst_pct": float(best.iloc[0]), "epochs": int(settings[0]), "training_images": int(settings[1]),
            "test_images": int(settings[2])}


# -------------------------------------------------------------------- speed

def _batch(df) -> pd.Series:
    """Examples per step: LeNet's batch size; the 2-layer net's N rows."""
    return np.where(df["model"] == "lenet", df["params.batch_size"], weights.N).astype(float)


def speed_table(df) -> pd.DataFrame:
    """Median step time with its quartiles, and examples per second, per run."""
    cols = ["framework", "model", "variant", "device", "device name", "label", "median (ms)", "q1 (ms)", "q3 (ms)",
            "timed steps", "examples per step", "examples/s"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    batch = _batch(df)
    out = pd.DataFrame({
        "framework": df["name"], "model": df["model"].map(MODEL_NAMES), "variant": df["variant"],
        "device": df["device"], "device name": df["device_name"], "label": df["label"],
        "median (ms)": 1e3 * df["timing.median_s"],
        "q1 (ms)": 1e3 * df["timing.q1_s"], "q3 (ms)": 1e3 * df["timing.q3_s"],
        "timed steps": df["timing.n"].astype(int), "examples per step": batch.astype(int),
        "examples/s": batch / df["timing.median_s"]})
    return out[cols].reset_index(drop=True)


def level(a, b) -> bool:
    """Whether two rows of :func:`speed_table` are level (:func:`rosetta.core.timing.level`)."""
    return timing.level({"q1_s": a["q1 (ms)"], "q3_s": a["q3 (ms)"]}, {"q1_s": b["q1 (ms)"], "q3_s": b["q3 (ms)"]})


def fastest(speed, model, device) -> dict:
    """The fastest and slowest framework (each by its fastest variant) for one model on one device.

    ``device`` is "cpu" or a GPU's name (``device name``). ``tiers`` groups the ranking into
    frameworks level within their spread (overlapping interquartile ranges); ``differs`` says
    whether the fastest and the slowest are apart by more than their spread.
    """
    part = on_device(speed, device)
    part = part[part["model"] == model].dropna(subset=["median (ms)"])
    if part.empty:
        return {"frameworks": 0, "fastest": "", "fastest_variant": "", "fastest_ms": float("nan"), "slowest": "",
                "slowest_variant": "", "slowest_ms": float("nan"), "ratio": float("nan"), "ranking": [],
                "tiers": [], "differs": False}
    best = part.loc[part.groupby("framework")["median (ms)"].idxmin()].sort_values("median (ms)")
    first, last = best.iloc[0], best.iloc[-1]
    tiers = []
    for _, row in best.iterrows():
        if tiers and level(tiers[-1][-1], row):
            tiers[-1].append(row)
        else:
            tiers.append([row])
    return {"frameworks": int(len(best)), "fastest": first["framework"], "fastest_variant": first["variant"],
            "fastest_ms": float(first["median (ms)"]), "slowest": last["framework"],
            "slowest_variant": last["variant"], "slowest_ms": float(last["median (ms)"]),
            "ratio": float(last["median (ms)"] / first["median (ms)"]), "ranking": list(best["framework"]),
            "tiers": [[r["framework"] for r in t] for t in tiers], "differs": not level(first, last)}


def on_device(table, device) -> pd.DataFrame:
    """The rows of ``table`` measured on ``device``: "cpu", or a GPU by its name (``device name``)."""
    if table.empty:
        return table
    if device == "cpu":
        return table[table["device"] == "cpu"]
    return table[(table["device"] != "cpu") & (table["device name"] == device)]


def device_of(df) -> pd.Series:
    """Per record (a frame of records, with ``device`` and ``device_name``): the device a ranking
    groups it by, "cpu" or the GPU's name."""
    return pd.Series(np.where(df["device"] == "cpu", "cpu", df["device_name"]), index=df.index)


def devices(table) -> list:
    """The devices of ``table``: "cpu" if it has CPU rows, then every GPU by name."""
    if table.empty:
        return []
    gpus = sorted(set(table.loc[table["device"] != "cpu", "device name"]))
    return (["cpu"] if (table["device"] == "cpu").any() else []) + gpus


def tier_words(tiers) -> str:
    """A ranking in words, frameworks level within their spread grouped: 'A, then B and C (level)'."""
    return ", then ".join(words(t) + (" (level within their spread)" if len(t) > 1 else "") for t in tiers) \
        if tiers else "none"


def load_model(model, build=None, committed=None, folders=None) -> pd.DataFrame:
    """The records of one model that is not one of the shared two (``recurrence``, ``matmul``,
    ``lenet_dp``), from the same folders as :func:`load`, with the framework's ``name``."""
    df = _all_records(build, committed, folders)
    if df.empty or "model" not in df:
        return pd.DataFrame(columns=["framework", "variant", "model", "device", "name"])
    df = df[df["model"] == model].copy()
    df["name"] = df["framework"].map(lambda f: NAMES.get(f, f))
    return df.reset_index(drop=True)


NO_YARDSTICK = "no yardstick on this device"


def _machines(df) -> pd.Series:
    """Per record, the machine it ran on (:func:`rosetta.core.records.machine`): the GPU's name for
    a GPU run, the processor's (``cpu``) for a CPU run."""
    if df.empty:
        return pd.Series([], dtype=object, index=df.index)
    gpu = df["accelerator.name"] if "accelerator.name" in df else pd.Series(None, index=df.index, dtype=object)
    gpu = gpu.where(gpu.notna() & (gpu != ""), df["device_name"])
    cpu = df["cpu"] if "cpu" in df else df["device_name"]
    return gpu.where(df["device"] != "cpu", cpu)


def peaks(matmul) -> pd.DataFrame:
    """The yardstick of every device that measured one: the best float32 matrix-multiply rate per
    CPU and thread count, and per GPU (its ``float32`` record, never TF32), from the ``matmul``
    records, with the backend that reached it. ``machine`` names the CPU or the GPU."""
    cols = ["device", "machine", "threads", "peak GFLOP/s", "backend", "n", "date"]
    if matmul.empty:
        return pd.DataFrame(columns=cols)
    part = matmul.assign(machine=_machines(matmul))
    precision = part["extra.precision"] if "extra.precision" in part else pd.Series(None, index=part.index)
    part = part[precision.isna() | (precision == "float32")].copy()      # CPU records are float32
    part["_threads"] = np.where(part["device"] == "cpu", part["threads"].astype(int), 0)
    best = part.loc[part.groupby(["device", "machine", "_threads"])["extra.gflops"].idxmax()]
    out = pd.DataFrame({"device": best["device"], "machine": best["machine"],
                        "threads": [int(t) if d == "cpu" else None for d, t in zip(best["device"], best["threads"])],
                        "peak GFLOP/s": best["extra.gflops"].astype(float), "backend": best["extra.backend"],
                        "n": best["extra.n"].astype(int), "date": best["date"]})[cols]
    return out.sort_values(["device", "machine", "threads"], key=lambda c: c.map(str)).reset_index(drop=True)


def peak_table(df, peak) -> pd.DataFrame:
    """Training FLOP rate of every run and its fraction of the float32 matrix-multiply rate of its own device.

    FLOPs per step come from :mod:`rosetta.core.flops` (LeNet: per image times the batch size).
    ``peak`` is :func:`peaks`; a CPU run is compared with the rate measured on its CPU with its
    thread count, a GPU run with the rate measured on its GPU. A run with no such yardstick gets
    NaN, ``same machine`` False and "no yardstick on this device" (never another device's rate).
    """
    cols = ["framework", "model", "variant", "device", "device name", "label", "GFLOP/s", "yardstick (GFLOP/s)",
            "fraction of peak (%)", "yardstick", "same machine"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    per_step = np.where(df["model"] == "lenet", flops.training_flops() * df["params.batch_size"].astype(float),
                        float(flops.training_flops(flops.two_layer_layers())))
    rate = per_step / df["timing.median_s"] / 1e9
    yardstick = {(r["device"], r["machine"], r["threads"] if r["device"] == "cpu" else None): r
                 for _, r in peak.iterrows()}
    keys = [(d, m, int(t) if d == "cpu" else None) for d, m, t in zip(df["device"], _machines(df), df["threads"])]
    found = [yardstick.get(k) for k in keys]
    machine = pd.Series([np.nan if y is None else float(y["peak GFLOP/s"]) for y in found], index=df.index,
                        dtype=float)
    said = [NO_YARDSTICK if y is None else
            f"float32 matrix product on {y['machine']}" + (f", {y['threads']} threads" if y["device"] == "cpu" else "")
            for y in found]
    out = pd.DataFrame({"framework": df["name"], "model": df["model"].map(MODEL_NAMES),
                        "variant": df["variant"], "device": df["device"], "device name": df["device_name"],
                        "label": df["label"], "GFLOP/s": rate, "yardstick (GFLOP/s)": machine,
                        "fraction of peak (%)": 100 * rate / machine, "yardstick": said,
                        "same machine": machine.notna()})
    return out[cols].reset_index(drop=True)


# ------------------------------------------------------------ data-parallel

DP_MODEL = "lenet_dp"                  # the Scaling out chapter's records
DP_ENGINES = {                         # (framework, variant) -> the engine that ran it
    ("pytorch", "ddp"): "torch.distributed DistributedDataParallel (gloo)",
    ("tensorflow", "multi_worker"): "tf.distribute.MultiWorkerMirroredStrategy",
    ("tensorflow", "mirrored"): "tf.distribute.MirroredStrategy",
    ("mxnet", "dist_sync"): "kvstore dist_sync (ps-lite)",
    ("mxnet", "kvstore_device"): "kvstore device",
}
# the scaling chapter's first-steps equivalence check: the deviation over its first ``equivalence_steps``
FIRST_STEPS, FIRST_STEPS_N = "extra.max_rel_dev_vs_single_first", "extra.equivalence_steps"
DP_SINGLE = "single_all"               # the one-process run on all the cores, the speed baseline


def load_data_parallel(build=None, committed=None, folders=None) -> pd.DataFrame:
    """The data-parallel LeNet records (model ``lenet_dp``) of the same folders as :func:`load`."""
    df = load_model(DP_MODEL, build, committed, folders)
    return df[df["framework"].isin(FRAMEWORKS)].reset_index(drop=True)


def data_parallel_table(dp) -> pd.DataFrame:
    """One row per data-parallel engine run: does it compute what one process computes, and how fast.

    ``max rel. dev. from 1 process`` is the largest relative deviation of its per-step losses from
    the single-process run of the same framework that the record names as its baseline; the step
    time is compared with that framework's one-process run on all the cores (``single_all``).
    """
    has_first = len(dp) and FIRST_STEPS in dp and FIRST_STEPS_N in dp and dp[FIRST_STEPS_N].notna().any()
    first_col = f"max rel. dev., first {int(dp[FIRST_STEPS_N].max())} steps" if has_first else None
    cols = ["framework", "engine", "variant", "device", "processes", "replicas", "steps",
            "max rel. dev. from 1 process", *([first_col] if first_col else []), "median step (ms)",
            "1 process (ms)", "step / 1 process", "gradient exchange (ms)"]
    if dp.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for _, r in dp.iterrows():
        engine = DP_ENGINES.get((r["framework"], r["variant"]))
        if engine is None:
            continue
        single = dp[(dp["framework"] == r["framework"]) & (dp["variant"] == DP_SINGLE) & (dp["device"] == r["device"])]
        single_ms = 1e3 * float(single["timing.median_s"].iloc[0]) if len(single) else np.nan
        exchange = r.get("extra.exchange")
        grad = exchange.get(str(weights.lenet_parameter_count())) if isinstance(exchange, dict) else None
        rows.append({"framework": r["name"], "engine": engine, "variant": r["variant"], "device": r["device"],
                     "processes": int(r["extra.processes"]), "replicas": int(r["extra.replicas"]),
                     "steps": len(r["losses"]), "max rel. dev. from 1 process": float(r["extra.max_rel_dev_vs_single"]),
                     **({first_col: float(r[FIRST_STEPS])} if first_col else {}),
                     "median step (ms)": 1e3 * float(r["timing.median_s"]), "1 process (ms)": single_ms,
                     "step / 1 process": 1e3 * float(r["timing.median_s"]) / single_ms,
                     "gradient exchange (ms)": 1e3 * grad["median_s"] if grad else np.nan})
    out = pd.DataFrame(rows, columns=cols)
    order = {NAMES[f]: i for i, f in enumerate(FRAMEWORKS)}
    return out.sort_values(["framework", "processes"], key=lambda s: s.map(order) if s.name == "framework" else -s) \
        .reset_index(drop=True)


# ------------------------------------------------------------ one-off costs

def one_off_cost(entries) -> tuple:
    """The one-off cost a new user pays for a run, from its typed ``one_off`` list: (seconds, what).

    Every entry counts (trace, hybridize, export, compile) except a warm compile when the same
    record also holds a cold one: a cold compile (an empty compile cache) is what the first run
    on a machine pays, and the warm one is the same work repeated, not added.
    """
    entries = list(entries) if isinstance(entries, (list, tuple)) else []
    if any(e["kind"] == "compile_cold" for e in entries):
        entries = [e for e in entries if e["kind"] != "compile_warm"]
    if not entries:
        return float("nan"), ""
    return float(sum(e["seconds"] for e in entries)), ", ".join(records.one_off_words(e) for e in entries)


def one_off_table(df) -> pd.DataFrame:
    """Every typed one-off cost of every record, one row each."""
    cols = ["framework", "model", "variant", "device", "name", "kind", "seconds"]
    rows = [{"framework": r["framework"], "model": r["model"], "variant": r["variant"], "device": r["device"], **e}
            for _, r in df.iterrows() for e in (r.get("one_off") if isinstance(r.get("one_off"), list) else [])] \
        if len(df) and "one_off" in df else []
    return pd.DataFrame(rows, columns=cols)


def warmup_table(df) -> pd.DataFrame:
    """First step, the warm-up's cost above steady state, and the run's one-off cost (:func:`one_off_cost`).

    The warm-up excess is the time of the warm-up steps minus as many median steps: what the
    first steps paid beyond a normal step (allocation, kernel choice, tracing, compiling).
    ``one-off + first steps (s)`` is what the run paid before its steps ran at full speed.
    """
    cols = ["framework", "model", "variant", "device", "device name", "label", "first step (ms)",
            "median step (ms)", "warm-up excess (ms)", "first / median", "one-off (s)", "one-off is",
            "one-off + first steps (s)"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    median = df["timing.median_s"]
    excess = df["timing.warmup_s"] - df["timing.warmup_steps"] * median
    costs = [one_off_cost(v) for v in (df["one_off"] if "one_off" in df else [[]] * len(df))]
    one_off = pd.Series([c[0] for c in costs], index=df.index, dtype=float)
    out = pd.DataFrame({
        "framework": df["name"], "model": df["model"].map(MODEL_NAMES), "variant": df["variant"],
        "device": df["device"], "device name": df["device_name"], "label": df["label"],
        "first step (ms)": 1e3 * df["timing.first_step_s"],
        "median step (ms)": 1e3 * median, "warm-up excess (ms)": 1e3 * excess.clip(lower=0),
        "first / median": df["timing.first_step_s"] / median, "one-off (s)": one_off,
        "one-off is": [c[1] for c in costs], "one-off + first steps (s)": one_off + df["timing.warmup_s"]})
    return out[cols].reset_index(drop=True)


# ------------------------------------------------------------------- memory

def memory_table(df) -> pd.DataFrame:
    """Peak memory of every run: the process's resident-set increase and peak, and GPU peak where measured."""
    cols = ["framework", "model", "variant", "device", "device name", "label", "RSS increase (MiB)",
            "peak RSS (MiB)", "device peak (MiB)"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    mib = lambda s: pd.to_numeric(s, errors="coerce") / MIB
    out = pd.DataFrame({
        "framework": df["name"], "model": df["model"].map(MODEL_NAMES), "variant": df["variant"],
        "device": df["device"], "device name": df["device_name"], "label": df["label"],
        "RSS increase (MiB)": mib(df["memory.rss_increase_bytes"]),
        "peak RSS (MiB)": mib(df["memory.peak_rss_bytes"]), "device peak (MiB)": mib(df["memory.device_peak_bytes"])})
    return out[cols].reset_index(drop=True)


def ranking(table, value: str, model, device, smallest=True) -> list:
    """Framework names ordered by their best (smallest or largest) ``value`` for one model on one device."""
    part = on_device(table, device)
    part = part[part["model"] == model].dropna(subset=[value])
    if part.empty:
        return []
    best = part.groupby("framework")[value].agg("min" if smallest else "max")
    return list(best.sort_values(ascending=smallest).index)


def memory_value(device) -> str:
    """The memory column a device is ranked by: the resident set on the CPU, the allocator's peak on a GPU."""
    return "RSS increase (MiB)" if device == "cpu" else "device peak (MiB)"


def words(names) -> str:
    """'A', 'A and B', 'A, B and C' (or 'none')."""
    names = list(names)
    if not names:
        return "none"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ------------------------------------------------------------- packages

def package_facts(dist: str) -> dict:
    """What an installed package's own metadata says: version, license, Python, wheel tag, languages."""
    from importlib import metadata
    try:
        meta = metadata.metadata(dist)
    except metadata.PackageNotFoundError:
        return {"package": dist, "version": "not installed"}
    classifiers = meta.get_all("Classifier") or []
    licence = meta.get("License-Expression") or meta.get("License") or ""
    if not licence or len(licence) > 80:
        licence = "; ".join(c.split(" :: ")[-1] for c in classifiers if c.startswith("License ::")) or licence[:80]
    wheel = metadata.distribution(dist).read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    langs = sorted({c.split(" :: ")[1] for c in classifiers if c.startswith("Programming Language ::")})
    pythons = [c.split(" :: ")[-1] for c in classifiers
               if c.startswith("Programming Language :: Python :: 3.")]
    systems = sorted({c.split(" :: ")[1] for c in classifiers if c.startswith("Operating System ::")})
    return {"package": dist, "version": meta["Version"], "license": licence,
            "requires-python": meta.get("Requires-Python") or "not stated",
            "python classifiers": ", ".join(pythons) or "none", "wheel tag": ", ".join(tags),
            "languages (classifiers)": ", ".join(langs), "operating systems (classifiers)": ", ".join(systems)}


def cuda_build(dist: str) -> str:
    """Whether an installed package is a CUDA build, from its metadata alone (nothing is imported):
    a ``+cuXXX`` local version, a ``-cuXXX`` distribution name or an unconditional requirement on
    NVIDIA's wheels (an optional extra, such as TensorFlow's ``and-cuda``, is not installed by default)."""
    from importlib import metadata
    try:
        version, requires = metadata.version(dist), metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return "not installed"
    import re
    if "+cu" in version or re.search(r"-cu\d+", dist) or any(
            r.lower().startswith("nvidia-") and "extra ==" not in r for r in requires):
        return "CUDA build"
    return "CPU only"
