"""The comparison chapter's verdicts, computed from records: which runs are compared, the 2016
claims, the control-flow capabilities and the sentences "what this build says".

Every function takes the tables of :mod:`rosetta.compare.tables` (or the records themselves)
and returns text or a table; nothing here imports a framework or measures. Rules:

* like with like (:func:`comparable`): rankings use only the runs of one model in float32 with
  the training setting most frameworks share; float64 parity runs, speed-switch runs and
  variants trained otherwise are left out, and :func:`describe` says which runs a table holds;
* every speed verdict takes its device explicitly, and a difference inside the measured spread
  (overlapping interquartile ranges) is no difference (:func:`rosetta.compare.tables.fastest`);
* a 2016 GPU claim is "untested" on a GPU unless every framework it ranks has records there;
  memory is ranked by memory (the resident set on the CPU, the allocator's peak on a GPU);
* the "compile times are long" claim compares the cold cost, an empty compile cache, in every build.
"""
import numpy as np
import pandas as pd

from rosetta.compare import tables
from rosetta.compare.tables import MODEL_NAMES, NAMES, words

CLAIM_FRAMEWORKS = ("theano", "tensorflow", "mxnet")     # the three the 2016 comparison rated
CLAIM_ORDER = ["MXNet", "Theano", "TensorFlow"]           # its speed and memory ranking, best first
COMPILE_FACTOR = 10                  # "long": Theano's cold compile over 10 times the others' one-off cost
TWICE_SLOW = 1.5                     # "about twice as slow": at least 1.5 times the others' mean
RECURRENCE = "recurrence"            # the control-flow records' model
MATMUL = "matmul"                    # the matrix-multiply yardstick's records' model
SETTING = ("params.epochs", "params.batch_size", "params.train_subset")


