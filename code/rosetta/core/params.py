"""The knobs every chapter shares, in one place, and their validation.

Chapters take these as papermill parameters and pass them through
:func:`resolve` before any training, so that a bad value fails at once with a
message that names the parameter, what was expected and what was found.
"""
from dataclasses import asdict, dataclass
import os

# Hyper-parameters: the same in every framework
TWO_LAYER_LR = 1e-6
TWO_LAYER_STEPS = 100
LENET_LR = 0.01
LENET_MOMENTUM = 0.9
PARITY_STEPS = 20          # LeNet steps checked against the NumPy reference
TWO_LAYER_TOL = 1e-4       # relative, per step
LENET_TOL = 1e-3           # relative, per step
WARMUP_STEPS = 5           # excluded from step-time statistics, reported on their own

# What quick mode (CI) changes
QUICK = dict(epochs=1, train_subset=2560, test_subset=1000)

DEVICES = ("auto", "cpu", "cuda")
MNIST_TRAIN, MNIST_TEST = 60000, 10000


class ParameterError(ValueError):
    """A chapter parameter has a value the chapter cannot use."""


@dataclass(frozen=True)
class Params:
    device: str
    epochs: int
    batch_size: int
    train_subset: int
    test_subset: int
    seed: int
    quick: bool
    threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def default_threads() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _integer(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise ParameterError(f"parameter {name!r} must be a whole number, got {value!r} "
                                 f"(for example: -p {name} {low})") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ParameterError(f"parameter {name!r} must be {bound}, got {value}")
    return value


def _boolean(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if value in (0, 1):
        return bool(value)
    raise ParameterError(f"parameter {name!r} must be True or False, got {value!r}")


def resolve(device="auto", epochs=3, batch_size=64, train_subset=0, test_subset=0,
            seed=0, quick=False, threads=0) -> Params:
    """Check the chapter parameters and apply quick mode.

    ``train_subset``/``test_subset`` of 0 mean the whole set; ``threads`` of 0
    means every core this process may use. Quick mode caps epochs and subsets
    to :data:`QUICK`.
    """
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ParameterError(f"parameter 'device' must be one of {', '.join(DEVICES)}; got {device!r}")
    quick = _boolean("quick", quick)
    epochs = _integer("epochs", epochs, 1, 100)
    batch_size = _integer("batch_size", batch_size, 1, MNIST_TRAIN)
    train_subset = _integer("train_subset", train_subset, 0, MNIST_TRAIN) or MNIST_TRAIN
    test_subset = _integer("test_subset", test_subset, 0, MNIST_TEST) or MNIST_TEST
    seed = _integer("seed", seed, 0, 2 ** 32 - 1)
    threads = _integer("threads", threads, 0, 1024) or default_threads()
    if quick:
        epochs = min(epochs, QUICK["epochs"])
        train_subset = min(train_subset, QUICK["train_subset"])
        test_subset = min(test_subset, QUICK["test_subset"])
    if train_subset // batch_size < PARITY_STEPS:
        raise ParameterError(
            f"train_subset={train_subset} with batch_size={batch_size} gives {train_subset // batch_size} "
            f"steps per epoch; the parity check needs at least {PARITY_STEPS}: "
            f"raise train_subset to {PARITY_STEPS * batch_size} or lower batch_size")
    return Params(device.lower(), epochs, batch_size, train_subset, test_subset, seed, quick, threads)


def check_inputs(given: dict) -> dict:
    """Check the values a build is given for its chapters, before any chapter runs.

    The parameters every chapter shares go through :func:`resolve` (with the others at their
    defaults); ``records_dirs`` (the comparison's folders of records) through
    :func:`rosetta.core.records.check_folders`. Raises :class:`ParameterError` or
    ``RecordError`` naming the input, what was expected and what to do. Returns ``given``
    with the folders of ``records_dirs`` made absolute (chapters run in ``chapters/``).
    """
    fields = Params.__dataclass_fields__
    shared = {k: v for k, v in given.items() if k in fields}
    if shared:
        resolve(**shared)
    if "records_dirs" in given:
        from rosetta.core import records
        given = dict(given, records_dirs=[str(p.resolve()) for p in records.check_folders(given["records_dirs"])])
    return given
