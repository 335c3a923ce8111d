#!/bin/sh
# uts_rsh.sh HOST COMMAND...: Open MPI's rsh agent for a bed of named hosts on
# this machine: runs COMMAND here, in a UTS namespace of its own whose host
# name is HOST, so the daemon and its ranks believe they are on HOST. Loopback
# only: every daemon still talks to mpirun over this machine's addresses.
host=$1
shift
exec unshare --uts sh -c "hostname '$host' && $*"
