"""The race to 99% and each framework's default against its tuned setting, from records.

The framework chapters write one ``lenet_race`` record per seed (:func:`rosetta.core.training.race`)
and give their main LeNet record an ``extra.tuning`` summary (:func:`rosetta.core.tuning.summary`);
the functions here turn those into the comparison's tables.
"""
import numpy as np
import pandas as pd

from rosetta.compare import tables
from rosetta.core import schedule

RACE_COLUMNS = ["framework", "device", "setting", "momentum form", "seeds", "reached", "median s to target",
                "min s", "max s", "median epochs", "final accuracy (%)", "quick"]
TUNING_COLUMNS = ["framework", "device", "default", "tuned", "default ms/step", "tuned ms/step", "speed-up",
                  "settings measured", "main run ms/step"]


def load(build=None, committed=None, folders=None) -> pd.DataFrame:
    """Every race record (model ``lenet_race``) with the framework's name; device and quick mode kept."""
    return tables.load_model("lenet_race", build, committed, folders)


def runs(race) -> pd.DataFrame:
    """One row per race run: framework, seed, whether and when it reached the target."""
    cols = ["framework", "device", "seed", "setting", "reached", "s to target", "epochs to target",
            "steps", "final accuracy (%)", "quick"]
    if race.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({
        "framework": race["name"], "device": tables.device_of(race), "seed": race["extra.seed"].astype(int),
        "setting": race["extra.setting"], "reached": race["extra.reached"].astype(bool),
        "s to target": pd.to_numeric(race["extra.time_to_target_s"], errors="coerce"),
        "epochs to target": pd.to_numeric(race["extra.epochs_to_target"], errors="coerce"),
        "steps": race["losses"].map(len), "final accuracy (%)": 100 * race["test_accuracy"].astype(float),
        "quick": race["params.quick"].astype(bool)})
    return out[cols].sort_values(["framework", "device", "seed"]).reset_index(drop=True)


def table(race) -> pd.DataFrame:
    """Per framework and device: median time to the target over the seeds that reached it, its range,
    how many of the seeds reached it."""
    per_run = runs(race)
    rows = []
    for (name, device), part in per_run.groupby(["framework", "device"], sort=False):
        hit = part[part["reached"]]
        forms = race.loc[(race["name"] == name) & (tables.device_of(race) == device), "extra.momentum_form"]
        rows.append({
            "framework": name, "device": device,
            "setting": ", ".join(sorted(set(part["setting"]))), "momentum form": ", ".join(sorted(set(forms))),
            "seeds": len(part), "reached": f"{len(hit)} of {len(part)}",
            "median s to target": hit["s to target"].median() if len(hit) else np.nan,
            "min s": hit["s to target"].min() if len(hit) else np.nan,
            "max s": hit["s to target"].max() if len(hit) else np.nan,
            "median epochs": hit["epochs to target"].median() if len(hit) else np.nan,
            "final accuracy (%)": f"{part['final accuracy (%)'].min():.2f}-{part['final accuracy (%)'].max():.2f}"
            if len(part) > 1 else f"{part['final accuracy (%)'].iloc[0]:.2f}",
            "quick": bool(part["quick"].any())})
    return pd.DataFrame(rows, columns=RACE_COLUMNS)


def schedule_check(race) -> dict:
    """Whether every race record applied the schedule's rate at every step it ran.

    Each record's rates are compared with :func:`rosetta.core.schedule.rates` for its own training
    setting (steps per epoch and epochs); returns the largest relative difference and the records
    that differ (a framework that rounds the rate to float32 differs by about 6e-8).
    """
    worst, off = 0.0, []
    for _, r in race.iterrows():
        per_epoch = int(r["params.train_subset"]) // int(r["params.batch_size"])
        want = schedule.rates(per_epoch, int(r["params.epochs"]))
        got = np.asarray(r["extra.rates"], np.float64)
        if len(got) > len(want):
            off.append(f"{r['name']} seed {r['extra.seed']}: {len(got)} rates for {len(want)} steps")
            continue
        dev = float(np.max(np.abs(got - want[:len(got)]) / want[:len(got)])) if len(got) else 0.0
        worst = max(worst, dev)
        if dev > 1e-7:
            off.append(f"{r['name']} seed {r['extra.seed']}: rate off by {dev:.1e}")
    return {"max_rel_diff": worst, "records": int(len(race)), "off": off, "same": not off}


