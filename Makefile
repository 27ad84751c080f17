# mnist-train: common tasks. `make help` lists them.
SWIFT ?= swift
CONFIG ?= configs/lenet.json
RELEASE_FLAGS = -c release
RELEASE = $(SWIFT) build $(RELEASE_FLAGS)
BIN = .build/release
TEST_FLAGS = -c release -Xswiftc -enable-testing

.PHONY: help setup build test train smoke data bench eval sweep viz clean interop-check torch-check best mpi-test mpi-bench

help:
	@echo "make setup  - install the system libraries (zlib, OpenBLAS, Open MPI; apt-get, needs root)"
	@echo "make train  - set up, build, fetch MNIST and train $(CONFIG) (CONFIG=... to change)"
	@echo "make test   - set up and run the test suite (optimized build)"
	@echo "make smoke  - a few-second training run on configs/smoke.json"
	@echo "make data   - fetch MNIST into data/mnist (uses ../shared/data/mnist when present)"
	@echo "make bench  - training/evaluation throughput and memory benchmark"
	@echo "make sweep  - example batch run: learning rate x optimizer table"
	@echo "make interop-check - ONNX checker + onnxruntime, TensorBoard on exported models and runs (venv from PyPI)"
	@echo "make torch-check - PyTorch loads batch-norm and every-layer checkpoints strictly, same outputs (venv with torch)"
	@echo "make best   - configs/mnist-best.json with seeds 1, 2, 3 (about 10 minutes each), the README's table"
	@echo "make mpi-test  - data-parallel training under mpirun: one host, then two network-namespace hosts (root)"
	@echo "make mpi-bench - per-step compute and all-reduce times at 1 and 2 processes, and the projection to N hosts"
	@echo "make fuzz / fuzz-ci / sanitize / crash-test / disk-test / nan-test / replay-test - reliability checks"

# Installs what is missing, once; a no-op when the headers are already there.
setup:
	@if [ ! -f /usr/include/zlib.h ] || [ ! -f /usr/include/x86_64-linux-gnu/cblas.h -a ! -f /usr/include/cblas.h ] \
		|| ! pkg-config --exists ompi-c 2>/dev/null || ! command -v mpirun >/dev/null; then \
		echo "installing zlib1g-dev libopenblas-dev libopenmpi-dev openmpi-bin pkg-config"; \
		apt-get update && apt-get install -y zlib1g-dev libopenblas-dev libopenmpi-dev openmpi-bin pkg-config; \
	fi

build: setup
	$(RELEASE)

# One optimized build of the libraries, executables and tests; the unit tests; then the
# replay of hostile command-line sequences against the executables of that build.
test: setup
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build
	BIN_DIR=$(BIN) scripts/reliability/replay_test.sh

data: build
	$(BIN)/mnist-train download --data-dir data/mnist

train: build
	$(BIN)/mnist-train --config $(CONFIG)

smoke: build
	$(BIN)/mnist-train --config configs/smoke.json

bench: build
	scripts/bench.sh

sweep: build
	scripts/sweep.sh

# Builds the executables as `make test` does (a no-op right after it), then checks them.
interop-check: setup
	$(SWIFT) build $(TEST_FLAGS)
	BIN_DIR=$(BIN) scripts/interop/check.sh

torch-check: setup
	$(SWIFT) build $(TEST_FLAGS)
	BIN_DIR=$(BIN) scripts/interop/torch_check.sh

best: build
	scripts/best_runs.sh

# Data-parallel training under Open MPI (scripts/mpi/mpi_test.sh says what each check shows).
# Builds as `make test` does (a no-op right after it).
mpi-test: setup
	$(SWIFT) build $(TEST_FLAGS)
	BIN_DIR=$(BIN) scripts/mpi/mpi_test.sh

mpi-bench: setup
	$(SWIFT) build $(TEST_FLAGS)
	BIN_DIR=$(BIN) scripts/mpi/measure.sh

clean:
	rm -rf .build

-include scripts/reliability/Makefile.inc
