# Convenience front end: `make` builds build/sluice; `make test` installs dependencies and runs every suite.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps run test unit asan fuzz bench clean format

all:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/deps.sh

run: deps all
	$(BUILD)/sluice up

test: deps
	@scripts/test.sh

unit: all
	cd $(BUILD) && ctest --output-on-failure

bench: deps all
	@bench/run.sh

fuzz:
	@CC=clang cmake -S . -B build-fuzz -DSLUICE_FUZZ=ON -DSLUICE_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-clang build-fuzz
