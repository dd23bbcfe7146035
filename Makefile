# kube-sticky: `make demo` shows the whole stack, `make test` runs every test.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PRESET ?= dev
BUILD_DIR := build/$(PRESET)

.PHONY: all deps configure build test unit integration demo demo-down bench format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) -G Ninja >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test: unit, integration (real sockets, real kube-apiserver + etcd).
test: build
	@test/env/kube-apiserver.sh ensure
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

integration: build
	@test/env/kube-apiserver.sh ensure
	@cd $(BUILD_DIR) && ctest --output-on-failure -L integration

# The whole stack locally, narrated; leaves it running. `make demo-down` stops it.
demo: build
	@test/env/kube-apiserver.sh ensure
	@BUILD_DIR=$(BUILD_DIR) scripts/demo.sh

demo-down:
	@scripts/demo.sh down

# Benchmarks against HAProxy's stick table on this machine (docs/performance.md): release build,
# then throughput/latency, memory per session at 1M sessions, config apply under load.
# `make bench QUICK=1` for short smoke runs; results are kept in build/release/bench/.
bench:
	@cmake --preset release -G Ninja >/dev/null
	@cmake --build build/release --target sticky-proxy -j $(JOBS)
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/run.sh $(if $(QUICK),--quick) --out build/release/bench
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/table_fill.sh $(if $(QUICK),--quick) --out build/release/bench
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/config_push.sh $(if $(QUICK),--quick) --out build/release/bench

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
