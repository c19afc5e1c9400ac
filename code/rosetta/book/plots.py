"""Figures the chapters share (seaborn on matplotlib).

The backend is left alone: in a notebook it is the inline one, whose PNG the book shows
(glued figures need it); elsewhere matplotlib picks a non-interactive one by itself.
"""
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def parity(recs, title=None):
    """Left: each run's losses over the NumPy reference's (dashed). Right: relative deviation per step."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in recs:
        ref = np.asarray(r["parity"]["reference"])
        steps = np.arange(len(ref))
        ax1.plot(steps, r["losses"][:len(ref)], label=r["variant"], alpha=0.8)
        ax2.plot(steps, np.maximum(r["parity"]["rel_dev"], 1e-12), label=r["variant"], alpha=0.8)
    if recs:
        ax1.plot(steps, ref, "k--", lw=1, label="NumPy reference")
        ax2.axhline(recs[0]["parity"]["tolerance"], color="k", ls=":", lw=1, label="tolerance")
    ax1.set(xlabel="step", ylabel="loss", yscale="log", title="loss per step")
    ax2.set(xlabel="step", ylabel="|loss - reference| / reference", yscale="log",
            title="relative deviation from the reference")
    ax1.legend(fontsize="small")
    ax2.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curve(rec, window: int = 50):
    """LeNet's training loss (moving average) and test accuracy per epoch."""
    losses = np.asarray(rec["losses"])
    w = max(1, min(window, len(losses) // 5))
    smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(np.arange(len(losses)), losses, color="0.8", lw=0.6, label="per step")
    ax.plot(np.arange(w - 1, len(losses)), smooth, lw=1.5, label=f"mean of {w} steps")
    ax.set(xlabel="step", ylabel="cross-entropy loss", yscale="log",
           title=f"{rec['framework']} {rec['variant']}: training loss")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
