"""The side-by-side page: each step of the book's two programs in every framework, in tabs.

A chapter marks a code cell that shows a step with the cell tag ``sbs:<concept>`` (a chapter
with one idiom) or ``sbs:<concept>:<tab>`` (a chapter with several, e.g. ``sbs:gradient:tf1``);
the concepts are :data:`CONCEPTS`, the tabs :data:`TABS`. When the build stages the book,
:func:`write_page` takes the marked cells from the *executed* notebooks, so the page shows the
code that ran, and appends to ``chapters/side_by_side.md``:

* per concept, a tab set with one tab per framework idiom (synchronised: choosing a framework
  once shows it everywhere, and the choice is remembered), each with the cells, a link to their
  section and the measured figures of that idiom's runs from this build's records; a tab without
  a marked cell says why (:data:`REASONS`), and a concept without either is an error;
* what the code costs to write: lines of code and distinct framework calls per concept and tab,
  counted from the same cells (:func:`cost_table`), as a table and a chart.
"""
import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

from docutils.nodes import make_id

from rosetta.book.build import BuildError

PAGE = "side_by_side"          # chapters/side_by_side.md: the prose; the build appends the tabs
CHART = "side_by_side_cost.png"
SYNC_GROUP = "framework"

CONCEPTS = {
    "data": ("The data and weights going in",
             "Every framework starts from the same NumPy arrays: the 2-layer net's `x`, `y`, `w1`, `w2`, "
             "LeNet's MNIST batches and initial weights. What each one does to take them in (copies, "
             "layouts, transposes) is the first difference."),
    "forward": ("The forward pass",
                "LeNet written as each framework's model: a class, a list of layers, or an expression."),
    "loss": ("The loss",
             "The 2-layer net's summed squared error and LeNet's cross-entropy."),
    "gradient": ("The gradient",
                 "By hand, by a tape that records what ran, or by differentiating a declared graph."),
    "update": ("The update",
               "Plain gradient descent on the 2-layer net, SGD with momentum on LeNet: written out, or "
               "handed to an optimizer."),
    "train_step": ("The training step",
                   "One step on a batch of the shared data, forward, loss, gradient and update together, as the "
                   "training loop calls it: LeNet's, or the 2-layer net's where an idiom has no LeNet."),
    "evaluate": ("Evaluation",
                 "LeNet's test accuracy: the network run without recording anything for a gradient."),
    "control_flow": ("A loop of data-dependent length",
                     "The recurrence $h_{t+1} = \\tanh(h_t W + x_t)$, as long as its input: a Python loop, "
                     "a loop operator in a graph, or an unrolled one."),
}


@dataclass(frozen=True)
class Tab:
    """One tab of every tab set: a framework, or one idiom of a framework that has several.

    ``variants`` lists, per program, the record variants whose figures the tab shows; ``None``
    means every record of the chapter for that program (a chapter with one idiom)."""
    key: str
    label: str
    chapter: str
    variants: dict = None


TABS = [
    Tab("pytorch", "PyTorch", "pytorch"),
    Tab("tf1", "TensorFlow 1", "tensorflow", {"two_layer": ["graph_session"], "lenet": []}),
    Tab("tf2", "TensorFlow 2 / Keras", "tensorflow",
        {"two_layer": ["eager", "function", "keras_fit"],
         "lenet": ["tuned", "custom_loop", "train_on_batch", "xla", "channels_first", "float64"]}),
    Tab("mx_ndarray", "MXNet NDArray", "mxnet", {"two_layer": ["ndarray", "autograd"], "lenet": []}),
    Tab("mx_symbol", "MXNet Symbol", "mxnet", {"two_layer": ["symbol"], "lenet": ["module"]}),
    Tab("mx_gluon", "MXNet Gluon", "mxnet", {"two_layer": [], "lenet": ["gluon", "gluon_hybrid", "float64"]}),
    Tab("theano", "Theano", "theano"),
    Tab("pytensor", "PyTensor", "pytensor"),
    Tab("jax", "JAX", "jax"),
    Tab("keras3", "Keras 3", "appendix_keras"),
    Tab("lasagne", "Lasagne", "appendix_lasagne"),
    Tab("chainer", "Chainer", "appendix_chainer"),
    Tab("cntk", "CNTK", "appendix_cntk"),
]

