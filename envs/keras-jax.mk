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

EXTRA_ENV_NAMES += keras-jax
ENV_keras-jax := $(KERAS_JAX_ENV)/.installed
NEEDS_keras-jax := it needs $(PYTHON) (and its venv module) and the wheels of envs/requirements-keras-jax.txt \
  (Keras, JAX) from PyPI: provide those (or a wheel folder, PIP_FIND_LINKS) and run make again
