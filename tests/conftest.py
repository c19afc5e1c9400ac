"""Shared fixtures: the quick-mode book, each chapter executed when a test first reads it."""
import os
from pathlib import Path

import numpy as np
import pytest

from rosetta.book import build
from rosetta.core import params, records, reference, training, weights

ROOT = Path(__file__).resolve().parents[1]
# The tests' quick book, kept between runs: a chapter is executed again only when something it
# depends on changed (rosetta.book.cache), as in `make book`.
BUILD_DIR = ROOT / "_build" / "test" / "_build"


class QuickBook:
    """The quick book of the tests: a chapter is executed (or reused from the cache) the first time
    a test reads it, so that a test module executes only the chapters it reads.

    A chapter that runs last (comparison, run report) reads the others' records: asking for it
    executes every chapter before it. ``html`` builds the whole book.
    """

    def __init__(self, build_dir: Path, allowed=(), force=False, strict=False):
        self.build_dir = build_dir
        self.allowed, self.force, self.strict = list(allowed), force, strict
        self.results = {}
        self.chapters = build.notebook_chapters(ROOT)
        self._html = False

    def _execute(self, names):
        todo = [n for n in names if n not in self.results]
        if self.allowed and set(todo) - set(self.allowed):
            pytest.fail(f"chapter(s) {sorted(set(todo) - set(self.allowed))} not executed: "
                        f"ROSETTA_TEST_CHAPTERS leaves them out")
        if todo:
            results = build.build(ROOT, self.build_dir, quick=True, only=todo, html=False, force=self.force,
                                  strict=self.strict)
            self.results.update((r.name, r) for r in results)

    def chapter(self, name):
        """The chapter's result in this build; skips the test, saying why, if the chapter could not be
        executed on this machine (its environment could not be built; STRICT=1 makes that a failure)."""
        meta = build.front_matter(ROOT / "chapters" / f"{name}.md").get("rosetta") or {}
        self._execute(self.chapters[:self.chapters.index(name) + 1] if meta.get("run_last") else [name])
        res = self.results[name]
        if res.skipped and res.ok:
            pytest.skip(f"chapter {name} not executed in this build: {res.skipped}")
        return res

    def records(self, name, models=None) -> dict:
        """The chapter's records keyed by (model, variant); fails with the chapter's own error.

        Without ``models``, its training runs only: not the control-flow loop (``recurrence``)
        and the matrix-multiply yardstick (``matmul``) that the comparison reads."""
        res = self.chapter(name)
        assert res.ok, f"chapter {name} failed in quick mode: {res.error} (see {res.notebook})"
        recs = [records.read(p) for p in res.records]
        return {(r["model"], r["variant"]): r for r in recs
                if (r["model"] in models if models else r["model"] not in ("recurrence", "matmul"))}

    @property
    def html(self):
        """The whole quick book's HTML folder; None if a chapter failed or ROSETTA_TEST_CHAPTERS is set."""
        if self.allowed:
            return None
        if self._html is False:
            self._execute(self.chapters)
            ok = all(r.ok for r in self.results.values())
            self._html = build.build_html(ROOT, self.build_dir) if ok else None
        return self._html


@pytest.fixture(scope="session")
def quick_book():
    """The quick book (see :class:`QuickBook`), in ``_build/test/_build``.

    ROSETTA_TEST_CHAPTERS=pytorch,tensorflow limits it to those chapters (no HTML then).
    ``make test`` executes the whole quick book here first, two chapters at a time (``rosetta-build
    --quick --jobs 2``), so that the tests mostly reuse it. ROSETTA_FORCE=1 executes each chapter
    read even if its earlier run could be reused (``make test FORCE=1`` forces that first build); ROSETTA_STRICT=1 (``make test STRICT=1``, CI) fails a test that reads a
    chapter whose environment could not be built instead of skipping it.
    """
    only = [c for c in os.environ.get("ROSETTA_TEST_CHAPTERS", "").split(",") if c]
    return QuickBook(BUILD_DIR, only, force=bool(os.environ.get("ROSETTA_FORCE")),
                     strict=bool(os.environ.get("ROSETTA_STRICT")))


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


def require_env(python, what: str):
    """An extra environment a test runs in: skipped where it is not built, a failure under
    ROSETTA_STRICT=1 (``make test STRICT=1``, CI), where every environment must be built."""
    if not python.exists():
        message = f"the {what} is not built ({python} is missing)"
        if os.environ.get("ROSETTA_STRICT"):
            pytest.fail(message + "; STRICT=1 requires it")
        pytest.skip(message)