def sci(value) -> str:
    """A number as the reader should see it: small ones in scientific notation, never rounded to 0."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e4:               # counts and large times: all their digits, no exponent
        return f"{value:.0f}"
    return f"{value:.2e}" if abs(value) < 1e-2 else f"{value:.4g}"


# ----------------------------------------------------------- like with like

def _column(df, name, default):
    return df[name] if name in df else pd.Series(default, index=df.index)


def kind_of_run(df) -> pd.Series:
    """Per record: "float64 parity run", "speed switch" or "main". A speed switch is a run that
    :func:`rosetta.compare.tables.speed_setting` names: marked so by its chapter, a candidate of its
    chapter's tuning, or a run whose matrix products ran below full float32 precision (JAX's
    default, TF32 on a recent GPU), whatever its chapter called it."""
    dtype = _column(df, "extra.dtype", None).fillna("float32")
    switch = tables.speed_setting(df) != ""
    return pd.Series(np.where(dtype == "float64", "float64 parity run", np.where(switch, "speed switch", "main")),
                     index=df.index)


def comparable(df, model) -> tuple:
    """The runs of ``model`` that are compared with each other, and their shared setting per device.

    Main runs only (float32, no speed switch); on each device (the CPU, each GPU by name) the
    training setting (epochs, batch size, training images) that the most frameworks share there,
    the longer training on a tie: a quick CPU build and a full GPU run are each compared on their
    own device. Returns (records, {device: setting}), the setting dict empty where no run qualifies.
    """
    part = df[(df["model"] == model)] if len(df) else df
    if part.empty:
        return part, {}
    part = part[kind_of_run(part) == "main"]
    if part.empty:
        return part, {}
    chosen, settings = [], {}
    for device, runs in part.groupby(tables.device_of(part), sort=False):
        keys = runs[list(SETTING)].astype(float).apply(tuple, axis=1)
        counts = runs.groupby(keys)["framework"].nunique()
        setting = max(counts.index, key=lambda k: (counts[k], k))
        chosen.append(runs[keys == setting])
        settings[device] = dict(zip(("epochs", "batch_size", "train_subset"), (int(v) for v in setting)))
    order = sorted(settings, key=lambda d: (d != "cpu", d))
    return pd.concat(chosen), {d: settings[d] for d in order}


def comparable_runs(df) -> tuple:
    """:func:`comparable` for both shared models: (records, {model: {device: setting}})."""
    parts, settings = [], {}
    for model in tables.MODELS:
        part, setting = comparable(df, model)
        if setting:
            parts.append(part)
            settings[model] = setting
    return (pd.concat(parts) if parts else df.iloc[:0]), settings


def describe(df, settings) -> str:
    """Which runs a ranking holds, and which it leaves out, in words."""
    if not settings:
        return "No run can be compared: no float32 main run of either model."
    held = []
    for model, per_device in settings.items():
        if model != "lenet":
            held.append(f"{MODEL_NAMES[model]}: float32 main runs, the shared 2-layer problem")
            continue
        said = [f"{s['epochs']} {'epoch' if s['epochs'] == 1 else 'epochs'} on {s['train_subset']:,} images in "
                f"batches of {s['batch_size']}" + ("" if len(per_device) == 1 else
                                                   f" on {'the CPU' if d == 'cpu' else d}")
                for d, s in per_device.items()]
        held.append(f"{MODEL_NAMES[model]}: float32 main runs, " + "; ".join(said))
    kinds = kind_of_run(df) if len(df) else pd.Series(dtype=object)
    plural = {"float64 parity run": "float64 parity runs", "speed switch": "speed-switch runs"}
    left = [f"{int((kinds == k).sum())} {k if (kinds == k).sum() == 1 else plural[k]}"
            for k in plural if (kinds == k).any()]
    main, _ = comparable_runs(df)
    other = int((kinds == "main").sum()) - len(main)
    if other:
        left.append(f"{other} main {'run' if other == 1 else 'runs'} trained otherwise")
    return "Compared: " + "; ".join(held) + "." + (" Left out: " + words(left) + "." if left else "")


# ------------------------------------------------------------- one-off cost

def compile_claim(one_off) -> dict:
    """The 2016 "Theano's compile times are long", on the cold cost of the recurrence.

    ``one_off`` is :func:`rosetta.compare.tables.one_off_table` of every record. Theano's cost is
    its ``compile_cold`` entry (an empty compile cache, what every new machine pays), the others'
    their trace or hybridize of the same loop. Holds if Theano's is over :data:`COMPILE_FACTOR`
    times the largest other.
    """
    loop = one_off[one_off["model"] == RECURRENCE] if len(one_off) else one_off
    cold = loop[(loop["framework"] == "theano") & (loop["kind"] == "compile_cold")] if len(loop) else loop
    others = loop[loop["framework"].isin(["tensorflow", "mxnet"]) & loop["kind"].isin(["trace", "hybridize"])] \
        if len(loop) else loop
    if cold.empty or others.empty:
        what = "Theano's cold compile" if cold.empty else "TensorFlow's or MXNet's loop"
        return {"text": f"Not measured: no record of {what} in this build.", "verdict": "not measured",
                "theano_s": float(cold["seconds"].max()) if len(cold) else float("nan"), "others_s": float("nan")}
    theano_s, others_s = float(cold["seconds"].max()), float(others["seconds"].max())
    parts = words(f"{NAMES[r.framework]} {r.kind.replace('hybridize', 'hybridized').replace('trace', 'traced')} "
                  f"it in {r.seconds:.2g} s" for r in others.itertuples())
    warm = one_off[(one_off["framework"] == "theano") & (one_off["model"] == "lenet")
                   & (one_off["kind"] == "compile_warm")]
    warm_text = (f" Once its C modules are cached, a Theano compile costs far less (down to {warm['seconds'].min():.2g} s "
                 f"for LeNet's training step), a cost this verdict leaves out." if len(warm) else "")
    return {"text": f"Theano took {theano_s:.1f} s to compile the recurrence from an empty compile cache (the cost "
                    f"a new machine pays); {parts}.{warm_text}",
            "verdict": "holds" if theano_s > COMPILE_FACTOR * others_s else "does not hold",
            "theano_s": theano_s, "others_s": others_s}


# -------------------------------------------------------------- GPU claims

def order_claim(table, value, claimed, what, smallest=True) -> tuple:
    """A 2016 ranking claim about GPUs: (text, verdict), device by device.

    ``table`` holds comparable runs with a ``device`` and ``device name`` column. On each GPU the
    claim is checked only if every framework it ranks has records there; else it is "untested"
    there, and with no GPU at all the CPU's order is given for what it is.
    """
    claimed_names = [NAMES[f] for f in CLAIM_FRAMEWORKS]
    cpu = [n for n in tables.ranking(table, value if value else tables.memory_value("cpu"), "LeNet", "cpu", smallest)
           if n in claimed_names] if len(table) else []
    gpus = [d for d in tables.devices(table) if d != "cpu"]
    cpu_text = (f"On this build's CPU the order ({what}) is {words(cpu)}." if cpu else
                f"On the CPU the order ({what}) is unknown: records are missing.")
    if not gpus:
        return "No GPU record exists, so the GPU claim cannot be checked. " + cpu_text, "untested on GPU"
    texts, verdicts = [], []
    for gpu in gpus:
        col = value if value else tables.memory_value(gpu)
        order = [n for n in tables.ranking(table, col, "LeNet", gpu, smallest) if n in claimed_names]
        lacking = [n for n in claimed_names if n not in order]
        if lacking:
            texts.append(f"On {gpu}, {words(lacking)} {'has' if len(lacking) == 1 else 'have'} no record, so the "
                         f"claim is not checked there.")
            verdicts.append(f"untested on {gpu}")
        else:
            texts.append(f"On {gpu} the order ({what}) is {words(order)}.")
            verdicts.append(("holds" if order == claimed else "does not hold") + f" on {gpu}")
    return " ".join(texts) + " " + cpu_text, "; ".join(verdicts)


def twice_slow_claim(speed) -> tuple:
    """"TensorFlow about twice as slow as cuDNN-backed Theano and MXNet": (text, verdict)."""
    def ratio(device):
        best = {n: tables.fastest(speed[speed["framework"] == n], "LeNet", device)["fastest_ms"]
                for n in ("TensorFlow", "Theano", "MXNet")}
        others = [v for k, v in best.items() if k != "TensorFlow" and np.isfinite(v)]
        return best["TensorFlow"] / np.mean(others) if others and np.isfinite(best["TensorFlow"]) else float("nan"), best
    cpu_ratio, _ = ratio("cpu")
    cpu_text = (f"On this build's CPU, TensorFlow's fastest LeNet step takes {cpu_ratio:.2f} times the mean of "
                f"Theano's and MXNet's fastest." if np.isfinite(cpu_ratio) else
                "The CPU ratio needs TensorFlow's and Theano's or MXNet's records.")
    gpus = [d for d in tables.devices(speed) if d != "cpu"]
    if not gpus:
        return "No GPU record, so cuDNN is not involved. " + cpu_text, "untested on GPU"
    texts, verdicts = [], []
    for gpu in gpus:
        r, best = ratio(gpu)
        if not all(np.isfinite(v) for v in best.values()):
            texts.append(f"On {gpu} not every one of the three has records.")
            verdicts.append(f"untested on {gpu}")
        else:
            texts.append(f"On {gpu}, TensorFlow takes {r:.2f} times the others' mean.")
            verdicts.append(("holds" if r >= TWICE_SLOW else "does not hold") + f" on {gpu}")
    return " ".join(texts) + " " + cpu_text, "; ".join(verdicts)


# ------------------------------------------------------------ control flow

def loop_checks(loops) -> pd.DataFrame:
    """Every check of every recurrence record (``extra.checks``), one row each."""
    rows = [dict(c) for _, r in loops.iterrows() for c in (r.get("extra.checks") or [])] if len(loops) else []
    cols = ["framework", "variant", "construct", "T", "steps", "reference steps", "loss deviation",
            "gradient deviation", "agrees"]
    return pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)


def control_flow_claim(checks) -> tuple:
    """"Control flow: Theano yes, TensorFlow experimental, MXNet no": (text, verdict), from the checks."""
    def ok(f, construct, variants=("graph",)):
        part = checks[(checks["framework"] == f) & (checks["construct"] == construct)
                      & checks["variant"].isin(variants)] if len(checks) else checks
        return bool(len(part)) and bool(part["agrees"].all())
    plain = {f: ok(f, "plain loop") for f in CLAIM_FRAMEWORKS}
    early = {f: ok(f, "early exit") for f in CLAIM_FRAMEWORKS}
    ran = [f for f in CLAIM_FRAMEWORKS if len(checks) and (checks["framework"] == f).any()]
    if not ran:
        return "No control-flow record in this build.", "not measured"
    text = ("The recurrence ran as a graph loop with the right gradient in " + words(NAMES[f] for f in ran if plain[f])
            + "; its data-dependent early exit, with the right gradient, in "
            + words(NAMES[f] for f in ran if early[f]) + ". MXNet's contrib.foreach/while_loop/cond exist since "
            "MXNet 1.3 (https://mxnet.apache.org/versions/1.3.1/tutorials/control_flow/ControlFlowTutorial.html).")
    if not all(f in ran for f in CLAIM_FRAMEWORKS):
        return text, "partly checked: " + words(NAMES[f] for f in CLAIM_FRAMEWORKS if f not in ran) + " did not run"
    grown = [NAMES[f] for f in ("tensorflow", "mxnet") if plain[f]]
    verdict = ("outdated for " + words(grown) if grown else "holds")
    if not early["mxnet"] and plain["mxnet"]:
        verdict += " (MXNet's hybridized early exit still gets its gradient wrong)"
    return text, verdict


def capability(checks, loops, framework, what) -> str:
    """One cell of the capability table, from the framework's recurrence record."""
    rec = loops[loops["framework"] == framework] if len(loops) else loops
    if rec.empty:
        return "not run"
    rec = rec.iloc[0]
    part = checks[checks["framework"] == framework]
    lengths = sorted(set(int(t) for t in part["T"]))
    if what == "length":
        return f"yes: lengths {words(str(t) for t in lengths)} in one " + \
            ("function" if framework in ("pytorch",) else "graph")
    if what == "exit":
        e = part[part["construct"] == "early exit"]
        main = e[e["variant"].isin(["graph", "eager"])]
        if len(main) and main["agrees"].all():
            return "yes, with its gradient (checked)"
        other = e[~e["variant"].isin(["graph", "eager"])]
        forward = len(main) and (main["steps"] == main["reference steps"]).all() and \
            (main["loss deviation"] <= rec["parity.tolerance"]).all()
        return ("stops and computes the loss right, but the gradient is wrong in graph mode (checked)"
                if forward else "no (checked)") + \
            (f"; right when run {words(sorted(set(other['variant'])))}" if len(other) and other["agrees"].all() else "")
    if what == "python":
        calls, steps = int(rec["extra.body_calls"]), int(sum(lengths))
        return (f"at every step ({calls} times in {steps} steps)" if calls >= steps else
                f"only while the graph is built ({calls} times in {steps} steps)")
    raise ValueError(f"what must be 'length', 'exit' or 'python', got {what!r}")


