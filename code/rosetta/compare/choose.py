"""How to choose a framework: what is known of each (maintenance, GPUs; a small table, every
line with its source) beside what this build measured (LeNet's step time and memory on the CPU,
from the comparable records) and where the book's own Colab copies run it.

Imports no deep-learning framework.
"""
from dataclasses import dataclass

import pandas as pd

from rosetta.compare import tables


@dataclass(frozen=True)
class Facts:
    maintained: bool
    release: str        # the last release of a retired framework; "" for a maintained one
    gpus: tuple         # GPU makers it supports, as its own documentation says
    gpu_note: str
    source: str         # where the maintenance status and the GPUs are stated


FACTS = {
    "pytorch": Facts(True, "", ("NVIDIA", "AMD", "Apple"), "CUDA and ROCm builds; MPS on macOS",
                     "https://pytorch.org/get-started/locally/"),
    "tensorflow": Facts(True, "", ("NVIDIA",), "CUDA, on Linux and WSL2",
                        "https://www.tensorflow.org/install/pip"),
    "jax": Facts(True, "", ("NVIDIA", "Google TPU", "AMD"), "CUDA and TPU; ROCm builds by AMD",
                 "https://docs.jax.dev/en/latest/installation.html"),
    "pytensor": Facts(True, "", (), "none of its own: a graph can be compiled to JAX or PyTorch, "
                      "which run on GPUs", "https://pytensor.readthedocs.io/"),
    "mxnet": Facts(False, "1.9.1 (May 2022); the project moved to the Apache Attic in 2023",
                   ("NVIDIA",), "CUDA 11.7 at most: its last CUDA build is mxnet-cu117",
                   "https://attic.apache.org/projects/mxnet.html"),
    "theano": Facts(False, "Theano 1.0.5 (July 2020); its fork Theano-PyMC, which the book runs, "
                    "ended at 1.1.2 and went on as Aesara, then PyTensor",
                    ("NVIDIA",), "CUDA through libgpuarray, original Theano only",
                    "https://github.com/Theano/Theano"),
}
COLAB_WORDS = {"native": "yes, on Colab's own Python (and its GPU)",
               "python311": "CPU only, in a Python 3.11 environment beside Colab's",
               "none": "no"}
COLUMNS = ["framework", "maintained", "GPUs", "on Colab", "LeNet step (ms)", "speed rank",
           "level with", "LeNet memory (MiB)", "source"]


def _check(speed, memory, colab):
    for what, table, column in (("speed", speed, "median (ms)"), ("memory", memory, "RSS increase (MiB)")):
        if not isinstance(table, pd.DataFrame) or (len(table) and column not in table):
            raise TypeError(f"choose.table: {what} must be the DataFrame of tables.{what}_table "
                            f"(with a {column!r} column), got {type(table).__name__}")
    unknown = set(colab) - set(FACTS)
    bad = {f: m for f, m in colab.items() if m not in COLAB_WORDS}
    if unknown or bad:
        raise ValueError(f"choose.table: colab must map frameworks of {sorted(FACTS)} to one of "
                         f"{sorted(COLAB_WORDS)}; got unknown frameworks {sorted(unknown)}, bad modes {bad}")


def table(speed, memory, colab: dict) -> pd.DataFrame:
    """One row per framework of :data:`FACTS`: its maintenance and GPUs (sourced), where the
    book's Colab copy of its chapter runs (``colab``: framework -> mode of
    ``rosetta.book.notebooks.colab_setting``), and, from this build's comparable runs on the
    CPU (``speed`` and ``memory``: tables.speed_table and tables.memory_table of those runs),
    LeNet's fastest median step, its place in the ranking of these frameworks (those level
    within their spread share a place, named in ``level with``), and its smallest memory
    increase."""
    _check(speed, memory, colab)
    ours = [tables.NAMES[f] for f in FACTS]
    best = tables.fastest(speed[speed["framework"].isin(ours)] if len(speed) else speed, "LeNet", "cpu")
    place = {name: i + 1 for i, tier in enumerate(best["tiers"]) for name in tier}
    peers = {name: [n for n in tier if n != name] for tier in best["tiers"] for name in tier}
    rows = []
    for f, facts in FACTS.items():
        name = tables.NAMES[f]
        runs = tables.on_device(speed, "cpu")
        runs = runs[(runs["framework"] == name) & (runs["model"] == "LeNet")] if len(runs) else runs
        mem = tables.on_device(memory, "cpu")
        mem = mem[(mem["framework"] == name) & (mem["model"] == "LeNet")] if len(mem) else mem
        rows.append({
            "framework": name,
            "maintained": "yes" if facts.maintained else f"no: last release {facts.release}",
            "GPUs": (", ".join(facts.gpus) + f" ({facts.gpu_note})") if facts.gpus else facts.gpu_note,
            "on Colab": COLAB_WORDS[colab[f]] if f in colab else "no chapter",
            "LeNet step (ms)": float(runs["median (ms)"].min()) if len(runs) else float("nan"),
            "speed rank": place.get(name, float("nan")),
            "level with": tables.words(peers[name]) if peers.get(name) else "",
            "LeNet memory (MiB)": float(mem["RSS increase (MiB)"].min()) if len(mem) else float("nan"),
            "source": facts.source})
    return pd.DataFrame(rows, columns=COLUMNS)


