"""The comparison chapter's charts (seaborn), drawn from the tables of :mod:`rosetta.compare.tables`.

Every framework keeps one colour in every chart. A chart with nothing to show says so in
its own frame instead of failing, so that a missing framework never stops the chapter.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from rosetta.compare.tables import FRAMEWORKS, MODEL_NAMES, NAMES  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid")
COLORS = dict(zip((NAMES[f] for f in FRAMEWORKS), sns.color_palette("colorblind", len(FRAMEWORKS))))
DPI = 150


def save(fig, folder, name: str) -> Path:
    """Write ``fig`` as ``<folder>/<name>.png``; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _empty(ax, what):
    ax.text(0.5, 0.5, f"no records: {what}", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig, names):
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[n]) for n in names]
    if handles:
        fig.legend(handles, names, loc="upper center", ncol=len(names), frameon=False, bbox_to_anchor=(0.5, 1.0))


def parity(long):
    """Loss per checked step over the NumPy reference (left) and relative deviation (right), per model."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for row, (model, name) in enumerate(MODEL_NAMES.items()):
        part = long[long["model"] == model] if len(long) else long
        ax_loss, ax_dev = axes[row]
        if part.empty:
            _empty(ax_loss, name)
            _empty(ax_dev, name)
            continue
        part = part.assign(framework=part["framework"].map(NAMES))
        for label, run in part.groupby("label"):
            color = COLORS[run["framework"].iloc[0]]
            ax_loss.plot(run["step"], run["loss"], color=color, alpha=0.6, lw=1.2)
            ax_dev.plot(run["step"], np.maximum(run["rel_dev"], 1e-12), color=color, alpha=0.6, lw=1.2)
        ref = part.drop_duplicates("step").sort_values("step")
        ax_loss.plot(ref["step"], ref["reference"], "k--", lw=1.5, label="NumPy reference (float64)")
        ax_loss.legend(fontsize="small", loc="upper right")
        ax_loss.set(yscale="log", xlabel="training step", ylabel="loss", title=f"{name}: loss per step")
        ax_dev.set(yscale="log", xlabel="training step", ylabel="|loss − reference| / reference",
                   title=f"{name}: relative deviation from the reference")
    _legend(fig, sorted(set(long["framework"].map(NAMES)), key=list(COLORS).index) if len(long) else [])
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def _order(part, value, ascending=True):
    """Bars grouped by framework (book order), sorted by ``value`` within each."""
    rank = {n: i for i, n in enumerate(COLORS)}
    return part.assign(_r=part["framework"].map(rank)).sort_values(["_r", value], ascending=[True, ascending]) \
        .drop(columns="_r")


def bars(table, value, xlabel, title, lo=None, hi=None, log=None, models=("2-layer net", "LeNet"), devices=None,
         fmt="{:.3g}", ascending=True):
    """Horizontal bars of ``value`` per run, one panel per (device, model); optional [lo, hi] error bars.

    Devices are "cpu" and each GPU by its ``device name`` (where the table has that column).

    ``log=None`` picks a log scale when the values of a panel span more than a factor of 30.
    Within a framework, runs are sorted by ``value`` (``ascending``: smallest first).
    """
    if len(table) and "device name" in table:          # each GPU in its own panel, by its name
        table = table.assign(device=table["device"].where(table["device"] == "cpu", table["device name"]))
    devices = devices or (sorted(set(table["device"]), key=lambda d: (d != "cpu", d)) if len(table) else ["cpu"])
    heights = [max(2.0, 0.32 * max(1, ((table["model"] == m).sum() if len(table) else 1))) for m in models]
    fig, axes = plt.subplots(len(devices) * len(models), 1, squeeze=False,
                             figsize=(9, 0.9 + sum(heights) * len(devices)),
                             gridspec_kw={"height_ratios": heights * len(devices)})
    axes = axes[:, 0]
    for i, (device, model) in enumerate((d, m) for d in devices for m in models):
        ax = axes[i]
        part = table[(table["model"] == model) & (table["device"] == device)].dropna(subset=[value]) \
            if len(table) else table
        if part.empty:
            _empty(ax, f"{model} on {device}")
            ax.set_title(f"{model} on {device}")
            continue
        part = _order(part, value, ascending)
        y = np.arange(len(part))
        colors = [COLORS[f] for f in part["framework"]]
        xerr = None
        if lo and hi:
            xerr = np.vstack([part[value] - part[lo], part[hi] - part[value]]).clip(min=0)
        ax.barh(y, part[value], color=colors, xerr=xerr, capsize=3, error_kw={"lw": 1})
        ax.set_yticks(y, part["label"])
        ax.invert_yaxis()
        spread = part[value].max() / max(part[value][part[value] > 0].min(), 1e-30) if (part[value] > 0).any() else 1
        if log or (log is None and spread > 30):
            ax.set_xscale("log")
        ends = part[hi].where(part[hi] > part[value], part[value]) if lo and hi else part[value]
        for yi, v, end in zip(y, part[value], ends):
            ax.annotate(fmt.format(v), (end, yi), xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize="x-small")
        ax.set(xlabel=xlabel, title=f"{model} on {device}")
        ax.margins(x=0.12)
    _legend(fig, [n for n in COLORS if len(table) and n in set(table["framework"])])
    fig.suptitle(title, y=1.03)
    fig.tight_layout()
    return fig


def warmup(table, devices=None):
    """First step against the median step per run (log scale), one panel per model."""
    long = table.melt(id_vars=["framework", "model", "device", "label"],
                      value_vars=["first step (ms)", "median step (ms)"], var_name="step", value_name="ms") \
        if len(table) else table
    counts = [max(1, int((table["model"] == m).sum())) if len(table) else 1 for m in ("2-layer net", "LeNet")]
    fig, axes = plt.subplots(2, 1, figsize=(9, 1.5 + 0.45 * sum(counts)), squeeze=False,
                             gridspec_kw={"height_ratios": counts})
    for ax, model in zip(axes[:, 0], ("2-layer net", "LeNet")):
        part = long[long["model"] == model] if len(long) else long
        if part.empty:
            _empty(ax, model)
            ax.set_title(model)
            continue
        order = list(_order(table[table["model"] == model], "median step (ms)")["label"])
        sns.barplot(part, y="label", x="ms", hue="step", order=order, ax=ax, palette=["0.35", "0.75"])
        ax.set(xscale="log", xlabel="milliseconds (log scale)", ylabel="", title=model)
        ax.legend(fontsize="small", title=None, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        for tick in ax.get_yticklabels():
            tick.set_color(COLORS.get(tick.get_text().split(" ")[0], "k"))
    fig.suptitle("The first step against a normal one", y=1.02)
    fig.tight_layout()
    return fig


def one_off(table):
    """One-off costs a chapter recorded (compile, trace, graph build), in seconds."""
    part = table.dropna(subset=["one-off (s)"]) if len(table) else table
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.35 * len(part) + 1)))
    if part.empty:
        _empty(ax, "no chapter recorded a one-off cost")
        return fig
    part = _order(part, "one-off (s)")
    labels = part["label"] + " (" + part["model"] + ": " + part["one-off is"] + ")"
    ax.barh(np.arange(len(part)), part["one-off (s)"], color=[COLORS[f] for f in part["framework"]])
    ax.set_yticks(np.arange(len(part)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="seconds", title="One-off cost before the first step (compile, trace, graph build)")
    fig.tight_layout()
    return fig


def control_flow(timings):
    """Time of one forward + backward call of the recurrence against its length, per framework."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    if timings.empty:
        _empty(ax, "control flow")
        return fig
    for name, part in timings.groupby("framework", sort=False):
        part = part.sort_values("T")
        us, lo, hi = (1e6 * part[c] for c in ("median_s", "q1_s", "q3_s"))
        ax.errorbar(part["T"], us, yerr=np.vstack([us - lo, hi - us]).clip(min=0), marker="o", capsize=3,
                    color=COLORS[NAMES[name]], label=NAMES[name])
    ax.set(xscale="log", yscale="log", xlabel="loop length T (steps)",
           ylabel="forward + backward (µs, log scale)", title="The recurrence and its gradient, per call")
    ax.set_xticks(sorted(set(timings["T"])), [str(t) for t in sorted(set(timings["T"]))])
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