# Why a tab has no cell for a concept: shown in the tab instead of the code.
REASONS = {
    ("tf1", "data"): "In TensorFlow 1 the data and weights go in as placeholders of the graph (under *The loss*), "
                     "fed with the NumPy arrays by `feed_dict` at every session step (under *The training step*).",
    ("tf1", "forward"): "The TensorFlow chapter writes LeNet in TensorFlow 2 only; its TensorFlow 1 program is "
                        "the 2-layer net, whose forward pass is part of the graph under *The loss*.",
    ("tf1", "evaluate"): "No TensorFlow 1 LeNet, so nothing to evaluate in that idiom.",
    ("tf1", "control_flow"): "The chapter's loop is written in TensorFlow 2 (`tf.function` with AutoGraph); "
                             "TensorFlow 1's `tf.while_loop` is what AutoGraph writes for it.",
    ("mx_ndarray", "forward"): "LeNet is written as a Gluon block (imperative Gluon runs on NDArrays) and as a "
                               "Symbol graph; see those tabs.",
    ("mx_ndarray", "train_step"): "LeNet trains through Gluon or the Module API; the NDArray idiom is shown on the "
                                  "2-layer net (*The gradient*).",
    ("mx_ndarray", "evaluate"): "LeNet is evaluated through Gluon or the Module API; see those tabs.",
    ("mx_ndarray", "control_flow"): "The chapter's Python loop runs inside a Gluon block; see the Gluon tab.",
    ("mx_symbol", "control_flow"): "A Symbol graph cannot loop over rows it does not have; the chapter's loop "
                                   "operator (`F.contrib.foreach`) is shown in a hybridized block, in the Gluon tab.",
    ("mx_gluon", "loss"): "Gluon appears on LeNet only, where the loss is a block inside the training step.",
    ("mx_gluon", "gradient"): "Gluon appears on LeNet only, where `autograd.record()` and `backward()` are part of "
                              "the training step; the same autograd on the 2-layer net is in the NDArray tab.",
    ("mx_gluon", "update"): "The `Trainer` applies the update inside the training step.",
    ("pytensor", "forward"): "The PyTensor chapter runs the 2-layer net only (the Theano program with `theano` renamed "
                             "`pytensor`); its forward pass is the loss expression under *The loss*, and LeNet in the "
                             "same idiom is in the Theano tab.",
    ("pytensor", "evaluate"): "The PyTensor chapter runs the 2-layer net only, which has no test set.",
    ("pytensor", "control_flow"): "`pytensor.scan` is Theano's `scan` with `theano` renamed (see the Theano tab); "
                                  "the PyTensor chapter runs it from `rosetta.frameworks.control_flow` and records it.",
    ("keras3", "data"): "The Keras 3 programs are whole files, run once per backend; the shared arrays and weights go in "
                        "inside them (`ops.convert_to_tensor`, `set_weights`), under *The loss* and *The forward pass*.",
    ("keras3", "control_flow"): "The Keras appendix trains the two programs only; Keras 3 leaves loops to its backend "
                                "or to `keras.ops` (`while_loop`, `fori_loop`, `scan`), which it does not run.",
    ("lasagne", "data"): "Lasagne's layers take the shared weights in their constructors (`W=`, `b=`), in the LeNet "
                         "under *The forward pass*; the data are fed to a Theano function as NumPy arrays.",
    ("lasagne", "control_flow"): "Lasagne builds Theano graphs; a loop in one is Theano's `scan` (see the Theano tab).",
    ("chainer", "data"): "Chainer computes on the NumPy arrays as they are (CuPy arrays on a GPU); the weights go into "
                         "the links' `initialW`, in the programs under *The loss* and *The forward pass*.",
    ("cntk", "data"): "CNTK's programs feed NumPy arrays to its input variables and assign the weights to the layers' "
                      "`W.value`, inside the programs under *The loss* and *The forward pass*.",
    ("cntk", "control_flow"): "The CNTK appendix trains the two programs only; CNTK expresses loops as recurrences "
                              "over a sequence axis (`C.layers.Recurrence`), which it does not run.",
}