def disagreements(checks, known=None) -> str:
    """The checks that disagree with the NumPy reference, in words (empty if none)."""
    bad = checks[~checks["agrees"].astype(bool)] if len(checks) else checks
    if bad.empty:
        return ""
    known = known or {}
    parts = []
    for (fw, variant, construct), p in bad.groupby(["framework", "variant", "construct"]):
        n = len(checks[(checks["framework"] == fw) & (checks["variant"] == variant) & (checks["construct"] == construct)])
        wrong = "the gradient" if (p["steps"] == p["reference steps"]).all() else "the result"
        parts.append(f"{NAMES[fw]}'s {construct} ({variant}) gets {wrong} wrong in {len(p)} of {n} runs, by up to "
                     f"{p['gradient deviation'].max():.2g} (relative)" + (f", {known[fw]}" if fw in known else ""))
    return "**Disagreements:** " + "; ".join(parts) + "."


# ---------------------------------------------------------------- parity

def parity_causes(parity) -> list:
    """The runs outside their tolerance, grouped by framework, model, device and the cause their own
    records support, as words.

    A float32 run is said to have left the reference by a rounding-level decision only if a
    float64 run of the same framework and model on the same device stayed within its tolerance
    (the program is the reference's); a speed setting (TF32, mixed precision, another input
    pipeline...) is measured outside the parity check by design; otherwise the records do not say why.
    """
    if parity.empty:
        return []
    device = parity["device name"] if "device name" in parity else parity["device"]
    switch = parity["speed setting"] if "speed setting" in parity else pd.Series("", index=parity.index)
    f64 = parity[parity["variant"].str.contains("float64")]
    groups = {}
    for i, r in parity[~parity["passed"]].iterrows():
        twin = f64[(f64["framework"] == r["framework"]) & (f64["model"] == r["model"])
                   & (device[f64.index] == device[i])]
        held = f"a float64 run on the same device stays within {twin['max rel. deviation'].max():.1e}" \
            if len(twin) and twin["passed"].all() else ""
        if "float64" in r["variant"]:
            cause = ("float64", "its program differs from the reference")
        elif switch[i]:
            cause = ("switch", "measured outside the parity check by design" + (f" ({held})" if held else ""))
        elif held:
            cause = ("rounding", f"{held}, so the program is the reference's and float32 rounding sent a "
                                 "decision another way")
        else:
            cause = ("unknown", "no float64 run of it passed on this device, so the records cannot tell rounding "
                                "from a different program")
        where = r["model"] + ("" if device[i] == "cpu" else f" on {device[i]}")
        groups.setdefault((r["framework"], where, cause), []).append((r["variant"], r["max rel. deviation"]))
    out = []
    for (framework, where, (kind, why)), runs in groups.items():
        many = len(runs) > 1
        worst = max(d for _, d in runs)
        what = {"float64": "float64 runs outside their tolerance, so" if many else
                "a float64 run outside its tolerance, so",
                "switch": "speed settings," if many else "a speed setting,"}.get(kind, "")
        out.append(f"{framework} {words(v for v, _ in runs)} ({where}, {'up to ' if many else ''}{worst:.1e}): "
                   + (f"{what} {why}" if what else why))
    return out


