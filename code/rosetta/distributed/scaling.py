"""Data-parallel LeNet: what the scaling chapter's worker programs share, how they are started,
and the model that projects their step time onto other links.

Worker side (the chapter writes the worker programs; they use this)::

    args = scaling.worker_args()                 # --mode, --steps, --threads, --data, --out ...
    for xb, yb in scaling.local_batches(args, rank, world):   # this worker's slice of each batch
        ...
    scaling.write_result(args, rank, world, ...) # <out>/rank<r>.json

Every worker walks the book's shared batch order (``weights.batch_indices``): global batch
``t`` holds the same images as step ``t`` of a single-process run, and worker ``r`` of ``w``
takes the ``r``-th of ``w`` equal, contiguous slices of it.

Chapter side: :func:`single_jobs`, :func:`torchrun_jobs`, :func:`tf_cluster_jobs` and
:func:`ps_lite_jobs` describe the processes of one run (free loopback ports, the engines'
environment variables); :func:`run` starts them with :mod:`rosetta.distributed.launch` and reads their
results; :func:`check_equivalent` compares a distributed run with the same program alone;
:func:`step_time` projects a step onto ``n`` workers joined by a link of :data:`LINKS`.

Imports no deep-learning framework.
"""
import argparse
from dataclasses import dataclass
import json
from pathlib import Path
import shutil
import sys
import time

import numpy as np

from rosetta.distributed import launch
from rosetta.core import files, params, reference, weights

LENET_GRADIENT_FLOATS = 431_080     # = weights.lenet_parameter_count(): one float32 per parameter
BENCH_SIZES = (1, LENET_GRADIENT_FLOATS)
QUICK_STEPS = 40                    # quick mode: one pass over the quick training subset
# A distributed run against the same program alone, relative, per step, over the first steps only:
# at first the two differ by float32 rounding (~1e-7); later, training at this learning rate
# amplifies any rounding difference (a different thread count does the same), up to ~1e-1
# after a few hundred steps, and the first jumps came after step 15 in this book's runs.
EQUIVALENCE_TOL = 1e-5
EQUIVALENCE_STEPS = 10


class EquivalenceError(AssertionError):
    """A distributed run did not take the steps of the same program in one process."""


def resolve_steps(steps, quick: bool) -> int:
    """The chapter's ``steps`` parameter, checked; quick mode caps it at :data:`QUICK_STEPS`."""
    low = max(EQUIVALENCE_STEPS, params.PARITY_STEPS) + params.WARMUP_STEPS
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < low:
        raise params.ParameterError(f"parameter 'steps' must be a whole number of at least {low} (the "
                                    f"{params.PARITY_STEPS} steps compared with the reference and the "
                                    f"{params.WARMUP_STEPS} warm-up steps), got {steps!r}")
    return min(steps, QUICK_STEPS) if quick else steps


FLOAT32_DECISION = reference.FLOAT32_DECISION


def equivalence_steps(relu_margins, steps: int = EQUIVALENCE_STEPS) -> int:
    """How many first steps two float32 runs of one program can be held equal over
    (:func:`rosetta.core.reference.decided_steps` over the first ``steps``)."""
    return reference.decided_steps(relu_margins, steps)


def check_equivalent(losses, baseline, what: str, tol: float = EQUIVALENCE_TOL,
                     steps: int = EQUIVALENCE_STEPS) -> float:
    """Raise :class:`EquivalenceError` if the first ``steps`` losses leave the single-process run's
    by more than ``tol`` (relative); returns the largest deviation."""
    dev = rel_dev(losses, baseline)[:steps]
    if not dev.max() <= tol:
        raise EquivalenceError(f"{what}: its losses leave those of the same program in one process by "
                               f"{dev.max():.3g} (relative) at step {int(np.argmax(dev))}, more than {tol:g}: "
                               f"the workers do not compute the single-process step (gradient scale? shards?)")
    return float(dev.max())


# ----------------------------------------------------------------------------- workers

def worker_parser() -> argparse.ArgumentParser:
    """The options every worker program takes (a program may add its own)."""
    ap = argparse.ArgumentParser(description="one worker of a data-parallel LeNet run")
    ap.add_argument("--mode", default="single", help="which configuration of the engine to run")
    ap.add_argument("--steps", type=int, required=True, help="global batches to train on")
    ap.add_argument("--batch-size", type=int, default=64, help="global batch size (all workers together)")
    ap.add_argument("--threads", type=int, default=1, help="compute threads of this process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", required=True, help="the .npz written by save_data()")
    ap.add_argument("--bench-reps", type=int, default=0, help="repetitions of the all-reduce benchmark")
    ap.add_argument("--out", required=True, help="folder for rank<r>.json")
    return ap


def worker_args(argv=None):
    return worker_parser().parse_args(argv)


