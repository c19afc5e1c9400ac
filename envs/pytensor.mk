# PyTensor (Theano's successor) for chapters/pytensor.md, and JAX with Optax for chapters/jax.md: a Python 3.11 environment with NumPy 2,
# PyTensor and JAX (CPU build), which cannot share the main environment's NumPy 1.26. Its Jupyter
# kernel `rosetta-pytensor` is registered in the prefix of the environment the build runs in
# ($(VENV): .venv, or .venv-gpu with GPU=1), where papermill looks; one stamp per environment, so
# that each gets it.
PYTENSOR_ENV := .envs/pytensor

$(PYTENSOR_ENV)/.installed: envs/requirements-pytensor.txt code/pyproject.toml
	rm -rf $(PYTENSOR_ENV)
	$(PYTHON) -m venv $(PYTENSOR_ENV)
	$(PYTENSOR_ENV)/bin/python -m pip install -q -r envs/requirements-pytensor.txt
	$(PYTENSOR_ENV)/bin/python -m pip install -q --no-deps -e code
	$(PYTENSOR_ENV)/bin/python -m pip check
	touch $@

$(VENV)/.kernel-pytensor: $(PYTENSOR_ENV)/.installed $(STAMP)
	$(PYTENSOR_ENV)/bin/python -m ipykernel install --prefix $(VENV) --name rosetta-pytensor --display-name "Python 3 (rosetta-pytensor)"
	touch $@

EXTRA_ENV_NAMES += pytensor
ENV_pytensor := $(VENV)/.kernel-pytensor
NEEDS_pytensor := it needs $(PYTHON) (and its venv module) and the wheels of envs/requirements-pytensor.txt \
  (PyTensor, JAX, NumPy 2) from PyPI: provide those (or a wheel folder, PIP_FIND_LINKS) and run make again
try-pytensor: $(STAMP)
