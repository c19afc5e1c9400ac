# PyTensor (Theano's successor) for chapters/pytensor.md, and JAX with Optax for chapters/jax.md: a Python 3.11 environment with NumPy 2,
# PyTensor and JAX (CPU build), which cannot share the main environment's NumPy 1.26. Its Jupyter
# kernel `rosetta-pytensor` is registered in the main environment's prefix, where papermill looks.
PYTENSOR_ENV := .envs/pytensor

$(PYTENSOR_ENV)/.installed: envs/requirements-pytensor.txt code/pyproject.toml $(STAMP)
	rm -rf $(PYTENSOR_ENV)
	$(PYTHON) -m venv $(PYTENSOR_ENV)
	$(PYTENSOR_ENV)/bin/python -m pip install -q -r envs/requirements-pytensor.txt
	$(PYTENSOR_ENV)/bin/python -m pip install -q --no-deps -e code
	$(PYTENSOR_ENV)/bin/python -m pip check
	$(PYTENSOR_ENV)/bin/python -m ipykernel install --prefix $(VENV) --name rosetta-pytensor --display-name "Python 3 (rosetta-pytensor)"
	touch $@

EXTRA_ENVS += $(PYTENSOR_ENV)/.installed
