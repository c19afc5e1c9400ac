# CNTK 2.7 for chapters/appendix_cntk.md: a Python 3.6 environment (CNTK's last wheel has no newer
# Python). CNTK links against OpenMPI 1.10's sonames; Debian 12 has OpenMPI 4 (libopenmpi3), so
# two links in the environment's folder map the old names to the new libraries, and the chapter
# puts that folder on LD_LIBRARY_PATH for CNTK's process only (nothing is added to system folders).
# The helper package is put on the path with a .pth file: pip cannot install a pyproject.toml
# project in editable mode on Python 3.6. The chapter runs its program there through
# rosetta.frameworks.worker; no Jupyter kernel is needed.
CNTK_ENV := .envs/cntk
PYTHON36 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.6*/bin/python3.6) $(shell command -v python3.6 2>/dev/null))
CNTK_LIBDIR := $(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
# What this machine lacks for CNTK, in words (empty: nothing). OpenMPI is installed by the rule
# below when make runs as root.
SKIP_cntk := $(strip \
  $(if $(and $(PYTHON36),$(wildcard $(PYTHON36))),,CNTK 2.7 needs Python 3.6$(if $(PYTHON36), and $(PYTHON36) does not exist, and none was found); \
    install one (for example: pyenv install 3.6.15) or set PYTHON36=/path/to/python3.6) \
  $(if $(shell dpkg -s libopenmpi3 >/dev/null 2>&1 || test "$$(id -u)" = 0 && echo ok),,CNTK 2.7 needs \
    the OpenMPI library; install it (sudo apt-get install libopenmpi3)))

.PHONY: cntk-system-deps
cntk-system-deps:
	@dpkg -s libopenmpi3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libopenmpi3; }

$(CNTK_ENV)/.installed: envs/requirements-cntk.txt | cntk-system-deps
	rm -rf $(CNTK_ENV)
	$(PYTHON36) -m venv $(CNTK_ENV)
	$(CNTK_ENV)/bin/python -m pip install -q pip==21.3.1
	$(CNTK_ENV)/bin/python -m pip install -q -r envs/requirements-cntk.txt
	$(CNTK_ENV)/bin/python -m pip check
	echo "$(CURDIR)/code" > $$($(CNTK_ENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/rosetta-book.pth
	mkdir -p $(CNTK_ENV)/mpi-compat
	ln -sf /usr/lib/$(CNTK_LIBDIR)/libmpi.so.40 $(CNTK_ENV)/mpi-compat/libmpi.so.12
	ln -sf /usr/lib/$(CNTK_LIBDIR)/libmpi_cxx.so.40 $(CNTK_ENV)/mpi-compat/libmpi_cxx.so.1
	LD_LIBRARY_PATH=$(CURDIR)/$(CNTK_ENV)/mpi-compat $(CNTK_ENV)/bin/python -c "import cntk, rosetta.frameworks.worker"
	touch $@

EXTRA_ENV_NAMES += cntk
ENV_cntk := $(CNTK_ENV)/.installed
NEEDS_cntk := CNTK 2.7 needs $(PYTHON36), the pins of envs/requirements-cntk.txt from PyPI and Debian's libopenmpi3: \
  provide those and run make again