def save_data(x, y, path) -> Path:
    """The training images the workers read, checked once by :mod:`rosetta.core.mnist` in the caller
    (every worker loading and checking all of MNIST would cost seconds each)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=np.ascontiguousarray(x, np.float32), y=np.asarray(y, np.int64))
    return path


def global_batches(seed: int, n: int, batch_size: int, steps: int):
    """Index arrays of the first ``steps`` global batches (epoch after epoch of the shared order)."""
    out, epoch = [], 0
    while len(out) < steps:
        out.extend(weights.batch_indices(seed, epoch, n, batch_size))
        epoch += 1
    return out[:steps]


def shard(idx, rank: int, world: int):
    """Worker ``rank``'s contiguous share of one global batch."""
    if len(idx) % world:
        raise ValueError(f"a global batch of {len(idx)} does not split evenly over {world} workers")
    size = len(idx) // world
    return idx[rank * size:(rank + 1) * size]


def local_batches(args, rank: int, world: int):
    """This worker's ``(x, y)`` for every step: NCHW float32 images and int64 labels."""
    with np.load(args.data) as data:
        x, y = data["x"], data["y"]
    batches = [shard(idx, rank, world) for idx in global_batches(args.seed, len(x), args.batch_size, args.steps)]
    return [(x[i], y[i]) for i in batches]


def progress(step: int, losses) -> None:
    """One line per step on standard output (the launcher's log shows how far a worker got)."""
    print(f"step {step} loss {' '.join(f'{float(v):.6f}' for v in np.ravel(losses))}", flush=True)


def time_repeats(fn, reps: int, barrier=None) -> list:
    """Seconds of each of ``reps`` calls of ``fn`` (which must block until done), after one
    untimed call; ``barrier()`` lines the workers up before every call."""
    fn()
    seconds = []
    for _ in range(reps):
        if barrier:
            barrier()
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return seconds


def write_result(args, rank: int, world: int, *, framework: str, version: str, losses, probe, bench=None,
                 **extra) -> Path:
    """Write this worker's ``rank<r>.json``: per-step mean losses of its local shards (a list per
    step), its :class:`~rosetta.core.timing.Probe` summary and its benchmark timings."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"rank": rank, "world": world, "mode": args.mode, "threads": args.threads,
               "batch_size": args.batch_size, "steps": args.steps, "framework": framework, "version": version,
               "losses": [[float(v) for v in np.ravel(step)] for step in losses],
               "probe": probe, "bench": {str(k): v for k, v in (bench or {}).items()}, **extra}
    return files.write_text(out / f"rank{rank}.json", json.dumps(payload))


# ------------------------------------------------------------------------ launching

@dataclass(frozen=True)
class Workload:
    """What every worker of every run trains: the same steps of the same global batches."""
    steps: int
    batch_size: int
    seed: int
    data: Path
    bench_reps: int

    def argv(self, script, mode: str, threads: int, out) -> list:
        return [str(script), "--mode", mode, "--threads", str(threads), "--steps", str(self.steps),
                "--batch-size", str(self.batch_size), "--seed", str(self.seed), "--data", str(self.data),
                "--bench-reps", str(self.bench_reps), "--out", str(out)]


def python() -> str:
    return sys.executable


def single_jobs(script, work: Workload, mode: str, threads: int, out) -> list:
    """One process that trains alone."""
    return [launch.Job(mode, [python(), *work.argv(script, mode, threads, out)])]


def torchrun_jobs(script, work: Workload, workers: int, threads: int, out) -> list:
    """torchrun starting ``workers`` processes on this machine; they meet at torchrun's store on
    127.0.0.1 and talk over gloo on the loopback interface."""
    port, = launch.free_ports(1)
    torchrun = Path(python()).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [python(), "-m", "torch.distributed.run"]
    cmd += ["--nnodes=1", f"--nproc-per-node={workers}", "--master-addr=127.0.0.1", f"--master-port={port}"]
    return [launch.Job("torchrun", cmd + work.argv(script, "ddp", threads, out),
                       env={"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": str(threads)})]


def tf_config(ports, index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def tf_cluster_jobs(script, work: Workload, workers: int, threads: int, out) -> list:
    """``workers`` TensorFlow processes, each told the cluster and its own index by ``TF_CONFIG``."""
    ports = launch.free_ports(workers)
    return [launch.Job(f"worker {i}", [python(), *work.argv(script, "multi_worker", threads, out)],
                       env={"TF_CONFIG": tf_config(ports, i)}) for i in range(workers)]


def ps_lite_env(port: int, workers: int, role: str) -> dict:
    """ps-lite's variables for one node; ``PORT`` is removed, because ps-lite would take it as
    every node's own port, and the nodes announce 127.0.0.1 (in a namespace that has no other
    interface, ps-lite finds none to announce otherwise)."""
    return {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": str(workers), "DMLC_NODE_HOST": "127.0.0.1",
            "PORT": None}


def ps_lite_jobs(script, work: Workload, workers: int, threads: int, out) -> list:
    """MXNet's parameter-server cluster: a scheduler, one server and ``workers`` workers. The
    scheduler and the server are MXNet itself: importing it with ``DMLC_ROLE`` set to their role
    runs them until the workers are done."""
    port, = launch.free_ports(1)
    node = [python(), "-c", "from rosetta.frameworks import compat; compat.numpy_aliases(); import mxnet"]
    jobs = [launch.Job(role, node, env=ps_lite_env(port, workers, role)) for role in ("scheduler", "server")]
    jobs += [launch.Job(f"worker {i}", [python(), *work.argv(script, "dist_sync", threads, out)],
                        env=ps_lite_env(port, workers, "worker")) for i in range(workers)]
    return jobs


@dataclass
class Run:
    """A finished run: every worker's result, and what the launcher saw."""
    name: str
    results: list
    seconds: float
    isolated: bool
    note: str
    listening: dict

    @property
    def losses(self) -> np.ndarray:
        return global_losses(self.results)

    @property
    def probe(self) -> dict:
        """Rank 0's step timing and memory (the workers wait for each other at every step)."""
        return self.results[0]["probe"]

    def bench(self, n: int):
        samples = self.results[0]["bench"].get(str(n))
        return None if not samples else samples


