# Chainer 7.8.1 for chapters/appendix_chainer.md: a Python 3.11 environment of its own. Chainer is
# source only; its build needs pkg_resources, so setuptools and wheel are installed first and
# Chainer is built against them (--no-build-isolation). The chapter runs its program there
# through rosetta.frameworks.worker; no Jupyter kernel is needed.
CHAINER_ENV := .envs/chainer

$(CHAINER_ENV)/.installed: envs/requirements-chainer.txt code/pyproject.toml
	rm -rf $(CHAINER_ENV)
	$(PYTHON) -m venv $(CHAINER_ENV)
	$(CHAINER_ENV)/bin/python -m pip install -q $$(grep -E '^(setuptools|wheel|numpy)==' envs/requirements-chainer.txt)
	$(CHAINER_ENV)/bin/python -m pip install -q --no-build-isolation -r envs/requirements-chainer.txt
	$(CHAINER_ENV)/bin/python -m pip install -q --no-deps -e code
	$(CHAINER_ENV)/bin/python -m pip check
	touch $@

EXTRA_ENV_NAMES += chainer
ENV_chainer := $(CHAINER_ENV)/.installed
NEEDS_chainer := Chainer 7.8.1 is built from its source with $(PYTHON) (and its venv module) from the pins of \
  envs/requirements-chainer.txt on PyPI: provide those (or a wheel folder, PIP_FIND_LINKS) and run make again