class MarkError(BuildError):
    """A cell tag, a tab or a reason is wrong, or a concept lacks both a cell and a reason."""


@dataclass
class Mark:
    """One marked cell of one chapter: what it shows, in which tab, where it stands."""
    chapter: str
    cell: int
    concept: str
    tab: str
    source: str
    section: tuple      # heading titles, outermost first (title, h2, h3 ...)
    anchor: str         # the id of the innermost heading in the rendered chapter

    @property
    def program(self):
        h2 = self.section[1].lower() if len(self.section) > 1 else ""
        return "two_layer" if "2-layer" in h2 else "lenet" if "lenet" in h2 else None


def tabs_of(chapter: str) -> list:
    return [t for t in TABS if t.chapter == chapter]


def tab_named(key: str) -> Tab:
    return next(t for t in TABS if t.key == key)


def heading(line: str):
    """(level, plain title) of a Markdown heading line, else None."""
    if not line.startswith("#"):
        return None
    level = len(line) - len(line.lstrip("#"))
    title = line[level:].strip().replace("`", "").replace("**", "")
    return (level, title) if line[level:level + 1] == " " else None


def parse_tag(tag: str, chapter: str, cell: int):
    """(concept, tab key) of an ``sbs:`` tag, with the error an author can act on."""
    parts = tag.split(":")
    where = f"chapters/{chapter}.md, code cell {cell}: tag {tag!r}"
    if len(parts) not in (2, 3) or parts[1] not in CONCEPTS:
        raise MarkError(f"{where}: expected sbs:<concept> or sbs:<concept>:<tab>, concept one of {list(CONCEPTS)}")
    tabs = tabs_of(chapter)
    if not tabs:
        raise MarkError(f"{where}: chapter {chapter!r} has no tab in rosetta.book.side_by_side.TABS; add one")
    if len(parts) == 2:
        if len(tabs) > 1:
            raise MarkError(f"{where}: this chapter has several tabs ({', '.join(t.key for t in tabs)}); "
                            f"name one: sbs:{parts[1]}:<tab>")
        return parts[1], tabs[0].key
    if parts[2] not in [t.key for t in tabs]:
        raise MarkError(f"{where}: tab {parts[2]!r} is not one of this chapter's ({', '.join(t.key for t in tabs)})")
    return parts[1], parts[2]


def marks(cells, chapter: str) -> list:
    """The marked cells of a notebook's cells (nbformat or jupytext), in order."""
    found, section = [], []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            fenced = False
            for line in cell["source"].splitlines():
                fenced ^= line.lstrip().startswith(("```", "~~~"))    # a '#' in a fenced block is no heading
                h = None if fenced else heading(line)
                if h:
                    section = section[:h[0] - 1] + [h[1]]
            continue
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("sbs:")]
        for tag in tags:
            concept, tab = parse_tag(tag, chapter, i)
            found.append(Mark(chapter, i, concept, tab, cell["source"].strip("\n"), tuple(section),
                              make_id(section[-1]) if section else ""))
    return found


def source_marks(root: Path, chapters) -> list:
    """The marks of the chapters' Jupytext sources (what a test checks without executing them)."""
    import jupytext
    return [m for c in chapters for m in marks(jupytext.read(Path(root) / "chapters" / f"{c}.md").cells, c)]


def executed_marks(build_dir: Path, chapters) -> list:
    """The marks of the executed notebooks ``<build_dir>/executed/<chapter>.ipynb``: the code that ran."""
    found = []
    for c in chapters:
        path = Path(build_dir) / "executed" / f"{c}.ipynb"
        if not path.is_file():
            raise MarkError(f"chapter {c!r} has no executed notebook at {path}; execute it (rosetta-build --only {c})")
        found += marks(_read(path).cells, c)
    return found


def _read(path: Path):
    import nbformat
    return nbformat.read(path, as_version=4)


def book_tabs(chapters) -> list:
    """The tabs of the chapters the book has, in page order."""
    return [t for t in TABS if t.chapter in set(chapters)]


