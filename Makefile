# mnist-train: common tasks. `make help` lists them.
SWIFT ?= swift
RELEASE_FLAGS = -c release
TEST_FLAGS = -c release -Xswiftc -enable-testing

.PHONY: help build test train data bench clean

help:
	@echo "make build   - release build of every tool"
	@echo "make test    - the test suite (optimized build)"
	@echo "make train   - train the default config (configs/lenet.json)"
	@echo "make data    - fetch MNIST into data/mnist (uses ../shared/data/mnist when present)"
	@echo "make bench   - training/eval throughput and memory benchmark"

build:
	$(SWIFT) build $(RELEASE_FLAGS)

test:
	$(SWIFT) test $(TEST_FLAGS)

clean:
	rm -rf .build
