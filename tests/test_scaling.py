"""The scaling chapter: each engine's 2-worker run takes the single process's steps, and the
launcher turns a dead or hung worker into an error and leaves no process behind.

The worker programs are the chapter's own (its ``%%writefile`` cells), run here for a few steps.
"""
import os
import re
import signal
import time

import jupytext
import numpy as np
import psutil
import pytest

from rosetta.distributed import launch, scaling
from rosetta.core import mnist, params, records, weights

from conftest import ROOT

STEPS = 10                  # more than the warm-up, enough for the scale of the gradient to show
TIMEOUT = 240


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    """The chapter's worker programs written to a temporary folder, and a small data file."""
    folder = tmp_path_factory.mktemp("scaling")
    scripts = {}
    for cell in jupytext.read(ROOT / "chapters" / "scaling.md").cells:
        m = re.match(r"%%writefile \{work\}/(\S+)\n", cell.source)
        if cell.cell_type == "code" and m:
            scripts[m.group(1)] = folder / m.group(1)
            scripts[m.group(1)].write_text(cell.source[m.end():])
    assert set(scripts) == {"pt_ddp.py", "tf_dp.py", "mx_dp.py"}
    x, y, _, _ = mnist.load()
    data = scaling.save_data(x[:2560], y[:2560], folder / "mnist.npz")
    return folder, scripts, data


@pytest.fixture(scope="module")
def window(chapter):
    """The first steps over which float32 runs of one program can be held equal on this data."""
    from rosetta.core import reference, weights
    d = np.load(chapter[2])
    idx = weights.batch_indices(0, 0, len(d["x"]), 64)[:STEPS]
    relu = reference.lenet_margins(weights.lenet(0), [(d["x"][i], d["y"][i]) for i in idx],
                                   params.LENET_LR, params.LENET_MOMENTUM)["relu"]
    return scaling.equivalence_steps(relu, STEPS)


def workload(chapter, steps=STEPS, bench_reps=2):
    return scaling.Workload(steps=steps, batch_size=64, seed=0, data=chapter[2], bench_reps=bench_reps)


def run(chapter, name, make_jobs, script, *args, steps=STEPS):
    folder, scripts, _ = chapter
    out = folder / "runs" / name
    return scaling.run(name, make_jobs(scripts[script], workload(chapter, steps), *args, out), out, TIMEOUT)


_alone = {}


def alone(chapter, script):
    """The worker program trained by one process with one thread (run once per module)."""
    if script not in _alone:
        _alone[script] = run(chapter, f"{script}_single", scaling.single_jobs, script, "single", 1)
    return _alone[script]


def assert_no_process_left(group):
    assert launch.marked_processes(group.marker) == []
    assert group.survivors() == []
    for pid, (created, _) in group.seen.items():
        try:
            p = psutil.Process(pid)
            assert abs(p.create_time() - created) > 1e-3 or p.status() == psutil.STATUS_ZOMBIE, \
                f"process {pid} of the group is still alive"
        except psutil.NoSuchProcess:
            pass


# ----------------------------------------------------------------- equivalence per engine

ENGINES = {
    "pytorch": ("pt_ddp.py", [(scaling.torchrun_jobs, 2, 1)]),
    "tensorflow": ("tf_dp.py", [(scaling.tf_cluster_jobs, 2, 1), (scaling.single_jobs, "mirrored", 2)]),
    "mxnet": ("mx_dp.py", [(scaling.ps_lite_jobs, 2, 1), (scaling.single_jobs, "device", 1)]),
}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_two_workers_take_the_single_process_steps(chapter, window, engine):
    script, distributed = ENGINES[engine]
    single = alone(chapter, script)
    assert single.results[0]["world"] == 1 and single.losses.shape == (STEPS,)
    assert np.all(np.isfinite(single.losses)) and single.losses[-1] < single.losses[0]
    for make_jobs, *args in distributed:
        dist = run(chapter, f"{engine}_{make_jobs.__name__}_{args[0]}", make_jobs, script, *args)
        shards = sum(len(r["losses"][0]) for r in dist.results)
        assert shards == 2, f"{engine}: {shards} shards per step, expected 2"
        dev = scaling.check_equivalent(dist.losses, single.losses, f"{engine} {make_jobs.__name__}", steps=window)
        assert dev <= scaling.EQUIVALENCE_TOL
        assert len(dist.bench(scaling.LENET_GRADIENT_FLOATS)) == 2        # the exchange was timed
        if dist.isolated:
            assert dist.note == "private network namespace"