def tuning(df) -> pd.DataFrame:
    """Per framework: its default and tuned LeNet settings, their median step and the speed-up,
    from the ``extra.tuning`` summary of the chapter's main LeNet record, and the median step of that
    main run itself (the tuned setting over the whole training; the settings' rows are short runs
    timed side by side)."""
    if df.empty or "extra.tuning" not in df:
        return pd.DataFrame(columns=TUNING_COLUMNS)
    part = df[(df["model"] == "lenet") & df["extra.tuning"].map(lambda v: isinstance(v, dict))]
    part = part.assign(device=tables.device_of(part))
    rows = [{"framework": r["name"], "device": r["device"],
             "default": r["extra.tuning"]["default"], "tuned": r["extra.tuning"]["tuned"],
             "default ms/step": r["extra.tuning"]["default_ms"], "tuned ms/step": r["extra.tuning"]["tuned_ms"],
             "speed-up": r["extra.tuning"]["speedup"],
             "settings measured": r["extra.tuning"].get("measured"),
             "main run ms/step": 1e3 * r["timing.median_s"]} for _, r in part.iterrows()]
    return pd.DataFrame(rows, columns=TUNING_COLUMNS)


def chart_rows(race_table, tuning_table):
    """The two tables in the long form :func:`rosetta.compare.charts.bars` draws (model "LeNet")."""
    race_rows = pd.DataFrame({
        "framework": race_table["framework"], "device": race_table["device"], "model": "LeNet",
        "label": race_table["framework"] + " (" + race_table["reached"] + ")",
        "median s": race_table["median s to target"], "min s": race_table["min s"],
        "max s": race_table["max s"]}) if len(race_table) else pd.DataFrame(
        columns=["framework", "device", "model", "label", "median s", "min s", "max s"])
    tuned = []
    for _, r in tuning_table.iterrows():
        for which in ("default", "tuned"):
            tuned.append({"framework": r["framework"], "device": r["device"], "model": "LeNet",
                          "label": f"{r['framework']} {which}: {r[which]}", "ms/step": r[f"{which} ms/step"]})
    return race_rows, pd.DataFrame(tuned, columns=["framework", "device", "model", "label", "ms/step"])


def _per_device(table, one) -> str:
    """``one(part)`` for each device of ``table`` (the CPU first, then each GPU by name); with more
    than one device each device's sentences start with where they were measured."""
    devices = sorted(set(table["device"]), key=lambda d: (d != "cpu", d))
    if len(devices) == 1:
        return one(table)
    said = []
    for device in devices:
        text = one(table[table["device"] == device])
        where = "On the CPU" if device == "cpu" else f"On {device}"
        lower = text.split(" ", 1)[0] in ("No", "Tuning")          # not a framework's name
        said.append(f"{where}, {text[0].lower() + text[1:] if lower else text}")
    return " ".join(said)


def race_sentence(race_table, target: float = schedule.TARGET) -> str:
    """What the race says, in words, device by device: who reached the target, the fastest median
    and whether the ranges of the first two overlap (then they are level)."""
    pct = f"{100 * target:.0f}%"
    if race_table.empty:
        return f"No framework chapter recorded a race to {pct} in this build."
    return _per_device(race_table, lambda part: _race_on_one_device(part, pct))


def _race_on_one_device(race_table, pct) -> str:
    part = race_table.dropna(subset=["median s to target"]).sort_values("median s to target")
    if part.empty:
        why = (" In quick mode the race trains one epoch on a small subset, too little to get there; "
               "a full build races on the whole training set." if race_table["quick"].any() else "")
        return f"No framework reached {pct} test accuracy within the race's epochs.{why}"
    first = part.iloc[0]
    text = (f"{first['framework']} reached {pct} first: a median of {first['median s to target']:.1f} s of "
            f"training over {first['reached']} seeds (range {first['min s']:.1f}-{first['max s']:.1f} s, "
            f"{first['median epochs']:.2f} epochs).")
    if len(part) > 1:
        second = part.iloc[1]
        overlap = second["min s"] <= first["max s"]
        text += (f" {second['framework']} follows with {second['median s to target']:.1f} s"
                 + (", inside the first one's range: the two are level." if overlap else "."))
    never = race_table[race_table["median s to target"].isna()]
    if len(never):
        text += f" {tables.words(never['framework'])} did not reach it in any seed."
    return text


