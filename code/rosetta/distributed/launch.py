"""Start a group of worker processes, wait for them with a timeout, and leave nothing behind.

A data-parallel run is several programs that only work together: if one dies the others
block in their next collective and wait forever. :class:`Group` turns that into an error::

    jobs = [launch.Job("rank 0", [python, "worker.py"], env={"RANK": "0"}), ...]
    with launch.Group(jobs, folder, timeout=120) as group:
        group.wait()          # raises WorkerDied or WorkerHung, naming the worker

* Every job writes its standard output and error to ``<folder>/<job>.log`` and finds its
  name in the environment variable ``ROSETTA_JOB``.
* :meth:`Group.wait` returns when every job has exited with status 0. The first job to
  exit otherwise, or the timeout, stops the whole group, and the error names the job,
  how it ended, and the last lines of its log.
* Closing the group (leaving the ``with`` block, whatever happened) kills every process
  it started: each job's process group, every descendant seen while it ran (torchrun puts
  its workers in sessions of their own), and every process that still carries the
  group's marker in its environment. While the group runs, the calling process adopts
  orphaned descendants (Linux's child sub-reaper), so that they can be reaped, not left
  as zombies. Should the calling thread itself die (a crashed notebook kernel), Linux kills
  the jobs' own programs (``setpriv --pdeathsig``); what they started is beyond reach then.
* ``isolate=True`` runs the jobs in a private network namespace that holds only a
  loopback interface (Linux, needs root: ``unshare --net``): a server that binds every
  interface can then still be reached from this namespace only. Where that is not
  possible the jobs run in the host's namespace and :attr:`Group.note` says why.
* :attr:`Group.listening` lists the addresses each job listened on, sampled while it ran.

Imports no deep-learning framework.
"""
import ctypes
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import psutil

MARKER = "ROSETTA_LAUNCH_ID"
# every job is killed when the thread that started it dies, where util-linux's setpriv is there
_DEATH = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
PR_SET_CHILD_SUBREAPER = 36


class LaunchError(RuntimeError):
    """A group of workers did not finish: one died, or the group ran past its timeout."""


class WorkerDied(LaunchError):
    pass


class WorkerHung(LaunchError):
    pass


class Job:
    """One program of a group: a name for messages and logs, its argv, and environment changes
    (a value of ``None`` removes the variable)."""

    def __init__(self, name: str, argv, env=None):
        self.name, self.argv, self.env = name, [str(a) for a in argv], dict(env or {})
        self.proc = self.log = self.started = self.ended = None

    def __repr__(self):
        return f"Job({self.name!r}, pid={self.proc.pid if self.proc else None})"