def test_equivalence_window_ends_at_the_first_float32_decision():
    """The window covers the first steps up to the first near-tie of a ReLU, that step included."""
    assert scaling.equivalence_steps([1e-3, 2e-5, 5e-7, 1e-8]) == 3
    assert scaling.equivalence_steps([1e-3] * 20) == scaling.EQUIVALENCE_STEPS
    assert scaling.equivalence_steps([1e-9]) == 1


def test_a_wrong_gradient_scale_is_caught(chapter, window):
    """MXNet told the slice's batch size instead of the global one: the check must fail."""
    def wrong(script, work, mode, threads, out):
        jobs = scaling.single_jobs(script, work, mode, threads, out)
        jobs[0].argv += ["--step-size", "32"]
        return jobs
    bad = run(chapter, "mx_wrong_scale", wrong, "mx_dp.py", "device", 1)
    with pytest.raises(scaling.EquivalenceError, match="gradient scale"):
        scaling.check_equivalent(bad.losses, alone(chapter, "mx_dp.py").losses, "mxnet wrong scale", steps=window)


# ------------------------------------------------------------------ a worker killed mid-run

def start_long_run(chapter, name, make_jobs, script, *args):
    folder, scripts, _ = chapter
    out = folder / "runs" / name
    jobs = make_jobs(scripts[script], workload(chapter, steps=2000, bench_reps=0), *args, out)
    return launch.Group(jobs, out / "logs", timeout=TIMEOUT).start()


def wait_for_step(group, job_name, step=3, within=180):
    log = next(j.log for j in group.jobs if j.name == job_name)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if re.search(rf"^step {step} ", log.read_text(errors="replace"), re.M):
            return
        for j in group.jobs:
            assert j.proc.poll() is None, f"{j.name} ended early:\n{j.log.read_text()[-3000:]}"
        time.sleep(0.2)
    pytest.fail(f"{job_name} did not reach step {step} in {within} s")


def rank_process(group, job_name, rank):
    """The process of ``job_name`` (or one of its descendants) whose environment says RANK=rank."""
    root = psutil.Process(next(j.proc.pid for j in group.jobs if j.name == job_name))
    for p in [root] + root.children(recursive=True):
        with open(f"/proc/{p.pid}/environ", "rb") as f:
            if f"RANK={rank}".encode() in f.read().split(b"\0"):
                return p.pid
    pytest.fail(f"no process with RANK={rank} under {job_name}")


KILLS = {   # engine: (how to start it, the job whose log shows progress, how to find the victim)
    "pytorch": ((scaling.torchrun_jobs, "pt_ddp.py", 2, 1), "torchrun", lambda g: rank_process(g, "torchrun", 1)),
    "tensorflow": ((scaling.tf_cluster_jobs, "tf_dp.py", 2, 1), "worker 1", lambda g: g.pids()["worker 1"]),
    "mxnet": ((scaling.ps_lite_jobs, "mx_dp.py", 2, 1), "worker 1", lambda g: g.pids()["worker 1"]),
}


DEATHS = {"pytorch": r"worker 'torchrun' \(pid \d+\) exited with status 1",    # its log names the signal
          "tensorflow": r"worker 'worker 1' \(pid \d+\) was killed by SIGKILL",
          "mxnet": r"worker 'worker 1' \(pid \d+\) was killed by SIGKILL"}


@pytest.mark.parametrize("engine", list(KILLS))
def test_a_killed_worker_is_a_clear_error_and_nothing_survives(chapter, engine):
    (make_jobs, script, *args), progress_job, victim = KILLS[engine]
    group = start_long_run(chapter, f"{engine}_killed", make_jobs, script, *args)
    try:
        wait_for_step(group, progress_job)
        pid = victim(group)
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(launch.WorkerDied) as err:
            group.wait()
        assert time.monotonic() - t0 < 60, "the death was noticed only after a minute"
    finally:
        group.close()
    message = str(err.value)
    assert re.search(DEATHS[engine], message), message
    assert "SIGKILL" in message and ".log ends with" in message
    assert_no_process_left(group)


# ------------------------------------------------------------------ the launcher on its own

def py(code):
    return [scaling.python(), "-c", code]


def test_a_hung_group_times_out_and_its_detached_children_die(tmp_path):
    jobs = [launch.Job("detaches a child", py(
                "import subprocess, time; subprocess.Popen(['sleep', '3600'], start_new_session=True); time.sleep(3600)")),
            launch.Job("sleeps", py("import time; time.sleep(3600)"))]
    group = launch.Group(jobs, tmp_path, timeout=3)
    t0 = time.monotonic()
    with pytest.raises(launch.WorkerHung, match=r"timeout of 3 s.*'detaches a child'.*'sleeps'"):
        with group:
            group.wait()
    assert 3 <= time.monotonic() - t0 < 20
    assert len(group.seen) >= 3
    assert_no_process_left(group)


