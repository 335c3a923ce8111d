/* fork_crash RANK: that rank forks a child that segfaults, waits for it, then
 * segfaults itself. Only the parent is a rank: the report must name the
 * parent's pid and never the child's. Both pids are printed for the test. */
#include <mpi.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }

int main(int argc, char **argv) {
  int rank, one = 1, sum = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (argc > 1 && atoi(argv[1]) == rank) {
    printf("parent rank %d pid %d\n", rank, (int)getpid());
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
      printf("child pid %d\n", (int)getpid());
      fflush(stdout);
      bad_fn(1);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child status %d signaled %d\n", status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    fflush(stdout);
    bad_fn(2);
  }
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
