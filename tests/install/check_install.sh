#!/usr/bin/env bash
# Installs the build into a fresh prefix (no root) and uses it the ways a user
# would: CMake's find_package, pkg-config, mpinotify-run and mpinotify-send.
# usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name 'libmpinotify.so*' -type f -printf '%h\n' | head -1)
[ -n "$libdir" ] || fail "no libmpinotify.so under $prefix"
for f in "$prefix/include/mpinotify.h" "$libdir/libmpinotify.a" "$prefix/bin/mpinotify-run" \
         "$prefix/bin/mpinotify-send" \
         "$libdir/cmake/mpinotify/mpinotifyConfig.cmake" "$libdir/pkgconfig/mpinotify.pc"; do
  [ -e "$f" ] || fail "missing $f"
done
# The C++ helper (uncaught exceptions) sits beside the library, which itself stays C.
if [ -e "$build/lib/libmpinotify_cxx.so" ]; then
  [ -e "$libdir/libmpinotify_cxx.so" ] || fail "missing $libdir/libmpinotify_cxx.so beside libmpinotify.so"
fi
if readelf -d "$libdir/libmpinotify.so" | grep NEEDED | grep -q 'libstdc++'; then
  fail "libmpinotify.so needs libstdc++: C programs would load the C++ runtime"
fi

# 1. find_package from a separate project.
cmake -S "$src/tests/install/consumer" -B "$tmp/c1" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/c1" >/dev/null
out=$(MPINOTIFY_URLS=console:// "$tmp/c1/consumer") || fail "find_package consumer: $out"
case $out in *"library=$libdir/libmpinotify.so"*) ;; *) fail "find_package consumer runs another library: $out" ;; esac
echo "find_package: $out"
out=$(MPINOTIFY_URLS=console:// "$tmp/c1/consumer_static") || fail "static consumer: $out"
case $out in *"library=(static)"*) ;; *) fail "static consumer loads a shared library: $out" ;; esac
echo "find_package (static): $out"

# 2. pkg-config, the way a Makefile uses it.
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -o "$tmp/c2" "$src/tests/install/consumer/consumer.c" $(pkg-config --cflags --libs mpinotify) \
   -Wl,-rpath,"$libdir" $(mpicc -showme:link)
out=$("$tmp/c2") || fail "pkg-config consumer: $out"
echo "pkg-config: $out"

# 3. The installed mpinotify-run preloads the installed library (a launcher
#    that is not Open MPI's gets it through the environment).
got=$("$prefix/bin/mpinotify-run" -- sh -c 'echo "$LD_PRELOAD"')
case $got in "$libdir/libmpinotify.so"*) ;; *) fail "installed mpinotify-run preloads '$got'" ;; esac
echo "mpinotify-run preloads: $got"

# 4. The installed mpinotify-send runs with the installed library.
got=$("$prefix/bin/mpinotify-send" --version) || fail "installed mpinotify-send --version: $got"
case $got in *"at $libdir/libmpinotify.so"*) ;; *) fail "installed mpinotify-send runs another library: $got" ;; esac
echo "mpinotify-send: $got"
# 5. The Python package, beside the library in the prefix's Python site folder: importable, and it
#    finds the installed library by itself (no MPINOTIFY_LIBRARY, nothing preloaded).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
site=$(find "$prefix" -type d -name mpinotify -path '*-packages/*' | head -1)
[ -n "$site" ] && [ -e "$site/_boot/sitecustomize.py" ] && [ -e "$site/_paths.py" ] || fail "no Python package under $prefix"
got=$(cd "$tmp" && env -u MPINOTIFY_LIBRARY PYTHONPATH="$(dirname "$site")" "$py" -c \
  'import mpinotify, mpinotify._lib as l; lib = l.get(); print(l.source(), lib.mpn_version().decode())') \
  || fail "installed Python package: $got"
case $got in "_paths "*) ;; *) fail "the package did not find the installed library: $got" ;; esac
echo "python: $got"
# A Python rank with the installed library preloaded gets the installed package's hooks.
got=$(cd "$tmp" && env -u PYTHONPATH LD_PRELOAD="$libdir/libmpinotify.so" OMPI_COMM_WORLD_RANK=0 "$py" -c \
  'import sys, mpinotify; print(sys.excepthook.__module__, mpinotify.__file__)') || fail "preloaded Python rank: $got"
case $got in "mpinotify._hook $site/"*) ;; *) fail "a preloaded Python rank did not boot the installed package: $got" ;; esac
echo "python rank: $got"
echo "install: ok"
