"""Does a lock file resolve, `pip check` clean, without installing it? (`make gpu-lock-check`)

The GPU environments (``requirements-gpu.txt``, ``envs/requirements-mxnet-gpu.txt``) hold
CUDA wheels of several GiB that a machine without a GPU has no use for. :func:`resolve` asks
pip to resolve a lock file against the package index without installing anything
(``pip install --dry-run --ignore-installed --report``); :func:`check` then does what
``pip check`` does on an installed environment, on the resolved set: every requirement of every
package (its environment markers evaluated for this interpreter and platform) is met by the
version that was resolved. The local pip configuration (a wheel folder, constraints, extra
indexes; in files or ``PIP_*`` variables) is left out, so the answer is PyPI's.
"""
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


# pip settings that point at this machine's own wheels or caps instead of the package index
LOCAL_PIP = ("PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX")


def resolve(requirements, python=sys.executable) -> dict:
    """pip's installation report for ``requirements`` (a lock file), resolved but not installed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {k: v for k, v in os.environ.items() if k not in LOCAL_PIP}
        env["PIP_CONFIG_FILE"] = os.devnull
        res = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                              "--report", str(report), "-r", str(requirements)],
                             env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{requirements} does not resolve:\n{res.stderr[-3000:]}")
        return json.loads(report.read_text())


def check(report) -> list:
    """`pip check` on a resolved set: every unmet or conflicting requirement, as text."""
    versions, extras_of = {}, {}
    for item in report["install"]:
        meta = item["metadata"]
        versions[canonicalize_name(meta["name"])] = Version(meta["version"])
        extras_of[canonicalize_name(meta["name"])] = set(item.get("requested_extras") or ())
    env = default_environment()
    problems = []
    for item in report["install"]:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        for text in meta.get("requires_dist") or ():
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({**env, "extra": e})
                                      for e in (extras_of[name] or {""})):
                continue
            dep = canonicalize_name(req.name)
            if dep not in versions:
                problems.append(f"{meta['name']} {meta['version']} requires {req}, which is not installed")
            elif req.specifier and not req.specifier.contains(versions[dep], prereleases=True):
                problems.append(f"{meta['name']} {meta['version']} has requirement {req}, but {versions[dep]} is resolved")
    return problems


def main(argv=None) -> int:
    files = argv if argv is not None else sys.argv[1:]
    failed = False
    for path in files:
        report = resolve(path)
        problems = check(report)
        print(f"{path}: {len(report['install'])} packages resolve; pip check: "
              + ("no broken requirements" if not problems else f"{len(problems)} problem(s)"))
        for p in problems:
            print("  " + p)
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
