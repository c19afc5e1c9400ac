"""The race to 99% and each framework's default against its tuned setting, from records.

The framework chapters write one ``lenet_race`` record per seed (:func:`rosetta.core.training.race`)
and give their main LeNet record an ``extra.tuning`` summary (:func:`rosetta.core.tuning.summary`);
the functions here turn those into the comparison's tables.
"""
import numpy as np
import pandas as pd

from rosetta.compare import tables
from rosetta.core import schedule

RACE_COLUMNS = ["framework", "setting", "momentum form", "seeds", "reached", "median s to target",
                "min s", "max s", "median epochs", "final accuracy (%)", "quick"]
TUNING_COLUMNS = ["framework", "default", "tuned", "default ms/step", "tuned ms/step", "speed-up"]


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
        "framework": race["name"], "device": race["device"], "seed": race["extra.seed"].astype(int),
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
        forms = race.loc[(race["name"] == name) & (race["device"] == device), "extra.momentum_form"]
        rows.append({
            "framework": name if device == "cpu" else f"{name} ({device})",
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
    from the ``extra.tuning`` summary of the chapter's main LeNet record."""
    if df.empty or "extra.tuning" not in df:
        return pd.DataFrame(columns=TUNING_COLUMNS)
    part = df[(df["model"] == "lenet") & df["extra.tuning"].map(lambda v: isinstance(v, dict))]
    rows = [{"framework": r["name"] if r["device"] == "cpu" else f"{r['name']} ({r['device']})",
             "default": r["extra.tuning"]["default"], "tuned": r["extra.tuning"]["tuned"],
             "default ms/step": r["extra.tuning"]["default_ms"], "tuned ms/step": r["extra.tuning"]["tuned_ms"],
             "speed-up": r["extra.tuning"]["speedup"]} for _, r in part.iterrows()]
    return pd.DataFrame(rows, columns=TUNING_COLUMNS)


def sentence(per_run, target: float = schedule.TARGET) -> str:
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
