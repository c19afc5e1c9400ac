"""How to choose (rosetta.compare.choose) on FIXTURE record sets: records made by
test_verdicts.fixture_record from synthetic values in pytest's tmp_path, never in data/records/."""
import math

import pandas as pd
import pytest

from rosetta.compare import choose, tables as compare, verdicts

from test_verdicts import fixture_record, folder, load

COLAB = {"pytorch": "native", "tensorflow": "native", "jax": "native", "pytensor": "native",
         "mxnet": "python311", "theano": "python311"}


def measured(tmp_path):
    df = load(tmp_path)
    main, _ = verdicts.comparable_runs(df)
    return compare.speed_table(main), compare.memory_table(main)


@pytest.fixture
def book(tmp_path):
    """FIXTURE: LeNet main runs; a retired framework fastest, two maintained ones level, and a
    float64 run and a speed-switch run that would win if they counted; Keras on TensorFlow level
    with both, which is not one of the frameworks to choose from."""
    fixture_record(folder(tmp_path, "mxnet"), "mxnet", median=0.010, rss=300)
    fixture_record(folder(tmp_path, "pytorch"), "pytorch", median=0.020, iqr=0.004, rss=150)
    fixture_record(folder(tmp_path, "tensorflow"), "tensorflow", median=0.021, iqr=0.004, rss=120)
    fixture_record(folder(tmp_path, "theano"), "theano", median=0.050, rss=90)
    fixture_record(folder(tmp_path, "pytorch"), "pytorch", variant="float64", median=0.001, rss=5,
                   dtype="float64")
    fixture_record(folder(tmp_path, "tensorflow"), "tensorflow", variant="xla", median=0.002, rss=6,
                   speed_setting="xla")
    fixture_record(folder(tmp_path, "appendix_keras"), "keras-tensorflow", median=0.0205, iqr=0.004)
    return measured(tmp_path)


def test_table_ranks_comparable_runs_only(book):
    speed, memory = book
    t = choose.table(speed, memory, COLAB).set_index("framework")
    assert t.loc["MXNet", "speed rank"] == 1 and t.loc["Theano", "speed rank"] == 3
    assert t.loc["PyTorch", "speed rank"] == t.loc["TensorFlow", "speed rank"] == 2
    assert t.loc["PyTorch", "level with"] == "TensorFlow" and t.loc["MXNet", "level with"] == ""
    assert t.loc["PyTorch", "LeNet step (ms)"] == pytest.approx(20.0)       # not the float64 run's 1 ms
    assert t.loc["TensorFlow", "LeNet memory (MiB)"] == pytest.approx(120)  # not the XLA run's 6 MiB
    assert math.isnan(t.loc["JAX", "speed rank"]) and math.isnan(t.loc["JAX", "LeNet step (ms)"])
    assert t.loc["MXNet", "maintained"].startswith("no: last release 1.9.1")
    assert t.loc["Theano", "maintained"].startswith("no: last release Theano 1.0.5 (July 2020)")
    assert t.loc["PyTorch", "maintained"] == "yes"
    assert t.loc["Theano", "on Colab"] == choose.COLAB_WORDS["python311"]
    assert all(s.startswith("https://") for s in t["source"])


def test_advice_follows_the_table(book):
    said = " ".join(choose.advice(choose.table(*book, COLAB)))
    assert "Maintained: PyTorch, TensorFlow, JAX and PyTensor. Retired: MXNet and Theano" in said
    assert "PyTorch and TensorFlow trained LeNet equally fast" in said
    assert "The retired MXNet trained it faster still." in said
    assert "TensorFlow took the least memory for it (120 MiB more resident memory). " \
        "JAX and PyTensor have none to compare." in said
    assert "Beyond NVIDIA's GPUs: PyTorch and JAX." in said
    assert "On Colab, PyTorch, TensorFlow, JAX and PyTensor run as they are" in said


def test_advice_names_a_single_fastest_and_says_when_nothing_ran(tmp_path):
    fixture_record(folder(tmp_path, "pytorch"), "pytorch", median=0.020, rss=150)
    fixture_record(folder(tmp_path, "tensorflow"), "tensorflow", median=0.040, rss=120)
    said = " ".join(choose.advice(choose.table(*measured(tmp_path), {})))
    assert "PyTorch trained LeNet fastest on this build's CPU (20 ms a step)." in said
    assert "JAX and PyTensor have none to compare." in said
    assert "faster still" not in said and "On Colab" not in said
    fixture_record(folder(tmp_path, "jax"), "jax", median=0.030, rss=100)
    only = verdicts.comparable_runs(load(tmp_path))[0]
    only = only[only["framework"] == "jax"]
    said = " ".join(choose.advice(choose.table(compare.speed_table(only), compare.memory_table(only), {})))
    assert "only JAX has a comparable LeNet run on this build's CPU: 30 ms a step, 100 MiB" in said
    empty = compare.speed_table(pd.DataFrame()), compare.memory_table(pd.DataFrame())
    said = " ".join(choose.advice(choose.table(*empty, COLAB)))
    assert "No maintained framework has a comparable LeNet run on the CPU in this build." in said


def test_bad_input_says_what_to_fix(book):
    speed, memory = book
    with pytest.raises(ValueError, match=r"unknown frameworks \['caffe'\]"):
        choose.table(speed, memory, {"caffe": "native"})
    with pytest.raises(ValueError, match=r"bad modes \{'pytorch': 'maybe'\}"):
        choose.table(speed, memory, {"pytorch": "maybe"})
    with pytest.raises(TypeError, match="speed must be the DataFrame of tables.speed_table"):
        choose.table([], memory, {})
    with pytest.raises(TypeError, match="expected the DataFrame of choose.table"):
        choose.advice(speed)
