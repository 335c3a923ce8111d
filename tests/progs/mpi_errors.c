/* mpi_errors [STEP]...: a plain MPI program (the library is preloaded) that
 * makes MPI errors, one STEP at a time, with a barrier after each:
 *   fatal=RANKS        ranks in RANKS send to an invalid rank on MPI_COMM_WORLD
 *                      (default handler, MPI_ERRORS_ARE_FATAL: the job aborts)
 *   return=RANKS       every rank sets MPI_ERRORS_RETURN on MPI_COMM_WORLD; ranks in
 *                      RANKS send to an invalid rank and print what the call returned
 *   comm_return=RANKS  every rank dups MPI_COMM_WORLD (which stays fatal), sets
 *                      MPI_ERRORS_RETURN on the dup, splits the dup; ranks in RANKS
 *                      send to an invalid rank on the split (named "halves"): it
 *                      inherits RETURN
 *   abort=RANK:CODE    RANK says why on stderr ("ERROR: ..."), then calls
 *                      MPI_Abort(MPI_COMM_WORLD, CODE); the others wait
 *   get=RANKS          MPI_Comm_get_errhandler gives back what the program set
 *                      (prints "get ok" or what differs); a user handler set on a dup
 *                      is called for an error there (ranks in RANKS make one)
 * RANKS: "1,3,6" or "all". Ends with MPI_Finalize and status 0. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

static int rank, size;

static void show(const char *what, int rc)
{
  int cls = -1, len = 0;
  char text[MPI_MAX_ERROR_STRING] = "";
  MPI_Error_class(rc, &cls);
  MPI_Error_string(rc, text, &len);
  printf("rank %d %s returned %d class %d (%s)\n", rank, what, rc, cls, text);
}

/* The call site the reports must name: a frame of its own. */
__attribute__((noinline)) int bad_send(MPI_Comm comm)
{
  int x = 1;
  int rc = MPI_Send(&x, 1, MPI_INT, size + 5, 0, comm);
  __asm__ volatile("" ::: "memory");   /* no tail call */
  return rc;
}

__attribute__((noinline)) void abort_site(int code)
{
  fflush(stdout);
  fprintf(stderr, "ERROR: rank %d cannot go on: mesh.dat has no cells (code %d)\n", rank, code);
  MPI_Abort(MPI_COMM_WORLD, code);
  __asm__ volatile("" ::: "memory");
}

static int user_calls;
static void user_handler(MPI_Comm *comm, int *code, ...)
{
  (void)comm;
  user_calls++;
  int cls = -1;
  MPI_Error_class(*code, &cls);
  printf("rank %d user handler called with class %d\n", rank, cls);
}

static int problems;
static void expect(const char *what, MPI_Errhandler got, MPI_Errhandler want)
{
  if (got != want) {
    printf("rank %d get MISMATCH %s\n", rank, what);
    problems++;
  }
  MPI_Errhandler_free(&got);   /* a get returns a reference the caller frees */
}

static void get_step(const char *ranks)
{
  MPI_Errhandler eh, mine;
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh);
  expect("world default", eh, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh);
  expect("world return", eh, MPI_ERRORS_RETURN);
  MPI_Comm dup, dup2;
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Comm_get_errhandler(dup, &eh);
  expect("dup inherits return", eh, MPI_ERRORS_RETURN);
  MPI_Comm_create_errhandler(user_handler, &mine);
  MPI_Comm_set_errhandler(dup, mine);
  MPI_Errhandler kept = mine;
  MPI_Errhandler_free(&mine);   /* the communicator keeps it alive */
  MPI_Comm_get_errhandler(dup, &eh);
  expect("dup user", eh, kept);
  MPI_Comm_dup(dup, &dup2);
  MPI_Comm_get_errhandler(dup2, &eh);
  expect("dup of dup inherits user", eh, kept);
  if (mpn_rank_in(ranks, rank)) {
    int rc = bad_send(dup2);
    if (user_calls != 1 || rc == MPI_SUCCESS)
      printf("rank %d user handler calls %d rc %d\n", rank, user_calls, rc), problems++;
  }
  MPI_Comm_free(&dup2);
  MPI_Comm_free(&dup);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_get_errhandler(MPI_COMM_WORLD, &eh);
  expect("world fatal again", eh, MPI_ERRORS_ARE_FATAL);
  printf("rank %d get %s\n", rank, problems ? "FAILED" : "ok");
}

static void step(char *arg)
{
  char *eq = strchr(arg, '=');
  if (!eq)
    return;
  *eq = '\0';
  char *ranks = eq + 1, *rest = strchr(ranks, ':');
  if (rest)
    *rest++ = '\0';
  int mine = mpn_rank_in(ranks, rank);
  if (!strcmp(arg, "fatal")) {
    if (mine)
      show("fatal send", bad_send(MPI_COMM_WORLD));   /* not reached: the job aborts */
  } else if (!strcmp(arg, "return")) {
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (mine)
      show("send", bad_send(MPI_COMM_WORLD));
  } else if (!strcmp(arg, "comm_return")) {
    MPI_Comm dup, split;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    MPI_Comm_split(dup, rank % 2, rank, &split);
    MPI_Comm_set_name(split, "halves");
    if (mine)
      show("split send", bad_send(split));
    MPI_Comm_free(&split);
    MPI_Comm_free(&dup);
  } else if (!strcmp(arg, "abort")) {
    if (mine)
      abort_site(rest ? atoi(rest) : 1);
  } else if (!strcmp(arg, "get")) {
    get_step(ranks);
  }
  fflush(stdout);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 1; i < argc; i++) {
    step(argv[i]);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0)
    printf("finished\n");
  MPI_Finalize();
  return 0;
}
