#!/usr/bin/env bash
# One command for a new user: install the dependencies, build, and watch an
# 8-rank job in which ranks 1, 3 and 6 crash with the same bug while the
# others wait in MPI_Allreduce. mpirun prints its usual noise; mpinotify
# sends one crash message for the three ranks (here to the console and to a
# local webhook), and mpinotify-run one saying how the job ended.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${MPN_SKIP_DEPS:-0}" = 1 ] || scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "== built; starting a local webhook sink and an 8-rank job that crashes =="

work=$(mktemp -d)
trap 'kill "$sink_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 tests/sink/mpn_sink.py --port-file "$work/port" --out "$work/received.jsonl" &
sink_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

# mpirun refuses to run as root (containers, CI) and more ranks than cores
# unless told; a real cluster needs neither.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
set +e
build/tools/mpinotify-run --name demo --url console:// --url "webhook+http://127.0.0.1:$port/demo" \
  -- mpirun -np 8 build/examples/demo_crash 1,3,6
status=$?
set -e
sleep 0.5
echo
echo "== mpirun exited with status $status (139 = SIGSEGV, exactly as without mpinotify) =="
echo "== the webhook received $(wc -l < "$work/received.jsonl") message(s); the first one: =="
python3 -c 'import json,sys; print(json.dumps(json.loads(open(sys.argv[1]).readline())["body"], indent=2))' \
  "$work/received.jsonl"
