# The two commands of the README:
#   make book   set everything up, execute every chapter, build the HTML (_build/html/index.html)
#   make test   set everything up, run the tests
# Options: make book QUICK=1 (quick mode, what CI runs); PYTHON=python3.11 (the interpreter to use);
#          GPU=1 (on a machine with an NVIDIA GPU: the CUDA builds of requirements-gpu.txt in .venv-gpu,
#          MXNet's in envs/mxnet-gpu.mk). `make gpu-lock-check` resolves the GPU lock files without a GPU.

PYTHON ?= python3.11
VENV   := $(if $(GPU),.venv-gpu,.venv)
REQUIREMENTS := $(if $(GPU),requirements-gpu.txt,requirements.txt)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rosetta-installed

.PHONY: book test env system-deps notebooks clean gpu-lock-check

# Chapters that need an environment of their own (another Python or NumPy) describe it in
# envs/<name>.mk: a rule that builds it and registers its Jupyter kernel, and a line
# `EXTRA_ENVS += <the rule's target>`.
EXTRA_ENVS :=
-include envs/*.mk

book: env
	$(BIN)/rosetta-build $(if $(QUICK),--quick)

test: env
	$(BIN)/python -m pytest tests

env: $(STAMP) node_modules/.package-lock.json $(EXTRA_ENVS)

# Debian packages: OpenBLAS (Theano links it) and Chromium (the browser test reads the book
# in it); skipped where they are present.
SYSTEM_PACKAGES := libopenblas-dev chromium
system-deps:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); }

$(STAMP): $(REQUIREMENTS) code/pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r $(REQUIREMENTS)
	$(BIN)/python -m pip install -q --no-deps -e code
	$(BIN)/python -m pip check
	$(BIN)/python -m ipykernel install --sys-prefix --name rosetta --display-name "Python 3 (rosetta)"
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# Regenerate the Colab copies in notebooks/ after editing a chapter (a test checks they match).
notebooks: env
	$(BIN)/python -m rosetta.book.notebooks

# The GPU lock files resolve against PyPI, `pip check` clean (nothing is installed: no GPU needed).
gpu-lock-check: env
	$(BIN)/python -m rosetta.book.lock requirements-gpu.txt envs/requirements-mxnet-gpu.txt

clean:
	rm -rf _build
