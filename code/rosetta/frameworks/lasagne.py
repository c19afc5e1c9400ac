"""What the Lasagne appendix needs beyond Lasagne itself: three import shims on Theano-PyMC, quietly.

Lasagne 0.1 (2015, its only release on PyPI) was written against Theano 0.7. Theano-PyMC
1.1.2, the Theano the book uses, changed two names it imports:

* ``theano.sandbox.rng_mrg.MRG_RandomStreams`` is now ``MRG_RandomStream`` (Lasagne's
  dropout layer imports the old name);
* ``theano.tensor.signal.downsample`` is gone; its ``max_pool_2d(input, ds, ignore_border,
  st, padding)`` became ``pool.pool_2d(input, ws, ignore_border, stride, pad)``.

A third name went missing outside Theano: Lasagne reads its version with
``pkg_resources.get_distribution``, and setuptools 81 removed ``pkg_resources``; where the
function is absent (no ``pkg_resources``, or the stand-in Theano got), the one of
:func:`rosetta.frameworks.compat.pkg_resources_stub` is added.

:func:`import_lasagne` sets Theano's flags (float32, a compile cache), adds the old names
back where they are missing, and imports Lasagne. Call it after
:func:`rosetta.core.threads.pin`.
"""
import sys
import types
import warnings


def _downsample_module(pool):
    def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
        """Theano 0.7's signature, answered by Theano-PyMC's ``pool_2d``."""
        return pool.pool_2d(input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding, mode=mode)

    module = types.ModuleType("theano.tensor.signal.downsample")
    module.max_pool_2d = max_pool_2d
    module.__doc__ = "Shim (rosetta.frameworks.lasagne): Theano 0.7's downsample module on Theano-PyMC's pool module."
    return module


def shims() -> list:
    """Add the names Lasagne 0.1 imports where they are missing; returns those added."""
    import theano.sandbox.rng_mrg as rng_mrg
    import theano.tensor.signal as signal
    from theano.tensor.signal import pool

    added = []
    if not hasattr(rng_mrg, "MRG_RandomStreams"):
        rng_mrg.MRG_RandomStreams = rng_mrg.MRG_RandomStream
        added.append("theano.sandbox.rng_mrg.MRG_RandomStreams")
    if "theano.tensor.signal.downsample" not in sys.modules:
        signal.downsample = sys.modules["theano.tensor.signal.downsample"] = _downsample_module(pool)
        added.append("theano.tensor.signal.downsample")
    from rosetta.frameworks import compat
    added += compat.pkg_resources_stub(["get_distribution"])
    return added


def import_lasagne(compiledir):
    """Theano's flags (float32, compile cache in ``compiledir``, OpenBLAS), the shims, then ``import lasagne``.

    Returns ``(theano, lasagne, shims_added)``.
    """
    from rosetta.frameworks import compat
    compat.theano_flags(str(compiledir), blas_ldflags="-lopenblas")   # Debian's OpenBLAS (make system-deps)
    # Lasagne 0.1 passes conv2d's old keyword `image_shape`; Theano-PyMC accepts it and warns at every layer
    warnings.filterwarnings("ignore", message="The `image_shape` keyword argument", category=UserWarning)
    with warnings.catch_warnings():
        # Theano-PyMC's own import-time notices (deprecated NumPy/SciPy names), not the reader's code
        warnings.simplefilter("ignore")
        import theano
        added = shims()
        import lasagne
    return theano, lasagne, added
