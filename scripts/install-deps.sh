#!/usr/bin/env bash
# Installs the Debian packages mpinotify needs to build, test and run.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config   # compiler and build
  openmpi-bin libopenmpi-dev          # MPI: the launcher and the PMPI interface we interpose
  libcurl4-openssl-dev                # delivery over HTTP(S), with OpenSSL
  libssl-dev                          # TLS (libcurl), AES-GCM sealing of relayed messages, HMAC signing
  libunwind-dev                       # backtraces from the faulting context
  libdw-dev                           # file and line of backtrace frames, inlined calls (elfutils' libdw, loaded at run time)
  libjansson-dev                      # JSON: building the webhook body, parsing answers
  libinih-dev                         # the MPINOTIFY_CONFIG file (INI)
  g++ gfortran                        # tests: C++ exceptions and a Fortran MPI program
  python3 openssl ca-certificates     # tests: the loopback webhook sink and its test CA
  clang libclang-rt-dev               # tests/fuzz: libFuzzer (the runtime is only "recommended" by clang)
  python3-mpi4py                      # tests: Python ranks (mpi4py loads libmpi with dlopen), the Python package
  python3-torch                       # tests: a PyTorch CPU job (gloo) under mpirun
  slurm-wlm munge                     # tests (label slurm): a one-node Slurm on localhost, srun --mpi=pmix
)
if ! command -v apt-get >/dev/null; then
  echo "install-deps: no apt-get here; install the equivalents of: ${PACKAGES[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