def test_an_orphan_left_by_a_dead_worker_is_killed(tmp_path):
    code = ("import subprocess, sys, time; subprocess.Popen(['sleep', '3600'], start_new_session=True); "
            "time.sleep(1); print('bye'); sys.exit(3)")
    group = launch.Group([launch.Job("leaves an orphan", py(code)), launch.Job("waits", py("import time; time.sleep(60)"))],
                         tmp_path, timeout=60)
    with pytest.raises(launch.WorkerDied, match=r"'leaves an orphan' \(pid \d+\) exited with status 3(.|\n)*bye"):
        with group:
            group.wait()
    assert_no_process_left(group)


def test_isolation_and_listening_sockets(tmp_path):
    code = ("import os, socket, time; s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(); "
            "print(sorted(name for _, name in socket.if_nameindex())); time.sleep(1.5)")
    group = launch.run([launch.Job("listens", py(code))], tmp_path, timeout=60)
    assert [host for host, _ in group.listening["listens"]] == ["0.0.0.0"]
    interfaces = (tmp_path / "listens.log").read_text().strip()
    if group.isolated:
        assert interfaces == "['lo']"
    else:
        assert group.note and group.note != "private network namespace"
    assert_no_process_left(group)


def test_without_a_namespace_the_jobs_run_in_the_host_network(tmp_path, monkeypatch):
    real_which = launch.shutil.which
    monkeypatch.setattr(launch.shutil, "which", lambda name: None if name == "unshare" else real_which(name))
    code = "import socket; print(sorted(name for _, name in socket.if_nameindex()))"
    group = launch.run([launch.Job("looks", py(code))], tmp_path, timeout=60)
    assert not group.isolated and "not installed" in group.note
    assert (tmp_path / "looks.log").read_text().strip() == str(sorted(n for _, n in __import__("socket").if_nameindex()))
    assert_no_process_left(group)


def test_the_scaling_model():
    g = 4 * scaling.LENET_GRADIENT_FLOATS
    assert scaling.ring_allreduce_s(g, 1, 1e9, 1e-5) == 0
    assert scaling.ring_allreduce_s(g, 2, 1e9, 0) == pytest.approx(g / 1e9)
    assert scaling.ring_allreduce_s(g, 8, 1e9, 1e-5) == pytest.approx(1.75 * g / 1e9 + 14e-5)
    latency, bandwidth = scaling.fit_link(2e-4, 2e-4 + g / 1e9, g, n=2)
    assert latency == pytest.approx(1e-4) and bandwidth == pytest.approx(1e9)
    assert scaling.LENET_GRADIENT_FLOATS == weights.lenet_parameter_count()
    for link in scaling.LINKS:
        assert link.bandwidth > 1e9 and "http" in link.bandwidth_source


# ------------------------------------------------------------------ the chapter in the quick book

VARIANTS = {("pytorch", "single_1t"), ("pytorch", "single_all"), ("pytorch", "ddp"),
            ("tensorflow", "single_1t"), ("tensorflow", "single_all"), ("tensorflow", "mirrored"),
            ("tensorflow", "multi_worker"), ("mxnet", "single_1t"), ("mxnet", "single_all"),
            ("mxnet", "kvstore_device"), ("mxnet", "dist_sync")}


def test_chapter_records_every_engine(quick_book):
    res = quick_book.chapter("scaling")
    assert res.ok, f"chapter scaling failed in quick mode: {res.error} (see {res.notebook})"
    recs = [records.read(p) for p in res.records]
    assert {(r["framework"], r["variant"]) for r in recs} == VARIANTS
    for r in recs:
        assert r["model"] == "lenet_dp" and len(r["losses"]) == scaling.QUICK_STEPS
        assert r["parity"]["steps"] == params.PARITY_STEPS and not r["parity"]["gates"]
        assert r["parity"]["passed"] == (r["parity"]["max_rel_dev"] <= params.LENET_TOL)
        assert 1 <= r["extra"]["equivalence_steps"] <= scaling.EQUIVALENCE_STEPS
        assert r["extra"]["max_rel_dev_vs_single_first"] <= scaling.EQUIVALENCE_TOL
        assert r["timing"]["n"] == scaling.QUICK_STEPS - params.WARMUP_STEPS
        if r["variant"] in ("ddp", "multi_worker", "dist_sync"):
            assert r["extra"]["processes"] == 2 and r["extra"]["exchange"]
