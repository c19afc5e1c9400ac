"""Helpers shared by the chapters of The Deep Learning Rosetta Stone, in layers:

* ``rosetta.core``: data, weights, the NumPy reference, parameters, timing, memory, records,
  the training loop (NumPy only);
* ``rosetta.frameworks``: one module per framework behind the same small interface, and the
  shims that let the retired frameworks import;
* ``rosetta.compare``: the comparison's tables, charts and verdicts, from records;
* ``rosetta.distributed``: worker processes and the data-parallel recipes;
* ``rosetta.book``: the build, the Colab copies and the Sphinx extension.
"""
import os
from pathlib import Path

__version__ = "0.1.0"


def repo_root() -> Path:
    """The book's root folder (where ``_toc.yml`` lies).

    Found from ``ROSETTA_ROOT`` if set, else by walking up from the current
    folder, else from this file's location (editable install).
    """
    env = os.environ.get("ROSETTA_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "_toc.yml").is_file() and (folder / "data").is_dir():
                return folder
    raise FileNotFoundError(
        "cannot find the book's root folder (the one holding _toc.yml and data/): "
        "run from inside the repository or set ROSETTA_ROOT"
    )