def agreement_sentence(parity) -> str:
    """What the parity table supports: agreement by rounding, or which runs left the reference."""
    if parity.empty:
        return "No run was checked against the reference."
    if parity["passed"].all():
        return (f"Every run stays within its tolerance, the largest deviation being "
                f"{parity['max rel. deviation'].max():.1e}: the frameworks differ from each other by float32 "
                "rounding and the order of summations, not by what they compute.")
    return (f"{int(parity['passed'].sum())} of {len(parity)} runs stay within their tolerance; outside it: "
            + "; ".join(parity_causes(parity)) + ".")


# ------------------------------------------------------- distributed claim

def distributed_claim(dp) -> tuple:
    """"Multi-GPU and distributed training": (text, verdict), quoting the scaling chapter's first-steps check.

    ``dp`` is :func:`rosetta.compare.tables.data_parallel_table`; its deviation over all steps
    measures drift, not equality, and is not quoted here.
    """
    first_steps_column = next((c for c in dp.columns if c.startswith("max rel. dev., first ")), "")
    if dp.empty:
        return "No data-parallel record in this build: the Scaling out chapter did not run or failed.", "not measured"
    multi = dp[dp["processes"] > 1]
    steps = first_steps_column.rsplit(" ", 2)[-2] if first_steps_column else None
    dev = float(multi[first_steps_column].max()) if steps else float("nan")
    check = (f"with losses equal to one process's within {dev:.1e} (relative) over the first {steps} steps, where "
             "both take the same steps; later, float32 rounding makes any two runs drift apart"
             if np.isfinite(dev) else "without a first-steps equivalence check in its records")
    text = (f"Measured in the Scaling out chapter on this build's CPU: "
            f"{words(f'{r.framework} ({r.engine})' for r in multi.itertuples())} trained LeNet in "
            f"{words(sorted(set(str(p) for p in multi['processes'])))} processes, {check}. Theano-PyMC has no "
            "data-parallel engine. Several GPUs: not available here.")
    have = set(multi["framework"])
    verdict = []
    if "TensorFlow" in have:
        verdict.append("outdated for TensorFlow (data-parallel across processes today)")
    if "MXNet" in have:
        verdict.append("holds for MXNet (distributed then and now)")
    return text, "; ".join(verdict) + " (measured on the CPU; several GPUs not available here)" if verdict \
        else "partly checked"


