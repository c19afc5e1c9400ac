"""Where the book's folders are: the build, its records, the data kept in the repository and the
extra environments. Every module finds a folder through these functions, so that the rule for each
is written once. The repository's own root is :func:`rosetta.repo_root`.

The build (``rosetta-build``) sets ``ROSETTA_BUILD`` and ``ROSETTA_RECORDS`` for each chapter it
executes; outside it, the build folder is ``<repository>/_build``. This module imports nothing
but the standard library and runs on Python 3.6 (CNTK's environment imports it).
"""
import os
from pathlib import Path

ENVS = ".envs"


def build_dir() -> Path:
    """The build folder: ``ROSETTA_BUILD``, else ``<repository>/_build``."""
    from rosetta import repo_root
    env = os.environ.get("ROSETTA_BUILD")
    return Path(env) if env else repo_root() / "_build"


def records_dir() -> Path:
    """Where this run's records go: ``ROSETTA_RECORDS`` (the chapter's folder in the build), else
    ``<build folder>/records``."""
    env = os.environ.get("ROSETTA_RECORDS")
    return Path(env) if env else build_dir() / "records"


def data_dir() -> Path:
    """The data kept in the repository (MNIST, the committed records): ``<repository>/data``."""
    from rosetta import repo_root
    return repo_root() / "data"


def env_dir(name: str) -> Path:
    """The extra environment ``name`` (``<repository>/.envs/<name>``, built by ``envs/<name>.mk``)."""
    from rosetta import repo_root
    return repo_root() / ENVS / name
