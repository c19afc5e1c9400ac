"""Parameters are checked before any training, with messages that say what to fix."""
import pytest

from rosetta.core import params
from rosetta.core.params import ParameterError


def test_defaults_and_quick_mode():
    full = params.resolve()
    assert (full.epochs, full.train_subset, full.test_subset, full.batch_size) == (3, 60000, 10000, 64)
    assert full.threads == params.default_threads()
    quick = params.resolve(quick=True, epochs=5)
    assert (quick.epochs, quick.train_subset, quick.test_subset) == (1, 2560, 1000)
    assert params.resolve(quick="true", train_subset="1280").train_subset == 1280


@pytest.mark.parametrize("kwargs, message", [
    (dict(device="tpu"), "'device' must be one of auto, cpu, cuda"),
    (dict(epochs=0), "'epochs' must be between 1 and 100, got 0"),
    (dict(epochs="three"), "'epochs' must be a whole number, got 'three'"),
    (dict(epochs=2.5), "'epochs' must be a whole number"),
    (dict(batch_size=-1), "'batch_size' must be between 1 and 60000"),
    (dict(train_subset=70000), "'train_subset' must be between 0 and 60000"),
    (dict(test_subset=-5), "'test_subset' must be between 0 and 10000"),
    (dict(seed=-1), "'seed' must be between 0"),
    (dict(quick="maybe"), "'quick' must be True or False"),
    (dict(threads=True), "'threads' must be a whole number"),
    (dict(train_subset=640), "gives 10 steps per epoch; the parity check needs at least 20"),
])
def test_bad_values_are_refused_clearly(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        params.resolve(**kwargs)