# ---------------------------------------------------------------- summary

def conclusions(parity, speed, lenet_fraction, compile_row, checks, missing, device="cpu", general=True) -> list:
    """The bullets "what this build says" of one device, each stated only as far as the data supports
    it; ``general`` adds those that hold for the whole build (parity, the compile claim, the loop
    checks, what is missing): a chapter that calls this once per device says them once."""
    lines = []
    if general and len(parity):
        lines.append(agreement_sentence(parity))
    best = tables.fastest(speed, "LeNet", device)
    where = "this CPU" if device == "cpu" else device
    if best["frameworks"] > 1 and best["differs"]:
        lines.append(f"On {where}, {best['fastest']} trains LeNet fastest ({best['fastest_ms']:.1f} ms per step, "
                     f"variant {best['fastest_variant']}) and {best['slowest']} slowest "
                     f"({best['slowest_ms']:.1f} ms, {best['ratio']:.1f} times as long); in order: "
                     f"{tables.tier_words(best['tiers'])}.")
    elif best["frameworks"] > 1:
        lines.append(f"On {where}, the frameworks train LeNet at the same speed within their measured spread "
                     f"({best['fastest_ms']:.1f} to {best['slowest_ms']:.1f} ms per step).")
    if len(lenet_fraction) and "device name" in lenet_fraction:        # the device's own yardstick only
        lenet_fraction = tables.on_device(lenet_fraction, device).dropna(subset=["fraction of peak (%)"])
    if len(lenet_fraction):
        med = float(lenet_fraction["fraction of peak (%)"].median())
        lines.append(f"The median LeNet run on {where} uses {med:.0f}% of the float32 matrix-multiply rate measured "
                     f"there, the best {lenet_fraction['fraction of peak (%)'].max():.0f}%"
                     + (": for most runs, overheads weigh more than arithmetic." if med < 50 else "."))
    if not general:
        return lines
    if np.isfinite(compile_row["theano_s"]) and np.isfinite(compile_row["others_s"]):
        lines.append(f"Compiling the control-flow loop from an empty cache took Theano {compile_row['theano_s']:.1f} s, "
                     f"{compile_row['theano_s'] / compile_row['others_s']:.0f} times the longest trace or hybridize "
                     f"of the other graph frameworks ({compile_row['others_s']:.2g} s).")
    bad = checks[~checks["agrees"].astype(bool)] if len(checks) else checks
    if len(bad):
        lines.append("Not every loop construct differentiates correctly: " +
                     words(sorted({f"{NAMES[f]} ({v} {c})" for f, v, c in
                                   zip(bad["framework"], bad["variant"], bad["construct"])})) +
                     " disagreed with the reference (control-flow section).")
    if missing:
        lines.append(f"Missing from this build: {words(NAMES[f] for f in missing)}.")
    return lines


