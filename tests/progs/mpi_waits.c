/* mpi_waits: the blocking calls the library follows (lib/runtime/mpi_waits.c),
 * for tests/scenarios/hang.py; the library is preloaded by the tests.
 *
 *   mpi_waits stall RANK SECONDS [progress]
 *       RANK sleeps SECONDS outside MPI (calling mpn_progress every second
 *       with `progress`, found with dlsym: the program does not link the
 *       library) while the others wait in MPI_Allreduce for it.
 *   mpi_waits every
 *       every followed call once, each result checked: the wrappers forward
 *       to the real calls with the arguments unchanged. Exit 1 on a wrong
 *       result (the failing call on stderr).
 */
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size, bad;

static void expect(int ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "rank %d: %s gave a wrong result\n", rank, what);
    bad = 1;
  }
}

static int stall(int who, int seconds, int progress)
{
  int (*prog)(long long, long long, const char *) = NULL;   /* mpn_progress */
  if (progress)
    *(void **)&prog = dlsym(RTLD_DEFAULT, "mpn_progress");
  if (rank == who) {
    for (int s = 0; s < seconds; s++) {
      if (prog)
        prog(s + 1, seconds, "stalling");
      sleep(1);
    }
  }
  long in = rank, out = 0;
  MPI_Allreduce(&in, &out, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  expect(out == (long)size * (size - 1) / 2, "MPI_Allreduce");
  printf("rank %d done\n", rank);
  return 0;
}

static void collectives(void)
{
  int one = 1, sum = 0, all[64], counts[64], displs[64], v = rank;
  MPI_Barrier(MPI_COMM_WORLD);
  int root = rank == 0 ? 42 : 0;
  MPI_Bcast(&root, 1, MPI_INT, 0, MPI_COMM_WORLD);
  expect(root == 42, "MPI_Bcast");
  MPI_Reduce(&one, &sum, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
  expect(rank != 0 || sum == size, "MPI_Reduce");
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(sum == size, "MPI_Allreduce");
  for (int i = 0; i < size; i++)
    counts[i] = 1, displs[i] = i;
  MPI_Gather(&v, 1, MPI_INT, all, 1, MPI_INT, 0, MPI_COMM_WORLD);
  expect(rank != 0 || all[size - 1] == size - 1, "MPI_Gather");
  MPI_Gatherv(&v, 1, MPI_INT, all, counts, displs, MPI_INT, 0, MPI_COMM_WORLD);
  expect(rank != 0 || all[size - 1] == size - 1, "MPI_Gatherv");
  MPI_Scatter(all, 1, MPI_INT, &v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  expect(v == rank, "MPI_Scatter");
  MPI_Scatterv(all, counts, displs, MPI_INT, &v, 1, MPI_INT, 0, MPI_COMM_WORLD);
  expect(v == rank, "MPI_Scatterv");
  MPI_Allgather(&v, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
  expect(all[size - 1] == size - 1, "MPI_Allgather");
  MPI_Allgatherv(&v, 1, MPI_INT, all, counts, displs, MPI_INT, MPI_COMM_WORLD);
  expect(all[size - 1] == size - 1, "MPI_Allgatherv");
}

static void exchanges(void)
{
  int mine[64], got[64], counts[64], displs[64], sum = 0, one = 1;
  MPI_Datatype types[64];
  for (int i = 0; i < size; i++)
    mine[i] = rank * 100 + i, counts[i] = 1, displs[i] = i, types[i] = MPI_INT;
  MPI_Alltoall(mine, 1, MPI_INT, got, 1, MPI_INT, MPI_COMM_WORLD);
  expect(got[size - 1] == (size - 1) * 100 + rank, "MPI_Alltoall");
  MPI_Alltoallv(mine, counts, displs, MPI_INT, got, counts, displs, MPI_INT, MPI_COMM_WORLD);
  expect(got[0] == rank, "MPI_Alltoallv");
  for (int i = 0; i < size; i++)
    displs[i] = i * (int)sizeof(int);   /* Alltoallw's displacements are in bytes */
  MPI_Alltoallw(mine, counts, displs, types, got, counts, displs, types, MPI_COMM_WORLD);
  expect(got[0] == rank, "MPI_Alltoallw");
  for (int i = 0; i < size; i++)
    mine[i] = 1;
  MPI_Reduce_scatter(mine, &sum, counts, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(sum == size, "MPI_Reduce_scatter");
  MPI_Reduce_scatter_block(mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(sum == size, "MPI_Reduce_scatter_block");
  MPI_Scan(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(sum == rank + 1, "MPI_Scan");
  sum = -1;
  MPI_Exscan(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  expect(rank == 0 || sum == rank, "MPI_Exscan");
}

/* A ring: each rank sends to the next and receives from the previous. */
static void point_to_point(void)
{
  int next = (rank + 1) % size, prev = (rank + size - 1) % size, v = -1, w = rank;
  MPI_Status st;
  MPI_Sendrecv(&w, 1, MPI_INT, next, 1, &v, 1, MPI_INT, prev, 1, MPI_COMM_WORLD, &st);
  expect(v == prev, "MPI_Sendrecv");
  v = rank;
  MPI_Sendrecv_replace(&v, 1, MPI_INT, next, 2, prev, 2, MPI_COMM_WORLD, &st);
  expect(v == prev, "MPI_Sendrecv_replace");
  if (rank == 0) {   /* 0 -> 1: each send mode, then Probe, Mprobe/Mrecv */
    char buf[1024];
    MPI_Buffer_attach(buf, sizeof buf);
    w = 7;
    MPI_Send(&w, 1, MPI_INT, 1, 3, MPI_COMM_WORLD);
    MPI_Ssend(&w, 1, MPI_INT, 1, 4, MPI_COMM_WORLD);
    MPI_Bsend(&w, 1, MPI_INT, 1, 5, MPI_COMM_WORLD);
    MPI_Recv(&v, 1, MPI_INT, 1, 6, MPI_COMM_WORLD, &st);   /* 1's receive of tag 7 is posted: Rsend may go */
    MPI_Rsend(&w, 1, MPI_INT, 1, 7, MPI_COMM_WORLD);
    int size_;
    void *b;
    MPI_Buffer_detach(&b, &size_);
  } else if (rank == 1) {
    MPI_Request rq;
    MPI_Recv(&v, 1, MPI_INT, 0, 3, MPI_COMM_WORLD, &st);
    expect(v == 7, "MPI_Send/MPI_Recv");
    MPI_Probe(0, 4, MPI_COMM_WORLD, &st);
    expect(st.MPI_TAG == 4, "MPI_Probe");
    MPI_Recv(&v, 1, MPI_INT, 0, 4, MPI_COMM_WORLD, &st);
    MPI_Message m;
    MPI_Mprobe(0, 5, MPI_COMM_WORLD, &m, &st);
    v = 0;
    MPI_Mrecv(&v, 1, MPI_INT, &m, &st);
    expect(v == 7, "MPI_Mprobe/MPI_Mrecv");
    MPI_Irecv(&v, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, &rq);
    MPI_Send(&w, 1, MPI_INT, 0, 6, MPI_COMM_WORLD);
    v = 0;
    MPI_Wait(&rq, &st);
    expect(v == 7, "MPI_Rsend/MPI_Wait");
  }
}

static void waits(void)
{
  int next = (rank + 1) % size, prev = (rank + size - 1) % size, v[2] = {-1, -1}, w = rank, idx = -1, n = 0, ids[2];
  MPI_Request rq[2];
  MPI_Irecv(&v[0], 1, MPI_INT, prev, 8, MPI_COMM_WORLD, &rq[0]);
  MPI_Isend(&w, 1, MPI_INT, next, 8, MPI_COMM_WORLD, &rq[1]);
  MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
  expect(v[0] == prev, "MPI_Waitall");
  MPI_Irecv(&v[1], 1, MPI_INT, prev, 9, MPI_COMM_WORLD, &rq[0]);
  MPI_Isend(&w, 1, MPI_INT, next, 9, MPI_COMM_WORLD, &rq[1]);
  MPI_Waitany(2, rq, &idx, MPI_STATUS_IGNORE);
  expect(idx == 0 || idx == 1, "MPI_Waitany");
  while (rq[0] != MPI_REQUEST_NULL || rq[1] != MPI_REQUEST_NULL) {
    MPI_Waitsome(2, rq, &n, ids, MPI_STATUSES_IGNORE);
    expect(n != MPI_UNDEFINED, "MPI_Waitsome");
  }
  expect(v[1] == prev, "MPI_Waitany/MPI_Waitsome");
}

static void communicators(void)
{
  MPI_Comm half, dup, made;
  MPI_Group g;
  int r = -1;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  MPI_Comm_rank(half, &r);
  expect(r == rank / 2, "MPI_Comm_split");
  MPI_Comm_dup(MPI_COMM_WORLD, &dup);
  MPI_Comm_group(MPI_COMM_WORLD, &g);
  MPI_Comm_create(dup, g, &made);
  MPI_Comm_rank(made, &r);
  expect(r == rank, "MPI_Comm_dup/MPI_Comm_create");
  int x = 0, *base;
  MPI_Win win;
  MPI_Win_allocate(sizeof(int), sizeof(int), MPI_INFO_NULL, made, &base, &win);
  *base = 0;
  MPI_Win_fence(0, win);
  MPI_Put(&x, 1, MPI_INT, (rank + 1) % size, 0, 1, MPI_INT, win);
  MPI_Win_fence(0, win);
  MPI_Win_free(&win);
  MPI_Group_free(&g);
  MPI_Comm_free(&made);
  MPI_Comm_free(&dup);
  MPI_Comm_free(&half);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc >= 4 && !strcmp(argv[1], "stall"))
    stall(atoi(argv[2]), atoi(argv[3]), argc > 4 && !strcmp(argv[4], "progress"));
  else if (argc >= 2 && !strcmp(argv[1], "every") && size >= 2 && size <= 64) {
    collectives();
    exchanges();
    point_to_point();
    waits();
    communicators();
    printf("rank %d: every call %s\n", rank, bad ? "FAILED" : "ok");
  } else {
    fprintf(stderr, "usage: mpi_waits stall RANK SECONDS [progress] | every (2..64 ranks)\n");
    bad = 2;
  }
  MPI_Finalize();
  return bad;
}
