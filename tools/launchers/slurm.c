/*
 * slurm.c - Slurm's srun. It passes its own environment on to the ranks, so
 * LD_PRELOAD reaches them from there; what mpinotify-run knows of it beyond
 * that is its options, for the guesses made from a command line.
 */
#include "launcher.h"

#include <stddef.h>

static const char *const one_value[] = {
  "-n", "-N", "-c", "-p", "-t", "-J", "-A", "-w", "-o", "-e", "-i", "-D", "-G", "-q", "-C", "-m", "--ntasks",
  "--nodes", "--cpus-per-task", "--partition", "--time", "--job-name", "--account", "--nodelist", "--exclude",
  "--output", "--error", "--input", "--chdir", "--mpi", "--mem", "--gpus", "--ntasks-per-node", "--cpu-bind",
  "--distribution", "--qos", "--constraint", NULL};
static const char *const np[] = {"-n", "--ntasks", "--ntasks=", NULL};

const launcher launcher_slurm = {
  .name = "Slurm",
  .one_value = one_value,
  .np = np,
};