# ------------------------------------------------------------ speed words

def fraction_sentence(fraction, device) -> str:
    """What :func:`rosetta.compare.tables.peak_table` says of one device's LeNet runs, each set against
    the float32 matrix-multiply rate measured on that device; "no yardstick on this device" where
    none was measured there (another device's rate is never used)."""
    part = tables.on_device(fraction, device) if len(fraction) else fraction
    where = "the CPU" if device == "cpu" else device
    lenet = part[part["model"] == "LeNet"].dropna(subset=["fraction of peak (%)"]) if len(part) else part
    without = int((~part["same machine"].astype(bool)).sum()) if len(part) else 0
    if lenet.empty:
        return (f"On {where}, no LeNet run has a fraction of peak: "
                + (f"{tables.NO_YARDSTICK} (no float32 matrix product was measured there)." if without else
                   "no comparable LeNet run."))
    top = lenet.sort_values("fraction of peak (%)").iloc[-1]
    med = float(lenet["fraction of peak (%)"].median())
    over = int((part["fraction of peak (%)"] > 100).sum())
    return (f"On {where}, the best LeNet run, {top['label']}, computes {top['GFLOP/s']:,.1f} GFLOP/s, "
            f"{top['fraction of peak (%)']:.0f}% of the float32 matrix-multiply rate measured there "
            f"({top['yardstick (GFLOP/s)']:,.1f} GFLOP/s); the median LeNet run reaches {med:.0f}%. "
            + ("Most runs leave the arithmetic units idle for much of a step: with a network this small and small "
               "batches, converting layouts, launching operators, the optimizer's updates and Python itself take "
               "their share." if med < 50 else "The typical run keeps the arithmetic units busy for most of a step.")
            + (f" {over} {'run exceeds' if over == 1 else 'runs exceed'} 100%: the rate was measured at another "
               "moment than those runs, on a machine whose load varies, so the yardstick itself moved; read such "
               "bars as \"about the peak\"." if over else "")
            + (f" {without} {'run' if without == 1 else 'runs'} ran on another processor or with another thread "
               f"count than any measured rate and {'is' if without == 1 else 'are'} left without a fraction."
               if without else ""))