def coverage_problems(found, chapters) -> list:
    """What makes the page incomplete or the reasons stale, one sentence each (empty: all is well)."""
    have = {(m.tab, m.concept) for m in found}
    problems = []
    for t in book_tabs(chapters):
        for c in CONCEPTS:
            if (t.key, c) not in have and (t.key, c) not in REASONS:
                problems.append(f"tab {t.label!r}: no cell of chapters/{t.chapter}.md is tagged for {c!r} "
                                f"and REASONS says nothing why; tag the cell (sbs:{c}"
                                f"{'' if len(tabs_of(t.chapter)) == 1 else ':' + t.key}) or state the reason")
            elif (t.key, c) in have and (t.key, c) in REASONS:
                problems.append(f"tab {t.label!r}: {c!r} has a marked cell and a reason for having none; "
                                f"delete the reason from REASONS")
    return problems


# ------------------------------------------------------------------ figures

def records_of(build_dir: Path, chapter: str) -> list:
    from rosetta.core import records
    folder = Path(build_dir) / "records" / chapter
    return [records.read(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def runs(tab: Tab, program: str, recs) -> list:
    """The records of one tab's runs of one program, in the order of ``tab.variants``."""
    mine = [r for r in recs if r["model"] == program]
    if tab.variants is None:
        return sorted(mine, key=lambda r: r["variant"] == "float64")   # the parity check last
    wanted = tab.variants.get(program, [])
    return sorted((r for r in mine if r["variant"] in wanted), key=lambda r: wanted.index(r["variant"]))


def figures_table(recs) -> str:
    """Markdown table of the runs' parity, median step and first step."""
    rows = ["| run | max. rel. deviation from the reference | median step | first step |",
            "| --- | --- | --- | --- |"]
    for r in recs:
        p, t = r["parity"], r["timing"]
        name = r["variant"] if not r["framework"].startswith("keras-") else f"{r['framework'][6:]} {r['variant']}"
        verdict = "within" if p["passed"] else "above"
        rows.append(f"| `{name}` | {p['max_rel_dev']:.1e} over {p['steps']} steps ({verdict} {p['tolerance']:g}) "
                    f"| {_ms(t['median_s'])} | {_ms(t['first_step_s'])} |")
    return "\n".join(rows)


def _ms(seconds):
    return "n/a" if seconds is None else f"{1e3 * seconds:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --------------------------------------------------------------- code cost

FRAMEWORK_MODULES = {"torch", "tensorflow", "keras", "mxnet", "theano", "pytensor", "jax", "flax", "optax",
                     "lasagne", "chainer", "cntk"}
PLAIN_METHODS = {"append", "extend", "items", "keys", "values", "get", "format", "join", "split", "strip",
                 "update", "pop", "insert", "startswith", "endswith", "replace", "lower", "upper"}


def code_lines(source: str) -> list:
    """The lines that count: not blank, not a comment, not an IPython magic."""
    return [l for l in source.splitlines() if l.strip() and not l.lstrip().startswith(("#", "%"))]


def _root(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, ast.Name) else None


def _parse(source: str):
    try:
        return ast.parse("\n".join("" if l.lstrip().startswith("%") else l for l in source.splitlines()))
    except SyntaxError:
        return None


class Names:
    """Which names of a notebook's code stand for a framework, and which for anything else.

    A name imported from a framework module (or re-exported by a program the notebook writes with
    ``%%writefile``) is a framework's; a name imported from anything else (the book's helpers,
    NumPy, the standard library), or assigned from a call on such a name, is not."""

    def __init__(self, sources):
        self.framework, self.other, self.modules = set(), set(dir(builtins)), {}
        for src in sources:
            first = src.lstrip().split("\n", 1)[0]
            module = first.split()[1].split("/")[-1].removesuffix(".py") if first.startswith("%%writefile") else None
            tree = _parse(src)
            if tree is not None:
                self._scan(tree, module)

    def _is_framework(self, module: str, name: str) -> bool:
        top = module.split(".")[0]
        return name in self.modules[top] if top in self.modules else top in FRAMEWORK_MODULES

    def _scan(self, tree, module):
        mine = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    (mine if a.name.split(".")[0] in FRAMEWORK_MODULES else self.other).add(
                        (a.asname or a.name).split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    (mine if self._is_framework(node.module, a.name) else self.other).add(a.asname or a.name)
            elif isinstance(node, (ast.Assign, ast.With)):
                pairs = ([(t, node.value) for t in node.targets] if isinstance(node, ast.Assign) else
                         [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars is not None])
                for target, value in pairs:
                    root = _root(value.func) if isinstance(value, ast.Call) else None
                    if root in self.other and root not in mine:
                        self.other |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        self.framework |= mine
        if module:
            self.modules[module] = mine

    def lines(self, source: str) -> int:
        """Lines of code of one cell, less the statements that only call the book's helpers, NumPy or
        Python's builtins (timing, records, printing): what the program itself takes to write."""
        tree = _parse(source)
        if tree is None:
            return len(code_lines(source))
        keep = set()
        for stmt in tree.body:
            if not self._scaffolding(stmt):
                keep |= set(range(stmt.lineno, stmt.end_lineno + 1))
        return sum(1 for i, l in enumerate(source.splitlines(), 1) if i in keep and code_lines(l))

    def _scaffolding(self, stmt) -> bool:
        called = [n.func for n in ast.walk(stmt) if isinstance(n, ast.Call)]
        own = [f for f in called if isinstance(f, ast.Name) and f.id not in self.other]
        return bool(called) and not own and not self.calls(stmt)

    def calls(self, source) -> set:
        """The distinct framework calls of one cell (or syntax tree): ``module.function`` as written,
        ``.method`` by name."""
        tree = _parse(source) if isinstance(source, str) else source
        if tree is None:
            return set()
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        found = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f, root = node.func, _root(node.func)
            if root in self.framework:
                found.add(_dotted(f))
            elif isinstance(f, ast.Attribute) and root not in self.other and root not in defined \
                    and f.attr not in PLAIN_METHODS:
                found.add("." + f.attr)
        return found


def cost_table(found, names_by_chapter) -> dict:
    """{(tab key, concept): (lines of code, distinct framework calls)} of the marked cells, and under
    the concept ``"all"`` the same over each tab's distinct cells (a cell of several steps counted once)."""
    groups = {}
    for m in found:
        groups.setdefault((m.tab, m.concept), []).append(m)
        cells = groups.setdefault((m.tab, "all"), [])
        if all(c.cell != m.cell or c.chapter != m.chapter for c in cells):
            cells.append(m)
    table = {}
    for key, ms in groups.items():
        names = names_by_chapter[ms[0].chapter]
        table[key] = (sum(names.lines(m.source) for m in ms),
                      len(set().union(*(names.calls(m.source) for m in ms))))
    return table


def chapter_names(build_dir: Path, chapter: str) -> Names:
    nb = _read(Path(build_dir) / "executed" / f"{chapter}.ipynb")
    return Names([c.source for c in nb.cells if c.cell_type == "code"])


def cost_chart(table, tabs, path: Path):
    """Two heat maps, concept by tab: lines of code and distinct framework calls."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    fig, axes = plt.subplots(2, 1, figsize=(2.5 + 0.95 * len(tabs), 8.5), sharex=True)
    for ax, i, title in zip(axes, (0, 1), ("lines of code", "distinct framework calls")):
        grid = np.array([[table.get((t.key, c), (np.nan, np.nan))[i] for t in tabs] for c in CONCEPTS], float)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".0f", cbar=False, cmap="Blues", linewidths=0.5,
                    xticklabels=[t.label for t in tabs], yticklabels=list(CONCEPTS))
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------- page

def _fence(source: str) -> str:
    """A backtick fence longer than any run of backticks in ``source``."""
    n = 3
    while "`" * n in source:
        n += 1
    return "`" * n


def tab_item(tab: Tab, concept: str, shown, recs, chapters_shown: dict) -> str:
    """The Markdown of one tab: its cells (or the reason there are none) and its runs' figures."""
    body = []
    if not shown:
        body.append(f"*Not in this framework's chapter:* {REASONS[(tab.key, concept)]}")
    for m in shown:
        where = " › ".join(m.section[1:]) or m.section[0]
        link = f'<a href="{m.chapter}.html#{m.anchor}">{m.section[0]} › {where}</a>'
        first = chapters_shown.get((m.chapter, m.cell))
        if first and first != concept:
            body.append(f'<p class="sbs-source">The same cell as under <a href="#{make_id(CONCEPTS[first][0])}">'
                        f'{CONCEPTS[first][0]}</a> ({link}): one cell shows both.</p>')
            continue
        chapters_shown.setdefault((m.chapter, m.cell), concept)
        fence = _fence(m.source)
        body.append(f'<p class="sbs-source">From {link}</p>\n\n{fence}ipython3\n{m.source}\n{fence}')
    for program in dict.fromkeys(m.program for m in shown if m.program):
        mine = runs(tab, program, recs)
        title = {"two_layer": "2-layer net", "lenet": "LeNet"}[program]
        body.append(f"**Measured in this build ({title}):**\n\n" + figures_table(mine) if mine else
                    f"*No {title} record of this chapter in this build.*")
    return (f":::{{tab-item}} {tab.label}\n:sync: {tab.key}\n\n" + "\n\n".join(body) + "\n:::")


def render(found, tabs, recs_by_chapter, cost) -> str:
    """The generated part of the page: a tab set per concept, then the cost table and chart."""
    out, shown_once = [], {}
    for concept, (title, blurb) in CONCEPTS.items():
        out += [f"## {title}", "", blurb, "", f"::::{{tab-set}}\n:sync-group: {SYNC_GROUP}\n"]
        for t in tabs:
            shown = [m for m in found if m.tab == t.key and m.concept == concept]
            out += [tab_item(t, concept, shown, recs_by_chapter.get(t.chapter, []), shown_once), ""]
        out += ["::::", ""]
    out += ["## What the code costs to write", "",
            "Counted by the build from the cells above (`rosetta.book.side_by_side.cost_table`): *lines* are the "
            "lines that are not blank, a comment or an IPython magic, less the statements that only call the "
            "book's helpers, NumPy or Python's builtins (timing the steps, saving records, printing); *calls* are the distinct framework functions "
            "and methods called, not counting Python's builtins, the book's helper package, NumPy and the functions "
            "the cells define themselves (a method counts by its name). A cell shown under several steps counts "
            "for each, and once in *all steps*; a dash is a step the tab does not have (its reason is in its tab "
            "above). Each entry reads *lines / calls*.", "",
            "| | " + " | ".join(CONCEPTS) + " | all steps |",
            "| --- |" + " --- |" * (len(CONCEPTS) + 1)]
    for t in tabs:
        cells = [cost.get((t.key, c)) for c in [*CONCEPTS, "all"]]
        out.append(f"| {t.label} | " + " | ".join(f"{c[0]} / {c[1]}" if c else "–" for c in cells) + " |")
    out += ["", f"```{{figure}} {CHART}\n:name: fig-sbs-cost\n\nLines of code (above) and distinct framework "
            "calls (below) of every step and framework, counted from the cells the chapters ran.\n```", ""]
    return "\n".join(out)


def write_page(root: Path, build_dir: Path, book: Path, chapters) -> Path:
    """Append the generated tabs to the staged ``chapters/side_by_side.md`` and draw the chart.

    Does nothing if the book's table of contents has no such page. Raises :class:`MarkError`
    when a mark is wrong or a concept lacks both a cell and a reason."""
    page = Path(book) / "chapters" / f"{PAGE}.md"
    if not page.is_file():
        return None
    mine = [c for c in chapters if tabs_of(c)]
    found = executed_marks(build_dir, mine)
    problems = coverage_problems(found, mine)
    if problems:
        raise MarkError("the side-by-side page is incomplete:\n  " + "\n  ".join(problems))
    tabs = book_tabs(mine)
    cost = cost_table(found, {c: chapter_names(build_dir, c) for c in mine})
    recs = {c: records_of(build_dir, c) for c in mine}
    cost_chart(cost, tabs, page.with_name(CHART))
    page.write_text(page.read_text().rstrip("\n") + "\n\n" + render(found, tabs, recs, cost))
    return page
