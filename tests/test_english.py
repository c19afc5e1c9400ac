"""Counts said in English (rosetta.book.english): no "(s)" plurals on a page."""
import numpy as np
import pytest

from rosetta.book import english


def test_count_agrees_with_its_number():
    assert english.count(1, "epoch") == "1 epoch"
    assert english.count(3, "epoch") == "3 epochs"
    assert english.count(0, "thread") == "0 threads"
    assert english.count(np.int64(2), "process", "processes") == "2 processes"
    assert english.count(1.0, "epoch") == "1 epoch"
    assert english.count(2.5, "second") == "2.5 seconds"


def test_times():
    assert [english.times(n) for n in (0, 1, 2, 7)] == ["0 times", "once", "twice", "7 times"]


@pytest.mark.parametrize("bad", [None, "3", True, float("nan")])
def test_count_refuses_what_is_not_a_number(bad):
    with pytest.raises(TypeError, match="count of 'epoch': expected a number"):
        english.count(bad, "epoch")


def test_times_refuses_what_is_not_a_count():
    with pytest.raises(TypeError, match="times: expected a count"):
        english.times(1.5)