def free_ports(n: int = 1, host: str = "127.0.0.1") -> list:
    """``n`` distinct TCP ports that are free on ``host`` right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty)"


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def marked_processes(marker: str) -> list:
    """Live processes (zombies excluded) whose environment holds ``ROSETTA_LAUNCH_ID=marker``."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _hex_address(text: str) -> tuple:
    """('0100007F:1F90') -> ('127.0.0.1', 8080), IPv4 or IPv6 as /proc/net/tcp* writes them."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    # the kernel prints each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw), int(port, 16)


def listening_sockets(pid: int) -> set:
    """(address, port) of the TCP sockets process ``pid`` listens on, read from its own view of
    the network (``/proc/<pid>/net``), so that it works inside another network namespace."""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        found = set()
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:      # 0A: LISTEN
                        found.add(_hex_address(cols[1]))
        return found
    except OSError:
        return set()


class Namespace:
    """A private network namespace with a loopback interface, held open by a sleeping process."""

    def __init__(self, env):
        self.holder, self.note = None, ""
        if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
            self.note = "unshare, nsenter or ip is not installed"
            return
        try:
            self.holder = subprocess.Popen(_DEATH + ["unshare", "--net", "--", "sleep", "infinity"], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           start_new_session=True)
            own = os.readlink("/proc/self/ns/net")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.holder.poll() is None:
                if os.readlink(f"/proc/{self.holder.pid}/ns/net") != own:
                    break
                time.sleep(0.01)
            if self.holder.poll() is not None:
                raise OSError(self.holder.stderr.read().decode(errors="replace").strip() or "unshare failed")
            up = subprocess.run(self.prefix() + ["ip", "link", "set", "lo", "up"], capture_output=True,
                                text=True, timeout=10)
            if up.returncode != 0:
                raise OSError(up.stderr.strip() or "ip link set lo up failed")
        except (OSError, subprocess.SubprocessError) as err:
            self.note = f"no private network namespace ({str(err).splitlines()[-1]})"
            self.close()

    @property
    def ok(self) -> bool:
        return self.holder is not None

    def prefix(self) -> list:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--"] if self.ok else []

    def close(self):
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
            self.holder.stderr.close()
            self.holder = None


class Group:
    """Jobs that run together and end together; see the module's docstring."""

    def __init__(self, jobs, folder, timeout: float, isolate: bool = True, poll_s: float = 0.05):
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be distinct, got {names}")
        self.jobs, self.folder, self.timeout, self.poll_s = list(jobs), Path(folder), float(timeout), poll_s
        self.isolate = isolate
        self.marker = uuid.uuid4().hex
        self.namespace = None
        self.isolated, self.note = False, "isolation not requested" if not isolate else ""
        self.listening = {j.name: set() for j in self.jobs}
        self.seen = {}                # pid -> (create_time, job name) of every process seen
        self.started = self.seconds = None
        self._subreaper = False

    # ------------------------------------------------------------------ start and wait

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _env(self, job):
        env = dict(os.environ)
        env[MARKER] = self.marker
        env["ROSETTA_JOB"] = job.name            # a worker may report which job it was started as
        env["PYTHONUNBUFFERED"] = "1"
        for k, v in job.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self._subreaper = sys.platform.startswith("linux") and _prctl(PR_SET_CHILD_SUBREAPER, 1)
        base = dict(os.environ, **{MARKER: self.marker})
        if self.isolate:
            self.namespace = Namespace(base)
            self.isolated, self.note = self.namespace.ok, self.namespace.note or "private network namespace"
        prefix = _DEATH + (self.namespace.prefix() if self.namespace else [])
        self.started = time.monotonic()
        try:
            for job in self.jobs:
                job.log = self.folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", job.name) + ".log")
                with open(job.log, "wb") as log:
                    job.proc = subprocess.Popen(prefix + job.argv, env=self._env(job), cwd=self.folder,
                                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
                job.started = time.monotonic()
        except BaseException:
            self.close()
            raise
        return self

    def pids(self) -> dict:
        """Job name -> pid of the program it started."""
        return {j.name: j.proc.pid for j in self.jobs if j.proc}

    def _observe(self, sockets: bool):
        for job in self.jobs:
            if job.proc is None or job.proc.poll() is not None:
                continue
            try:
                root = psutil.Process(job.proc.pid)
                family = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            for p in family:
                try:
                    self.seen.setdefault(p.pid, (p.create_time(), job.name))
                except psutil.Error:
                    continue
                if sockets:
                    self.listening[job.name].update(listening_sockets(p.pid))

    def wait(self) -> dict:
        """Block until every job has exited with status 0; returns job name -> seconds it ran.

        Raises :class:`WorkerDied` for the first job that exits otherwise and
        :class:`WorkerHung` when the group runs past its timeout; either way the whole
        group is stopped first.
        """
        last_sockets = 0.0
        while True:
            now = time.monotonic()
            sockets = now - last_sockets > 0.5
            self._observe(sockets)
            last_sockets = now if sockets else last_sockets
            for job in self.jobs:
                code = job.proc.poll()
                if code is not None and job.ended is None:
                    job.ended = time.monotonic()
                if code not in (None, 0):
                    others = [j.name for j in self.jobs if j is not job and j.proc.poll() is None]
                    self.close()
                    raise WorkerDied(
                        f"worker {job.name!r} (pid {job.proc.pid}) {_how(code)} "
                        f"{job.ended - self.started:.1f} s after the start; "
                        f"stopped the others still running: {', '.join(others) or 'none'}. "
                        f"Its log {job.log} ends with:\n{_tail(job.log)}")
            if all(j.proc.poll() == 0 for j in self.jobs):
                self.seconds = time.monotonic() - self.started
                self.close()
                return {j.name: (j.ended or time.monotonic()) - j.started for j in self.jobs}
            if now - self.started > self.timeout:
                hung = [j for j in self.jobs if j.proc.poll() is None]
                self.close()
                detail = "\n".join(f"  {j.name!r} (pid {j.proc.pid}), log {j.log}:\n{_tail(j.log, 6)}" for j in hung)
                raise WorkerHung(
                    f"the group ran past its timeout of {self.timeout:.0f} s; still running and now stopped: "
                    f"{', '.join(repr(j.name) for j in hung)} (hung, or waiting for a worker that is):\n{detail}")
            time.sleep(self.poll_s)

    # ------------------------------------------------------------------ cleanup

    def _kill_all(self):
        for job in self.jobs:          # each job's process group, even after its leader has exited
            if job.proc is not None:
                try:
                    os.killpg(job.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        for pid, (created, _) in list(self.seen.items()):
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 1e-3:
                    p.kill()
            except (psutil.Error, OSError):
                continue
        for pid in marked_processes(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _reap(self, deadline: float):
        """Collect the exit status of our direct children and of the orphans we adopted."""
        for job in self.jobs:
            if job.proc is not None:
                try:
                    job.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for pid in list(self.seen):
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:            # not our child (its parent reaps it), or already reaped
                pass

    def survivors(self) -> list:
        """Processes of this group that are still alive (zombies not counted)."""
        alive = set(marked_processes(self.marker))
        for pid, (created, _) in self.seen.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.Error:
                continue
        return sorted(alive)

    def close(self):
        """Kill and reap every process of the group; idempotent."""
        deadline = time.monotonic() + 10
        while True:
            self._kill_all()
            self._reap(deadline)
            left = self.survivors()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if self.namespace is not None:
            self.namespace.close()
        if self._subreaper:
            time.sleep(0.05)
            self._reap(time.monotonic())
            _prctl(PR_SET_CHILD_SUBREAPER, 0)
            self._subreaper = False
        if left:
            raise LaunchError(f"processes {left} of the group survived SIGKILL for 10 s; "
                              f"kill them by hand (kill -9 {' '.join(map(str, left))})")


def run(jobs, folder, timeout: float, isolate: bool = True) -> Group:
    """Start ``jobs`` as one :class:`Group`, wait for them, clean up; returns the finished group."""
    with Group(jobs, folder, timeout, isolate) as group:
        group.wait()
    return group