def _frameworks(part) -> str:
    return tables.words(part["framework"])


def advice(choice: pd.DataFrame) -> list:
    """What :func:`table` says, as sentences that follow its values: which frameworks are
    maintained, which of those was fastest and which took least memory in this build, which
    run beyond NVIDIA's GPUs, and which run on Colab."""
    if not isinstance(choice, pd.DataFrame) or list(choice.columns) != COLUMNS:
        raise TypeError("choose.advice: expected the DataFrame of choose.table")
    alive = choice[choice["maintained"] == "yes"]
    retired = choice[choice["maintained"] != "yes"]
    out = [f"Maintained: {_frameworks(alive)}. Retired: {_frameworks(retired)}; their chapters show "
           "how they work, but no release will fix a bug or support a new GPU or Python."
           if len(retired) else f"Every framework here is maintained: {_frameworks(alive)}."]
    timed = alive.dropna(subset=["LeNet step (ms)"])
    untimed = alive[alive["LeNet step (ms)"].isna()]
    if timed.empty:
        out.append("No maintained framework has a comparable LeNet run on the CPU in this build.")
    elif len(timed) == 1:
        r = timed.iloc[0]
        memory = "" if pd.isna(r["LeNet memory (MiB)"]) else \
            f", {r['LeNet memory (MiB)']:.0f} MiB more resident memory"
        out.append(f"Of the maintained frameworks, only {r['framework']} has a comparable LeNet run on "
                   f"this build's CPU: {r['LeNet step (ms)']:.3g} ms a step{memory}.")
    else:
        top = timed[timed["speed rank"] == timed["speed rank"].min()]
        faster = retired[retired["speed rank"] < top["speed rank"].min()]
        if len(top) == 1:
            r = top.iloc[0]
            out.append(f"Of the maintained frameworks, {r['framework']} trained LeNet fastest on this "
                       f"build's CPU ({r['LeNet step (ms)']:.3g} ms a step).")
        else:
            out.append(f"Of the maintained frameworks, {_frameworks(top)} trained LeNet equally fast "
                       "on this build's CPU: their step times are level within their spread.")
        if len(faster):
            out[-1] += f" The retired {_frameworks(faster)} trained it faster still."
        frugal = timed.dropna(subset=["LeNet memory (MiB)"]).sort_values("LeNet memory (MiB)")
        if len(frugal):
            r = frugal.iloc[0]
            out.append(f"{r['framework']} took the least memory for it "
                       f"({r['LeNet memory (MiB)']:.0f} MiB more resident memory).")
    if len(timed) and len(untimed):
        out[-1] += f" {_frameworks(untimed)} {'has' if len(untimed) == 1 else 'have'} none to compare."
    wide = [r["framework"] for _, r in alive.iterrows()
            if FACTS[_key(r["framework"])].gpus and FACTS[_key(r["framework"])].gpus != ("NVIDIA",)]
    if wide:
        out.append(f"Beyond NVIDIA's GPUs: {tables.words(wide)}.")
    native = choice[choice["on Colab"] == COLAB_WORDS["native"]]
    if len(native):
        out.append(f"On Colab, {_frameworks(native)} run as they are, on its GPU where the runtime "
                   "has one.")
    return out


def _key(name: str) -> str:
    return next(f for f in FACTS if tables.NAMES[f] == name)
