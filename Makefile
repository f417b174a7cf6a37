# Thin wrapper over CMake for the README's commands.
#   make run    install what is missing, build, start the mock upstream and tollgate (conf/tollgate.yaml)
#   make test   install what is missing, build, run every test suite (unit, e2e, ASan, short fuzz)
#   make build  build only (Release, warnings are errors)
#   make bench  run the benchmark suite (QUICK=1 for the short variant)
#   make browser  the browser tests of the Manage and Admin pages (Debian's chromium, headless)
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build run test unit e2e browser asan bench clean fuzz fuzz-build soak

all: build

deps:
	@scripts/deps.sh run

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTG_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/run.sh $(BUILD)

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory unit e2e browser asan fuzz

unit:
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e:
	@cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	@TOLLGATE_BIN=$(CURDIR)/$(BUILD)/tollgate TOLLGATE_MOCK_BIN=$(CURDIR)/$(BUILD)/tollgate-mock \
		node --test --test-concurrency=1 tests/e2e/

# The pages in headless Chromium against the real binary (docs/ui.md); SCREENSHOTS=1 refreshes docs/screenshots/.
browser:
	@scripts/deps.sh browser
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@cd tests/browser && TOLLGATE_BIN=$(CURDIR)/$(BUILD)/tollgate TOLLGATE_MOCK_BIN=$(CURDIR)/$(BUILD)/tollgate-mock \
		node --test --test-concurrency=1

# The unit tests and the end-to-end suite again, under AddressSanitizer and UBSan.
asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)
	@TOLLGATE_BIN=$(CURDIR)/$(ASAN_BUILD)/tollgate TOLLGATE_MOCK_BIN=$(CURDIR)/$(BUILD)/tollgate-mock \
		TOLLGATE_SANITIZED=1 node --test --test-concurrency=1 tests/e2e/

# Benchmarks (benchmarks.md): QUICK=1 make bench for the 3-minute variant.
bench: build
	@scripts/deps.sh bench
	@bench/run.sh

# libFuzzer targets (tests/fuzz/): clang, coverage + ASan + UBSan, in their own build dir.
#   make fuzz   replay the regression inputs, then fuzz each target FUZZ_SECS seconds (default 10)
#   make soak   the same, 5 minutes per target, then the crash matrix for CRASH_ROUNDS rounds (default 20)
FUZZ_BUILD ?= build-fuzz
FUZZ_SECS ?= 10
FUZZ_TARGETS = fuzz_json_scan fuzz_sse fuzz_usage fuzz_config fuzz_multipart fuzz_proto fuzz_acl fuzz_mapper \
  fuzz_mgmt_body fuzz_h1wire fuzz_run_usage

fuzz-build:
	@scripts/deps.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DTG_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(FUZZ_TARGETS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECS)

CRASH_ROUNDS ?= 20

soak: fuzz-build build
	@tests/fuzz/run.sh $(FUZZ_BUILD) 300
	@cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	@CRASH_ROUNDS=$(CRASH_ROUNDS) TOLLGATE_BIN=$(CURDIR)/$(BUILD)/tollgate TOLLGATE_MOCK_BIN=$(CURDIR)/$(BUILD)/tollgate-mock \
		node --test --test-concurrency=1 --test-timeout=3600000 tests/e2e/crash_matrix.test.js

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