def speed_sentence(speed, model, device) -> str:
    """The ranking of one model on one device, in words that follow the measured spread."""
    name = MODEL_NAMES.get(model, model)
    best = tables.fastest(speed, name, device)
    where = f"{name} on " + ("the CPU" if device == "cpu" else device)
    if best["frameworks"] == 0:
        return f"{where}: no comparable run."
    if best["frameworks"] == 1:
        return (f"{where}: only {best['fastest']} has a comparable run "
                f"({best['fastest_ms']:.3g} ms per step, {best['fastest_variant']}).")
    if not best["differs"]:
        return (f"{where}: the frameworks are level within their measured spread, from {best['fastest_ms']:.3g} "
                f"to {best['slowest_ms']:.3g} ms per step ({tables.tier_words(best['tiers'])}).")
    return (f"{where}, from fastest to slowest (each framework by its fastest variant): "
            f"{tables.tier_words(best['tiers'])}. {best['fastest']} ({best['fastest_variant']}) takes "
            f"{best['fastest_ms']:.3g} ms per step and {best['slowest']} ({best['slowest_variant']}) "
            f"{best['slowest_ms']:.3g} ms, {best['ratio']:.1f} times as long.")


def memory_sentence(memory, device) -> str:
    """The LeNet memory ranking on one device, by the device's own memory measure."""
    value = tables.memory_value(device)
    order = tables.ranking(memory, value, "LeNet", device)
    part = tables.on_device(memory, device)
    part = part[part["model"] == "LeNet"].dropna(subset=[value]) if len(part) else part
    where = "the CPU" if device == "cpu" else device
    what = "the resident set grew by" if device == "cpu" else "the framework's allocator peaked at"
    if part.empty:
        return f"No comparable LeNet run on {where} measured its memory."
    return (f"On {where}, {what} {part[value].min():.0f} to {part[value].max():.0f} MiB; from the most frugal to "
            f"the hungriest (each framework by its smallest run): {words(order)}.")


# ------------------------------------------------------------ the 2016 table

PRETRAINED = ("Today TensorFlow has Keras' applications (https://keras.io/api/applications/), PyTorch torchvision's "
              "models and torch.hub (https://pytorch.org/vision/stable/models.html), MXNet Gluon's model zoo "
              "(https://mxnet.apache.org/versions/1.9.1/api/python/docs/api/gluon/model_zoo/index.html); Theano "
              "has none of its own (Lasagne's Recipes: https://github.com/Lasagne/Recipes).")
OPERATORS = ("Not tested here: counting the public names of each package says nothing about which tensor "
             "operations each offers, and no operation-by-operation inventory was made.")


def claims_table(speed, memory, one_off, checks, dp) -> pd.DataFrame:
    """The 2016 claims, each with what this build's records say and the verdict."""
    speed_text, speed_verdict = order_claim(speed, "median (ms)", CLAIM_ORDER, "LeNet, fastest first")
    mem_text, mem_verdict = order_claim(memory, None, CLAIM_ORDER, "LeNet memory, smallest first")
    slow_text, slow_verdict = twice_slow_claim(speed)
    compile_row = compile_claim(one_off)
    cf_text, cf_verdict = control_flow_claim(checks)
    dp_text, dp_verdict = distributed_claim(dp)
    rows = [
        ("Single-GPU speed: Theano good, TensorFlow average, MXNet excellent", speed_text, speed_verdict),
        ("Memory: the same ranking (MXNet best, TensorFlow worst)", mem_text, mem_verdict),
        ("TensorFlow about twice as slow as cuDNN-backed Theano and MXNet", slow_text, slow_verdict),
        ("Theano's compile times are long", compile_row["text"], compile_row["verdict"]),
        ("Control flow: Theano yes, TensorFlow experimental, MXNet no", cf_text, cf_verdict),
        ("Low-level tensor operators: Theano many, TensorFlow fairly good, MXNet very few", OPERATORS, "not tested"),
        ("Pre-trained models: Theano through Lasagne, TensorFlow none, MXNet yes (via a Caffe converter)",
         PRETRAINED, "outdated for TensorFlow"),
        ("Multi-GPU and distributed training: Theano experimental multi-GPU, TensorFlow multi-GPU, MXNet distributed",
         dp_text, dp_verdict),
    ]
    return pd.DataFrame(rows, columns=["claim (2016)", "checked today", "verdict"])


def claim_counts(claims) -> dict:
    """How many claims are untested here, and how many are out of date for at least one framework."""
    verdict = claims["verdict"] if len(claims) else pd.Series(dtype=str)
    return {"n": int(len(claims)), "untested": int(verdict.str.contains("untested|not tested").sum()),
            "outdated": int(verdict.str.contains("outdated").sum())}
