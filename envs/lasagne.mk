# Lasagne 0.1 for chapters/appendix_lasagne.md: pure Python on top of Theano-PyMC, so it goes into
# the main environment (requirements.txt stays as it is) with --no-deps; the chapter runs on the
# main kernel. Re-done whenever the main environment is rebuilt.
LASAGNE_STAMP := $(VENV)/.lasagne-installed

$(LASAGNE_STAMP): envs/requirements-lasagne.txt $(STAMP)
	$(BIN)/python -m pip install -q --no-deps -r envs/requirements-lasagne.txt
	$(BIN)/python -m pip check
	touch $@

EXTRA_ENVS += $(LASAGNE_STAMP)
