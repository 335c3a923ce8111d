#!/usr/bin/env bash
# The whole test suite: installs the dependencies, builds with warnings as
# errors, runs every test with CTest, then does the same for an
# AddressSanitizer + UndefinedBehaviorSanitizer build, then runs the libFuzzer
# targets of tests/fuzz for a bounded time each. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${MPN_SKIP_DEPS:-0}" = 1 ] || scripts/install-deps.sh
jobs=$(nproc)

run_suite() {   # build-dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DMPN_WERROR=ON "$@"
  cmake --build "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== regular build =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== sanitizer build (ASan + UBSan) =="
# The library's own signal handling must see the faults the tests provoke;
# Open MPI's allocations at exit are not ours to report. A preloaded library
# comes before the runtime the programs link: tell ASan that is fine.
export ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:allow_user_segv_handler=1:detect_leaks=0:verify_asan_link_order=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DMPN_SANITIZE=ON
echo "== fuzzers (libFuzzer, clang; ${MPN_FUZZ_SECONDS:-30} s each) =="
# Only the fuzz targets are built (with clang); each fuzz.* test runs one
# for MPN_FUZZ_SECONDS and fails on a crash, a leak or a broken invariant.
CC=clang cmake -S . -B build-fuzz -DMPN_FUZZ=ON -DMPN_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
  -DMPN_FUZZ_SECONDS="${MPN_FUZZ_SECONDS:-30}"
cmake --build build-fuzz -j"$jobs" --target fuzzers
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)
