"""Putting files and folders in place whole: a reader sees the previous version or the new one,
never half of one, and a writer that fails leaves nothing behind.

This module imports nothing but the standard library and runs on Python 3.6 (CNTK's environment
imports it).
"""
import os
from pathlib import Path
import shutil


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: into a temporary file beside it, flushed to disk, then
    renamed over ``path``. The folder must exist. Returns ``path``."""
    path = Path(path)
    tmp = path.with_name(".{}.{}.tmp".format(path.name, os.getpid()))
    try:
        with open(str(tmp), "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    return path


def replace_dir(new, final) -> Path:
    """Put the finished folder ``new`` in the place of ``final`` (which may not exist); the old
    ``final`` is removed. Both must be on the same file system. Returns ``final``."""
    new, final = Path(new), Path(final)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(str(old), ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(str(old), ignore_errors=True)
    return final
