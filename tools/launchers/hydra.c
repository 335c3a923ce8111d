/*
 * hydra.c - MPICH's and Intel MPI's launcher (Hydra: mpiexec.hydra, and
 * their mpirun/mpiexec). It passes its own environment on to the ranks, so
 * LD_PRELOAD reaches them from there; what mpinotify-run knows of it beyond
 * that is its options, for the guesses made from a command line.
 */
#include "launcher.h"

#include <stddef.h>

static const char *const one_value[] = {"-n", "-np", "-ppn", "-host", "-hosts", "-f", "-hostfile", "-machinefile",
                                        "-wdir", "-launcher", "-genvlist", "-envlist", NULL};
static const char *const two_values[] = {"-genv", "-env", NULL};
static const char *const np[] = {"-n", "-np", NULL};

const launcher launcher_hydra = {
  .name = "Hydra",
  .one_value = one_value,
  .two_values = two_values,
  .np = np,
};
