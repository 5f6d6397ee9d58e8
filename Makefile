# Sluice: the two commands (make run, make test) and a few conveniences around CMake.
.PHONY: run test build release fuzz bench-http lint format stack-up stack-down clean

# Runs Sluice locally on this machine, installing what it needs.
run:
	scripts/run

# The whole test suite: install, build with sanitizers, real stack, ctest, pytest, fuzz.
test:
	scripts/test

build:
	cmake -S . -B build -G Ninja -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=ON
	cmake --build build

release:
	cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build build-release

bench-http: release
	bench/http/run

lint:
	scripts/lint

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

clean:
	rm -rf build build-release build-test build-fuzz
