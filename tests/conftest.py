"""Shared fixtures: the quick-mode book, built once per test session."""
import os
from pathlib import Path

import numpy as np
import pytest

from rosetta.book import build
from rosetta.core import params, records, reference, training, weights

ROOT = Path(__file__).resolve().parents[1]


class QuickBook:
    """The result of one quick build: executed chapters, their records, the HTML."""

    def __init__(self, build_dir: Path, results, with_html: bool):
        self.build_dir = build_dir
        self.html = build_dir / "html" if with_html else None
        self.results = {r.name: r for r in results}

    def chapter(self, name):
        if name not in self.results:
            pytest.fail(f"chapter {name} was not executed: ROSETTA_TEST_CHAPTERS leaves it out")
        return self.results[name]

    def records(self, name) -> dict:
        """The chapter's records keyed by (model, variant); fails with the chapter's own error."""
        res = self.chapter(name)
        assert res.ok, f"chapter {name} failed in quick mode: {res.error} (see {res.notebook})"
        recs = [records.read(p) for p in res.records]
        return {(r["model"], r["variant"]): r for r in recs}


@pytest.fixture(scope="session")
def quick_book(tmp_path_factory):
    """Every chapter executed in quick mode and the HTML built, in a temporary _build folder.

    ROSETTA_TEST_CHAPTERS=pytorch,tensorflow limits it to those chapters (no HTML then):
    for developing one chapter. CI leaves it unset.
    """
    only = [c for c in os.environ.get("ROSETTA_TEST_CHAPTERS", "").split(",") if c]
    build_dir = tmp_path_factory.mktemp("book") / "_build"
    results = build.build(ROOT, build_dir, quick=True, only=only, html=not only)
    return QuickBook(build_dir, results, with_html=not only)


def check_lenet_record(rec, lenet_reference, variant):
    """What every framework's quick-mode float32 LeNet record must show: its parity told truly and not
    gating (a float32 decision may go the other way: the book's rule, rosetta.core.outcome, then names
    the run; the chapter's float64 run checks the program), all steps, per-epoch accuracy."""
    p = rec["params"]
    assert rec["parity"]["steps"] == params.PARITY_STEPS and rec["parity"]["tolerance"] == params.LENET_TOL
    dev = reference.max_rel_dev(rec["losses"][:params.PARITY_STEPS], lenet_reference)
    assert rec["parity"]["max_rel_dev"] == pytest.approx(dev) and rec["parity"]["passed"] == (dev <= params.LENET_TOL)
    assert rec["parity"]["gates"] is False, f"{variant}: a float32 LeNet run must not gate its chapter"
    assert len(rec["losses"]) == p["epochs"] * (p["train_subset"] // p["batch_size"])
    assert len(rec["extra"]["epoch_accuracy"]) == len(rec["extra"]["epoch_end_train_s"]) == p["epochs"]
    assert rec["test_accuracy"] == rec["extra"]["epoch_accuracy"][-1]
    assert rec["test_accuracy"] > 0.7, f"{variant}: {rec['test_accuracy']:.3f} after quick training"


def check_float64_record(rec, lenet_reference, tol=1e-12, float32_hyperparameters=False):
    """A chapter's float64 LeNet run over the parity window: the check of its program, which float32
    rounding cannot upset. A framework that rounds the learning rate and momentum to float32 even
    for float64 weights (``float32_hyperparameters``) is 1.4e-7 from the reference over 20 steps
    (allowed: 1e-6) and within ``tol`` of a reference run with those two rounded so."""
    assert rec["extra"]["dtype"] == "float64" and rec["test_accuracy"] is None
    assert len(rec["losses"]) == rec["parity"]["steps"] == params.PARITY_STEPS
    assert rec["parity"]["passed"] and rec["parity"]["tolerance"] == params.LENET_TOL
    dev = reference.max_rel_dev(rec["losses"], lenet_reference)
    assert rec["parity"]["max_rel_dev"] == pytest.approx(dev)
    if float32_hyperparameters:
        assert dev <= 1e-6, f"float64 run deviates by {dev:.2e}"
        cfg = params.resolve(**rec["params"])
        x_train, y_train, _, _ = training.mnist_data(cfg)
        batches = training.parity_batches(x_train, y_train, cfg, params.PARITY_STEPS)
        f32 = lambda v: float(np.float32(v))
        lenet_reference = reference.lenet_losses(weights.lenet(cfg.seed), batches, f32(params.LENET_LR),
                                                 f32(params.LENET_MOMENTUM))
        dev = reference.max_rel_dev(rec["losses"], lenet_reference)
    assert dev <= tol, f"float64 run deviates by {dev:.2e}"
    return dev
