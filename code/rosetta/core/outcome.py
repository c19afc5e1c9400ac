"""What "passed" means, for one run and for a chapter: the one rule the book states.

A record's ``parity`` says whether the run's first losses stayed within the NumPy reference's
tolerance (``passed``) and whether a miss fails its chapter (``gates``: false only for the
float32 LeNet runs, whose program a float64 run checks). From those two fields:

* a run **passed** when it stayed within the tolerance;
* a run **passed, with a float32 deviation that does not gate** when it left the tolerance
  and its record says that its parity does not gate;
* a run **failed** when it left the tolerance and its parity gates.

A chapter failed when it did not execute to the end or any of its runs failed; it passed with a
float32 deviation when one of its runs did, naming the run; else it passed. The intro states
this rule, the run report (``rosetta.book.build.read_report``) and every chapter's summary
(:func:`summary`) apply it.
"""
from dataclasses import dataclass, field

PASSED = "passed"
DEVIATION = "passed, with a float32 deviation that does not gate"
FAILED = "failed"
RESULTS = (PASSED, DEVIATION, FAILED)


def run_result(rec: dict) -> str:
    """:data:`PASSED`, :data:`DEVIATION` or :data:`FAILED` for one record."""
    parity = rec["parity"]
    if parity["passed"]:
        return PASSED
    return FAILED if parity["gates"] else DEVIATION


def run_name(rec: dict) -> str:
    """How the book names a run: framework, model and variant."""
    return f"{rec['framework']} {rec['model']} {rec['variant']}"


def deviation_text(rec: dict) -> str:
    """A run outside its tolerance, named with its size: ``theano lenet openblas (3.1e-03 from step 7, tolerance 0.001)``."""
    p = rec["parity"]
    above = [i for i, d in enumerate(p["rel_dev"]) if d > p["tolerance"]]
    where = f" from step {above[0]}" if above else ""
    return f"{run_name(rec)} ({p['max_rel_dev']:.1e}{where}, tolerance {p['tolerance']:g})"


@dataclass
class Outcome:
    """A chapter's result under the rule, with the runs that decided it."""
    result: str
    runs: int
    deviations: list = field(default_factory=list)   # records: passed, with a float32 deviation
    failures: list = field(default_factory=list)     # records: failed parity that gates
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.result != FAILED

    def label(self) -> str:
        """The result with the runs that decided it named: what the run report shows."""
        named = self.failures if self.result == FAILED else self.deviations
        if named:
            return f"{self.result}: " + "; ".join(deviation_text(r) for r in named)
        if self.error:
            return f"{self.result}: {self.error.splitlines()[0]}"
        return self.result


def chapter(recs, executed: bool = True, error: str = "") -> Outcome:
    """The outcome of a chapter from its records and whether it executed to the end."""
    recs = sorted(recs, key=run_name)
    by = {r: [rec for rec in recs if run_result(rec) == r] for r in RESULTS}
    if not executed or by[FAILED]:
        result = FAILED
    elif by[DEVIATION]:
        result = DEVIATION
    else:
        result = PASSED
    return Outcome(result, len(recs), by[DEVIATION], by[FAILED], error if not executed else "")


def summary(recs) -> str:
    """The chapter summary's sentence on what passed, for the records a chapter wrote."""
    out = chapter(recs)
    n = out.runs
    if n == 0:
        raise ValueError("summary() needs the chapter's records; it was given none")
    plural = "runs" if n > 1 else "run"
    if out.result == PASSED:
        every = f"All {n} runs of this chapter" if n > 1 else "The chapter's one run"
        return f"{every} passed: within the NumPy reference's tolerance over the checked steps."
    clean = n - len(out.deviations) - len(out.failures)
    parts = [f"{clean} of {n} {plural} passed"]
    for result, named in ((DEVIATION, out.deviations), (FAILED, out.failures)):
        if named:
            parts.append(f"{len(named)} {result}: {', '.join(deviation_text(r) for r in named)}")
    return "; ".join(parts) + f". The chapter {out.result}."


def float32_lenet(recs, framework: str) -> str:
    """What a build's records say of the float32 LeNet runs (the non-gating ones): ``framework``'s, then the others'."""
    runs = sorted((r for r in recs if r["model"] == "lenet" and not r["parity"]["gates"]), key=run_name)
    own = [r for r in runs if r["framework"] == framework]
    others = [r for r in runs if r["framework"] != framework]
    if not own:
        return f"This build holds no float32 LeNet record of {framework} to compare with."

    def say(group):
        out = [r for r in group if run_result(r) == DEVIATION]
        if not out:
            return f"all {len(group)} stayed within the tolerance" if len(group) > 1 else "the one stayed within the tolerance"
        return f"{len(out)} of {len(group)} left it: " + ", ".join(deviation_text(r) for r in out)

    text = f"In this build, of {framework}'s float32 LeNet runs {say(own)}"
    if not others:
        return text + "; the build holds no other framework's float32 LeNet record."
    return text + f"; of the other frameworks' {say(others)}."
