# kube-sticky: `make demo` shows the whole stack, `make test` runs every test.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
# Tests in parallel: the integration tests mostly wait on sockets and child processes, so twice
# the cores keeps the CPU busy without starving anyone.
TEST_JOBS ?= $(shell echo $$(( 2 * $$(nproc) )))
PRESET ?= dev
BUILD_DIR := build/$(PRESET)

# ccache, when installed, keeps compiled objects outside the checkout (keyed by content, paths
# relative to the checkout), so a fresh clone in CI rebuilds in minutes instead of half an hour.
ifneq ($(shell command -v ccache),)
export CMAKE_CXX_COMPILER_LAUNCHER := ccache
export CCACHE_DIR ?= $(or $(STICKY_CACHE_DIR),$(HOME)/.cache/kube-sticky)/ccache
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE ?= 5G
endif

.PHONY: all deps configure build build-release lint lint-fast test test-start test-dev test-sanitizers test-asan test-tsan unit integration demo demo-down \
	bench format clean fuzz fuzz-build fuzz-smoke

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) -G Ninja >/dev/null

build: configure
	@scripts/phase-times.sh mark dev-build
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test: lint (format, layers, clang-tidy; cached by content), unit and integration (real sockets, real
# kube-apiserver + etcd, helm), then the same tests under ASan+UBSan, then the proxy's under TSan,
# then every fuzz target for a bounded time (the dev and asan runs replay the seed corpora too).
# Each phase's wall-clock time is printed at the end (scripts/phase-times.sh).
test: test-start lint test-dev test-sanitizers fuzz-smoke build-release
	@scripts/phase-times.sh report
	@echo "==> all tests passed"

test-start:
	@scripts/phase-times.sh reset

test-sanitizers: test-asan test-tsan

test-dev: build
	@scripts/phase-times.sh mark dev-tests
	@test/env/kube-apiserver.sh ensure
	@echo "==> tests ($(BUILD_DIR))"
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(TEST_JOBS) --timeout 900

# Shell-driven checks (chart, Dockerfile, monitoring) need no second run under the sanitizers.
# "file descriptors run out" runs the proxy out of descriptors, which the sanitizers' runtimes
# need themselves (UBSan's vptr check probes memory through a pipe and then reports every
# virtual call as through an invalid vptr; reproduced standalone, docs/security.md): dev only.
SANITIZER_SKIP := chart_test|dockerfile_test|monitoring_test|file descriptors run out

test-asan: deps
	@scripts/phase-times.sh mark asan
	@test/env/kube-apiserver.sh ensure
	@echo "==> ASan+UBSan build and tests (build/asan)"
	@cmake --preset asan -G Ninja >/dev/null
	@cmake --build build/asan -j $(JOBS)
	@cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(TEST_JOBS) --timeout 900 -E '$(SANITIZER_SKIP)'

# TSan covers the proxy (the concurrent part we own); cpprestsdk is not TSan-instrumented.
test-tsan: deps
	@scripts/phase-times.sh mark tsan
	@echo "==> TSan build and proxy tests (build/tsan)"
	@cmake --preset tsan -G Ninja -DSTICKY_BUILD_OPERATOR=OFF >/dev/null
	@cmake --build build/tsan -j $(JOBS)
	@cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -j $(TEST_JOBS) --timeout 900 -E '$(SANITIZER_SKIP)'

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

integration: build
	@test/env/kube-apiserver.sh ensure
	@cd $(BUILD_DIR) && ctest --output-on-failure -L integration

# The whole stack locally, narrated; leaves it running. `make demo-down` stops it. Builds only the
# three programs it runs, not the tests; scripts/demo.sh builds kube-apiserver on first use.
demo: configure
	@echo "==> building sticky-proxy, sticky-operator and sticky-test-backend in $(BUILD_DIR)"
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target sticky-proxy sticky-operator sticky-test-backend
	@BUILD_DIR=$(BUILD_DIR) scripts/demo.sh

demo-down:
	@scripts/demo.sh down

# The release preset (-O3, -Werror) that make bench and the Dockerfile use: GCC warns differently
# at -O3, so make test compiles it too.
build-release: deps
	@scripts/phase-times.sh mark release-build
	@echo "==> release build (build/release: what make bench and the image run)"
	@cmake --preset release -G Ninja >/dev/null
	@cmake --build build/release --target sticky-proxy sticky-operator -j $(JOBS)

# Benchmarks against HAProxy's stick table on this machine (docs/performance.md): release build,
# then throughput/latency, memory per session at 1M sessions, config apply under load.
# `make bench QUICK=1` for short smoke runs; results are kept in build/release/bench/.
bench:
	@cmake --preset release -G Ninja >/dev/null
	@cmake --build build/release --target sticky-proxy -j $(JOBS)
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/run.sh $(if $(QUICK),--quick) --out build/release/bench
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/table_fill.sh $(if $(QUICK),--quick) --out build/release/bench
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/config_push.sh $(if $(QUICK),--quick) --out build/release/bench
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/shared_table.sh $(if $(QUICK),--quick) --out build/release/bench/shared-table
	@STICKY_PROXY_BIN=build/release/proxy/sticky-proxy test/bench/access_log.sh $(if $(QUICK),--quick) --out build/release/bench

# The fuzz targets (fuzz/, docs/fuzzing.md): clang-14 + libFuzzer under ASan + UBSan (preset fuzz,
# build/fuzz). `make fuzz` runs each for FUZZ_SECONDS on a working corpus under build/fuzz/corpus;
# `make fuzz-smoke` (part of make test) for FUZZ_SMOKE_SECONDS, JOBS targets at a time.
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20

fuzz-build: deps
	@scripts/phase-times.sh mark fuzz
	@echo "==> fuzz targets (build/fuzz: clang-14, libFuzzer, ASan+UBSan)"
	@cmake --preset fuzz -G Ninja >/dev/null
	@cmake --build build/fuzz --target sticky_fuzz -j $(JOBS)

fuzz: fuzz-build
	@scripts/fuzz.sh --seconds $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@scripts/fuzz.sh --seconds $(FUZZ_SMOKE_SECONDS) --jobs $(JOBS)

# clang-format drift, include layers, clang-tidy's bug-finding checks (.clang-tidy): scripts/lint.sh.
lint: deps
	@scripts/phase-times.sh mark lint
	@scripts/lint.sh

lint-fast: deps
	@scripts/lint.sh --no-tidy

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
