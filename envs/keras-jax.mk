# Keras on JAX for chapters/appendix_keras.md: a Python 3.11 environment with Keras and JAX
# (the TensorFlow and PyTorch backends use the main environment). The chapter runs its program
# there through rosetta.frameworks.worker; no Jupyter kernel is needed.
KERAS_JAX_ENV := .envs/keras-jax

$(KERAS_JAX_ENV)/.installed: envs/requirements-keras-jax.txt code/pyproject.toml
	rm -rf $(KERAS_JAX_ENV)
	$(PYTHON) -m venv $(KERAS_JAX_ENV)
	$(KERAS_JAX_ENV)/bin/python -m pip install -q -r envs/requirements-keras-jax.txt
	$(KERAS_JAX_ENV)/bin/python -m pip install -q --no-deps -e code
	$(KERAS_JAX_ENV)/bin/python -m pip check
	touch $@

EXTRA_ENVS += $(KERAS_JAX_ENV)/.installed
