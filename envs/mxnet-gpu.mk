# MXNet's CUDA build for chapters/mxnet.md, only with `make ... GPU=1`: mxnet-cu117 1.9.1 and the
# CUDA 11 / cuDNN 8 wheels it needs, in an environment of its own (their files would clash with
# the CUDA 12 wheels of .venv-gpu). Its kernel `rosetta-mxnet-gpu` runs the MXNet chapter
# (ROSETTA_KERNELS, read by rosetta-build); without GPU=1 the chapter runs on the main kernel.
ifdef GPU
MXNET_GPU_ENV := .envs/mxnet-gpu

$(MXNET_GPU_ENV)/.installed: envs/requirements-mxnet-gpu.txt code/pyproject.toml $(STAMP)
	rm -rf $(MXNET_GPU_ENV)
	$(PYTHON) -m venv $(MXNET_GPU_ENV)
	$(MXNET_GPU_ENV)/bin/python -m pip install -q -r envs/requirements-mxnet-gpu.txt
	$(MXNET_GPU_ENV)/bin/python -m pip install -q --no-deps -e code
	$(MXNET_GPU_ENV)/bin/python -m pip check
	$(MXNET_GPU_ENV)/bin/python -m ipykernel install --prefix $(VENV) --name rosetta-mxnet-gpu --display-name "Python 3 (rosetta-mxnet-gpu)"
	touch $@

EXTRA_ENVS += $(MXNET_GPU_ENV)/.installed
export ROSETTA_KERNELS := mxnet=rosetta-mxnet-gpu
endif
