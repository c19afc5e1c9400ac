"""The framework modules: one interface with the same signatures, and the layers' import rules.

Signatures are read from the modules' source (``ast``), so that no framework is imported to check
them; the behaviour of the interface is then checked where the main environment has the framework
and it is cheap (Theano's module and PyTorch on the CPU).
"""
import ast
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import require_env

import rosetta
from rosetta.frameworks import INTERFACE, no_wait

PACKAGE = Path(rosetta.__file__).resolve().parent
FRAMEWORKS = ("pytorch", "tensorflow", "mxnet", "theano", "pytensor", "jax")
PARTIAL = {"keras": ("setup",), "lasagne": ()}          # what of the interface applies to them
ROOT = Path(__file__).resolve().parents[1]


def functions(module: str) -> dict:
    """The module's top-level functions: name -> their ``ast.arguments``, including those it takes
    from another framework module (``from rosetta.frameworks.jax import sync``: PyTensor runs on
    JAX's devices, and one definition serves both), read in that module."""
    tree = ast.parse((PACKAGE / "frameworks" / f"{module}.py").read_text())
    found = {node.name: node.args for node in tree.body if isinstance(node, ast.FunctionDef)}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rosetta.frameworks."):
            other = functions(node.module.rsplit(".", 1)[1])
            found.update({a.asname or a.name: other[a.name] for a in node.names if a.name in other})
    return found


def shape(args: ast.arguments) -> tuple:
    """A signature as (positional names, how many of them have defaults, keyword-only names all with
    defaults, *args, **kwargs)."""
    positional = [a.arg for a in args.posonlyargs + args.args]
    return (tuple(positional), len(args.defaults), all(d is not None for d in args.kw_defaults),
            args.vararg is not None, args.kwarg is not None)


@pytest.mark.parametrize("module", FRAMEWORKS)
def test_every_framework_module_has_the_whole_interface(module):
    found = functions(module)
    assert not [name for name in INTERFACE if name not in found], f"rosetta.frameworks.{module} lacks part of the interface"
    assert shape(found["setup"]) == (("threads",), 0, True, False, False)
    for name in INTERFACE[1:]:
        assert shape(found[name]) == (("device",), 0, True, False, False), f"{module}.{name}"
        assert not found[name].kwonlyargs, f"{module}.{name} takes more than the device"


@pytest.mark.parametrize("module", sorted(PARTIAL))
def test_the_other_modules_use_the_interface_names_only_for_the_interface(module):
    found = functions(module)
    assert [name for name in INTERFACE if name in found] == list(PARTIAL[module])
    if "setup" in found:
        assert shape(found["setup"]) == (("threads",), 0, True, False, False)


def test_theano_module_answers_the_interface_on_the_cpu():
    from rosetta.frameworks import theano as fw_theano
    dev = fw_theano.resolve_device("auto")
    assert fw_theano.device_type(dev) == "cpu" and fw_theano.device_name(dev)
    wait = fw_theano.sync(dev)
    marker = object()
    assert wait() is None and wait(marker) is marker
    assert fw_theano.device_memory(dev) is None


def test_pytorch_module_answers_the_interface_on_the_cpu():
    from rosetta.core import timing
    from rosetta.frameworks import pytorch as fw_torch
    import torch
    dev = fw_torch.resolve_device("cpu")
    assert fw_torch.device_type(dev) == "cpu" and fw_torch.device_name(dev)
    assert fw_torch.sync(dev) is no_wait and fw_torch.device_memory(dev) is None
    t = torch.ones(3)
    assert fw_torch.sync(dev)(t) is t
    with timing.Probe(sync=fw_torch.sync(dev), warmup=1,
                      device_memory=fw_torch.device_memory(dev)) as probe:   # what the chapters pass
        for _ in range(3):
            with probe.step():
                t = t * 2
    assert probe.summary()["timing"]["n"] == 2


PYTENSOR_PROGRAM = """
from rosetta.frameworks import pytensor as fw
fw.setup(1, device="cpu")
import jax.numpy as jnp
dev = fw.resolve_device("auto")
wait = fw.sync(dev)
x = jnp.ones(3) * 2
assert wait() is None and wait(x) is x
print(fw.device_type(dev), fw.device_memory(dev))
"""


def test_pytensor_module_answers_the_interface_in_its_environment(tmp_path):
    python = ROOT / ".envs" / "pytensor" / "bin" / "python"
    require_env(python, "PyTensor environment")
    out = subprocess.run([str(python), "-c", PYTENSOR_PROGRAM], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(PACKAGE.parent), "ROSETTA_ROOT": str(ROOT),
                              "ROSETTA_BUILD": str(tmp_path / "_build"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["cpu", "None"]


CORE_IMPORTS_NO_FRAMEWORK = """
import importlib, pkgutil, sys
import rosetta.core
for m in pkgutil.iter_modules(rosetta.core.__path__):
    importlib.import_module("rosetta.core." + m.name)
import rosetta.frameworks, rosetta.frameworks.compat, rosetta.frameworks.worker
loaded = sorted({"torch", "tensorflow", "mxnet", "theano", "pytensor", "jax", "keras", "lasagne"} & set(sys.modules))
print(loaded)
"""


def test_core_imports_no_framework():
    out = subprocess.run([sys.executable, "-c", CORE_IMPORTS_NO_FRAMEWORK], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# What the CNTK environment (Python 3.6) imports: the worker and what it imports.
PY36 = ["__init__.py", "frameworks/__init__.py", "frameworks/worker.py", "core/__init__.py", "core/paths.py",
        "core/files.py", "core/params.py", "core/threads.py"]


@pytest.mark.parametrize("path", PY36)
def test_what_the_worker_imports_is_python_36(path):
    source = (PACKAGE / path).read_text()
    tree = ast.parse(source, feature_version=(3, 6))        # no walrus, no positional-only parameters
    futures = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__"
               for a in n.names]
    assert "annotations" not in futures
    assert "missing_ok" not in source                       # Path.unlink(missing_ok=...) is Python 3.8


def test_the_cntk_environment_imports_the_worker():
    python = ROOT / ".envs" / "cntk" / "bin" / "python"
    require_env(python, "CNTK environment")
    out = subprocess.run([str(python), "-c", "import rosetta.frameworks.worker, rosetta.core.params, "
                          "rosetta.core.threads; print('ok')"], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(PACKAGE.parent), "ROSETTA_ROOT": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
