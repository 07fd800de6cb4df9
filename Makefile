# freshet's front door.  Everything real lives in CMake and scripts/.
#   make test   install deps, build (default + CUDA-off + ASan/UBSan + fuzz),
#               run every test suite
#   make demo   install deps, build, run the local demo cluster (Ctrl-C stops)
#   make build  install deps and build build/
#   make bench  build and run the benchmarks
#   make fuzz   run each fuzz target longer (FUZZ_SECONDS, default 300)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300

.PHONY: all deps build test bench fuzz demo clean

all: build

deps:
	scripts/install-deps

build: deps
	cmake -S . -B build
	cmake --build build -j$(JOBS)

test: deps
	scripts/test-all

demo: build
	scripts/demo

bench: build
	scripts/run-bench

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/test-all fuzz

clean:
	rm -rf build build-nocuda build-asan build-fuzz
