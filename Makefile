# The two commands of the README:
#   make book   set everything up, execute every chapter, build the HTML (_build/html/index.html)
#   make test   set everything up, run the tests
# Options: make book QUICK=1 (quick mode, what CI runs); PYTHON=python3.11 (the interpreter to use);
#          GPU=1 (on a machine with an NVIDIA GPU: the CUDA builds of requirements-gpu.txt in .venv-gpu,
#          MXNet's in envs/mxnet-gpu.mk). `make gpu-lock-check` resolves the GPU lock files without a GPU.
#   FORCE=1 (execute every chapter, even those whose earlier run could be reused: nothing it
#   depends on changed); STRICT=1 (an extra environment that cannot be built here is a failure,
#   not a skip; what CI runs).

PYTHON ?= python3.11
VENV   := $(if $(GPU),.venv-gpu,.venv)
REQUIREMENTS := $(if $(GPU),requirements-gpu.txt,requirements.txt)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rosetta-installed

.PHONY: book test env system-deps notebooks clean gpu-lock-check

# Chapters that need an environment of their own (another Python or NumPy) describe it in
# envs/<name>.mk: the rules that build it (and register its Jupyter kernel in $(VENV)), and
#   EXTRA_ENV_NAMES += <name>
#   ENV_<name>   := the target that builds it
#   NEEDS_<name> := what it needs, and how to provide that, in words
#   SKIP_<name>  := (optional) a prerequisite missing here, in words: the build is not even tried.
# `make env` tries each one (try-<name>). One that cannot be built (a missing prerequisite, or a
# build that fails: its half-built folder is removed) is reported in one line on stderr and in
# .envs/<name>.skipped, and the book's build shows its chapters as not executed; STRICT=1 makes
# that an error. (A lone `EXTRA_ENVS += <target>` is an environment whose failure is fatal.)
EXTRA_ENVS :=
EXTRA_ENV_NAMES :=
-include envs/*.mk
EXTRA_ENVS += $(foreach e,$(EXTRA_ENV_NAMES),$(if $(SKIP_$(e)),skip-$(e),try-$(e)))

book: env
	$(BIN)/rosetta-build $(if $(QUICK),--quick) $(if $(FORCE),--force) $(if $(STRICT),--strict)

# The tests read the quick book in _build/test/_build (tests/conftest.py). It is executed first,
# TEST_JOBS chapters at a time (a quick build's timings are not the book's); a chapter that fails
# here is executed again by the first test that reads it, which reports its error.
TEST_JOBS ?= 2
test: env
	-$(BIN)/rosetta-build --quick --jobs $(TEST_JOBS) --no-html --build-dir _build/test/_build \
	  $(if $(FORCE),--force) $(if $(STRICT),--strict)
	ROSETTA_STRICT=$(STRICT) $(BIN)/python -m pytest tests --durations=15

SKIPPED_SAY = $(if $(STRICT),, (its chapter is skipped; STRICT=1 makes this an error))

skip-%:
	@mkdir -p .envs && printf '%s\n' "$(SKIP_$*)" > .envs/$*.skipped
	@echo "make: the $* environment cannot be built here: $(SKIP_$*)$(SKIPPED_SAY)" >&2
	@$(if $(STRICT),exit 1,true)

# Builds ENV_<name> in a make of its own, its output also kept in .envs/<name>.log; on failure
# removes the half-built .envs/<name> and says why in one line. (SUBMAKE, not $$(MAKE): a dry run,
# make -n, must not run the environments' builds.)
SUBMAKE = $(MAKE)
# After the main environment: every extra one registers its kernel in it, and with `make -j`
# the extra environments build side by side once it exists.
try-%: $(STAMP)
	@mkdir -p .envs && rm -f .envs/$*.skipped; \
	if $(SUBMAKE) --no-print-directory -q $(ENV_$*) 2>/dev/null; then exit 0; fi; \
	{ $(SUBMAKE) --no-print-directory $(ENV_$*) 2>&1; echo $$? > .envs/$*.status; } | tee .envs/$*.log; \
	if [ "$$(cat .envs/$*.status)" = 0 ]; then rm -f .envs/$*.status .envs/$*.log; exit 0; fi; \
	rm -rf .envs/$* .envs/$*.status; \
	reason="the $* environment could not be built: \"$$(grep -v '^make' .envs/$*.log | grep . | tail -n 1)\" (whole output: .envs/$*.log); $(NEEDS_$*)"; \
	printf '%s\n' "$$reason" > .envs/$*.skipped; \
	echo "make: $$reason$(SKIPPED_SAY)" >&2; \
	$(if $(STRICT),exit 1,true)

# The extra environments build side by side (ENV_JOBS at a time; each waits for the main one),
# each one's output kept together (--output-sync).
ENV_JOBS ?= 3
env: $(STAMP) node_modules/.package-lock.json
	@$(MAKE) --no-print-directory -j$(ENV_JOBS) --output-sync=target $(EXTRA_ENVS)

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
