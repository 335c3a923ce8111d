#!/usr/bin/env bash
# The whole test suite: installs the dependencies, builds with warnings as
# errors, runs every test with CTest, then does the same for an
# AddressSanitizer + UndefinedBehaviorSanitizer build. CI runs exactly this.
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
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DMPN_SANITIZE=ON
