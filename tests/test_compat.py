"""The shims for the retired frameworks: minimal, idempotent, and enough to import them."""
import subprocess
import sys

import numpy as np

from rosetta.frameworks import compat


def test_aliases_are_added_only_where_absent(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(np, "float", sentinel, raising=False)
    for name in ("int", "bool", "complex"):
        monkeypatch.delattr(np, name, raising=False)
    restored = compat.numpy_aliases()
    assert {"int", "bool", "complex"} <= set(restored) and "float" not in restored
    assert np.float is sentinel and np.int is int and np.bool is bool
    assert compat.numpy_aliases() == []


def test_theano_flags_put_the_cache_where_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("THEANO_FLAGS", raising=False)
    flags = compat.theano_flags(tmp_path / "theano")
    assert "floatX=float32" in flags and f"base_compiledir={tmp_path / 'theano'}" in flags
    assert "openmp=False" in flags and (tmp_path / "theano").is_dir()


def test_mxnet_and_theano_import_and_compute_after_the_shims(tmp_path):
    code = f"""
import warnings
from rosetta.frameworks import compat
compat.numpy_aliases()
import mxnet as mx
assert mx.nd.ones((2, 2)).sum().asscalar() == 4
compat.theano_flags({str(tmp_path / 'theano')!r})
import theano, theano.tensor as T
x = T.matrix()
f = theano.function([x], (2 * x).sum())
import numpy as np
assert f(np.ones((2, 2), dtype='float32')) == 8
print('ok', mx.__version__, theano.__version__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", "1.9.1", "1.1.2"]