def tuning_sentence(tuning_table, within: float = 1.5) -> str:
    """Default against tuned in words, device by device, and which tuned frameworks are within
    ``within`` times the fastest on the same device."""
    if tuning_table.empty:
        return "No framework chapter recorded its default and tuned settings in this build."
    return _per_device(tuning_table, lambda part: _tuning_on_one_device(part, within))


def _tuning_on_one_device(tuning_table, within) -> str:
    part = tuning_table.sort_values("tuned ms/step")
    best = part.iloc[0]
    changed = tuning_table[tuning_table["default"] != tuning_table["tuned"]]
    kept = tuning_table[tuning_table["default"] == tuning_table["tuned"]]
    measured = pd.to_numeric(kept["settings measured"], errors="coerce") if "settings measured" in kept \
        else pd.Series(np.nan, index=kept.index)
    alone = kept[measured == 1]                 # the default was the only setting measured
    unknown = kept[measured.isna()]             # a record from before the count was kept
    kept = kept[measured > 1]
    gains = "; ".join(f"{r['framework']} {r['speed-up']:.2f}x ({r['default']} to {r['tuned']})"
                      for _, r in changed.iterrows())
    text = f"Tuning made the LeNet step faster by: {gains}." if len(changed) else ""
    if len(kept):
        text += (f" {tables.words(kept['framework'])} kept {'its' if len(kept) == 1 else 'their'} "
                 f"default, the fastest setting measured.")
    if len(alone):
        text += (f" {tables.words(alone['framework'])} measured only {'its' if len(alone) == 1 else 'their'} "
                 f"default here, so {'its' if len(alone) == 1 else 'their'} tuned setting is the default.")
    if len(unknown):
        text += (f" {tables.words(unknown['framework'])} kept {'its' if len(unknown) == 1 else 'their'} default "
                 f"(the {'record does' if len(unknown) == 1 else 'records do'} not say how many settings were "
                 "measured).")
    if "main run ms/step" in part:
        main = part.dropna(subset=["main run ms/step"])
        off = main[(main["main run ms/step"] / main["tuned ms/step"] - 1).abs() > 0.1]
        if len(off):
            text += (" These are short runs of each setting, timed side by side; the main "
                     f"{'run' if len(off) == 1 else 'runs'}, with the tuned setting over the whole training, took "
                     + "; ".join(f"{r['main run ms/step']:.2f} ms a step ({r['framework']})" for _, r in off.iterrows())
                     + ", so compare the tuning rows with each other and the main runs with each other.")
    if len(part) == 1:
        return f"{text.strip()} Tuned, {best['framework']} takes {best['tuned ms/step']:.2f} ms a step."
    far = part[part["tuned ms/step"] > within * best["tuned ms/step"]]
    return (f"{text.strip()} Tuned, {best['framework']} is "
            f"the fastest ({best['tuned ms/step']:.2f} ms); "
            + ("every other framework is within " f"{within:g} times that." if far.empty else
               f"{tables.words(far['framework'])} {'is' if len(far) == 1 else 'are'} more than {within:g} "
               "times slower."))


def runs_sentence(per_run, target: float = schedule.TARGET) -> str:
    """What a chapter's race runs (:func:`runs`) say, in words: how many seeds reached the
    target, the median time and epochs and their range; or, where none did, how far they got
    and, in quick mode, that the quick data cannot reach it."""
    if per_run.empty:
        return "No race was run."
    n, hit = len(per_run), per_run[per_run["reached"]]
    pct, final = f"{100 * target:g}%", per_run["final accuracy (%)"]
    seeds = f"{n} seed" + ("s" if n > 1 else "")
    if hit.empty:
        why = (" Quick mode trains one epoch on a few thousand images, too little to get there; "
               "the full build races on all of MNIST." if per_run["quick"].any() else "")
        return (f"Of {seeds}, none reached {pct} test accuracy within the run's epochs; "
                f"the last measurement was {final.min():.2f}–{final.max():.2f}%.{why}"
                if n > 1 else
                f"The race (seed {per_run['seed'].iloc[0]}) did not reach {pct} test accuracy "
                f"within the run's epochs; its last measurement was {final.iloc[0]:.2f}%.{why}")
    s, e = hit["s to target"], hit["epochs to target"]
    spread = f" (range {s.min():.1f}–{s.max():.1f} s)" if len(hit) > 1 else ""
    return (f"{len(hit)} of {seeds} reached {pct} test accuracy, after a median of "
            f"{s.median():.1f} s of training{spread} and {e.median():.2f} epochs.")