def run(name: str, jobs, out, timeout: float, isolate: bool = True) -> Run:
    """Run ``jobs`` with :mod:`rosetta.distributed.launch` (logs in ``<out>/logs``) and read their results."""
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    group = launch.run(jobs, out / "logs", timeout, isolate=isolate)
    return Run(name, read_results(out), group.seconds, group.isolated, group.note,
               {k: sorted(v) for k, v in group.listening.items()})


def read_results(out) -> list:
    """Every worker's result in ``out``, by rank; checks that all ranks wrote one."""
    files = sorted(Path(out).glob("rank*.json"))
    results = sorted((json.loads(p.read_text()) for p in files), key=lambda r: r["rank"])
    if not results:
        raise FileNotFoundError(f"no worker wrote a result into {out}: see the workers' logs there")
    world = results[0]["world"]
    if [r["rank"] for r in results] != list(range(world)):
        raise ValueError(f"{out}: expected results of ranks 0..{world - 1}, found {[r['rank'] for r in results]}")
    return results


def global_losses(results) -> np.ndarray:
    """The loss of each global batch: the mean of every shard's mean loss (the shards are equal)."""
    per_step = np.concatenate([np.asarray(r["losses"], np.float64) for r in results], axis=1)
    return per_step.mean(axis=1)


def rel_dev(losses, baseline) -> np.ndarray:
    """Per-step relative deviation of ``losses`` from ``baseline``."""
    a, b = np.asarray(losses, np.float64), np.asarray(baseline, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"runs of different lengths: {a.shape} and {b.shape} losses")
    return np.abs(a - b) / np.abs(b)


# ------------------------------------------------------------------- the scaling model

GB = 1e9
NCCL_H100_LATENCY = ("3 µs per ring step: NCCL's all-reduce of a small message between two H100s over NVLink "
                     "takes about 6 µs, i.e. two steps (https://github.com/NVIDIA/nccl/issues/1259)")


@dataclass(frozen=True)
class Link:
    """A link between workers: bandwidth each way (bytes/s) and latency per ring step (s; None: the
    latency measured here on loopback, i.e. the TCP software path), with where the figures come from."""
    name: str
    bandwidth: float
    latency: float
    bandwidth_source: str
    latency_source: str


LINKS = (
    Link("PCIe 4.0 x16", 31.5 * GB, 3e-6,
         "16 GT/s per lane with 128b/130b encoding, 16 lanes: 31.5 GB/s each way "
         "(https://en.wikipedia.org/wiki/PCI_Express, table of link speeds)", NCCL_H100_LATENCY),
    Link("NVLink 4 (H100)", 450 * GB, 3e-6,
         "900 GB/s per H100 in both directions together, 450 GB/s each way "
         "(https://developer.nvidia.com/blog/introducing-nvidia-hgx-h100-an-accelerated-server-platform-"
         "for-ai-and-high-performance-computing/)", NCCL_H100_LATENCY),
    Link("25 GbE", 25e9 / 8, None,
         "25 Gb/s MAC data rate, full duplex (IEEE 802.3by, https://www.ieee802.org/3/by/)",
         "the TCP latency measured here with gloo on loopback"),
    Link("100 GbE", 100e9 / 8, None,
         "100 Gb/s MAC data rate, full duplex (IEEE 802.3ba, https://www.ieee802.org/3/ba/)",
         "the TCP latency measured here with gloo on loopback"),
)


def ring_allreduce_s(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    """Seconds of a ring all-reduce of ``nbytes`` over ``n`` workers: each worker sends and receives
    2(n-1)/n of the data in 2(n-1) steps, each step paying the link's ``latency``."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def step_time(compute_s: float, n: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Projected seconds of one data-parallel step on ``n`` workers: the compute of one global batch
    split ``n`` ways, then an all-reduce of the gradient that nothing overlaps."""
    return compute_s / n + ring_allreduce_s(nbytes, n, bandwidth, latency)


def fit_link(small_s: float, large_s: float, large_bytes: float, n: int = 2):
    """Latency per ring step and bandwidth of a link, from two all-reduces measured on ``n`` workers:
    a tiny one (latency only) and a large one."""
    steps = 2 * (n - 1)
    latency = small_s / steps
    bandwidth = 2 * (n - 1) / n * large_bytes / max(large_s - small_s, 1e-12)
    return latency, bandwidth
