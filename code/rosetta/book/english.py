"""Counts said in English: "1 epoch", "3 epochs", "once", never "epoch(s)"."""
import numbers


def count(n, noun: str, plural: str = "") -> str:
    """``n`` followed by ``noun`` in the singular for 1 and the plural otherwise.

    The plural is ``noun + "s"`` unless given: ``count(2, "process", "processes")``.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or n != n:
        raise TypeError(f"count of {noun!r}: expected a number, got {n!r}")
    shown = int(n) if float(n).is_integer() else n
    return f"{shown} {noun if shown == 1 else plural or noun + 's'}"


def times(n) -> str:
    """How often something happened: "once", "twice", "3 times"."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise TypeError(f"times: expected a count (an int of 0 or more), got {n!r}")
    return {1: "once", 2: "twice"}.get(int(n), f"{int(n)} times")
