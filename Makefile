# Thin wrapper around CMake: `make` builds into build/, the CLI is build/pgbank.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
CMAKE      ?= cmake
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all test test-sanitize test-citus citus demo install clean deps

# Installs the Debian packages a target needs when they are missing (as
# root; otherwise prints the one `sudo apt-get install` line and stops).
DEPS       ?= ./scripts/deps.sh

all: $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

# Every test: unit tests and the database tests, which start a throwaway
# PostgreSQL server of their own and always remove it.  The tests labelled
# citus need a cluster: make test-citus runs them, with the rest.
test:
	@$(DEPS) test
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(MAKE) --no-print-directory all
	@echo "make test: the tests labelled citus need a cluster and run in make test-citus"
	cd $(BUILD) && ctest --output-on-failure -j 1 -LE citus

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize:
	@$(DEPS) sanitize
	$(CMAKE) -S . -B $(ASAN_BUILD) -DPGBANK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 1 -LE citus

# Citus 13.2.2 for the system's PostgreSQL 15, built from ../shared/vendor
# (or $$CITUS_SRC: a tarball or an unpacked tree) when it is not installed
# there yet; quiet when it is.  As root (it installs into the system).
citus:
	@$(DEPS) citus
	@./scripts/build-citus.sh

# The database tests against a Citus coordinator and two workers started on
# 127.0.0.1 in a mkdtemp directory and always removed: a chaos run that
# restarts a worker, then the suite; the tests about the private server
# itself are listed as not applicable, the rest run (docs/SCALING.md,
# "Running a cluster for tests").
test-citus:
	@$(DEPS) citus
	@$(MAKE) --no-print-directory citus
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@$(MAKE) --no-print-directory all
	./scripts/test-citus.sh $(BUILD)

# The seed's scenario on the embedded default (the private server).
demo:
	@$(DEPS) demo
	@$(MAKE) --no-print-directory all
	./scripts/demo.sh $(BUILD)/pgbank

# Honours DESTDIR and PREFIX.
install: all
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

deps:
	@$(DEPS) test

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
