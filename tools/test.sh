#!/bin/sh
# The whole test suite: a release build with every test, then an ASan/UBSan
# build running the suite again with heavy cases scaled down
# (ENGRAM_TEST_SCALE=0.25).  Installs missing packages first.
#   sh tools/test.sh            (both builds)
#   ENGRAM_SKIP_SANITIZE=1 sh tools/test.sh   (release build only)
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
jobs=$(nproc)

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${ENGRAM_SKIP_SANITIZE:-0}" != 1 ]; then
    echo "== sanitizer build (ASan + UBSan) and tests"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DENGRAM_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    ENGRAM_TEST_SCALE=0.25 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi
echo "== all tests passed"
