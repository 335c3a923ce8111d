// cxx_uncaught [throw=RANKS:KIND]... [handler=before|after]: the listed ranks
// ("1,3,6" or "all") throw an exception that nothing catches, so
// std::terminate ends them with SIGABRT; the other ranks wait in
// MPI_Allreduce for ranks that never come. KIND: runtime_error
// (std::runtime_error("loss is nan")), custom (a class not derived from
// std::exception), int (throw 42). handler=before: the program installs its
// own terminate handler before MPI_Init (a preloaded library arms in
// MPI_Init); handler=after: after it. Either prints a line, then aborts.
// Without throw= the job is healthy. The tests preload the library.
#include <mpi.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace model {
struct DivergedError {   // deliberately not a std::exception: no what()
  int step;
};
}  // namespace model

__attribute__((noinline)) static void train_step(const std::string &kind, int step)
{
  if (kind == "runtime_error")
    throw std::runtime_error("loss is nan");
  if (kind == "custom")
    throw model::DivergedError{step};
  if (kind == "int")
    throw 42;
  std::fprintf(stderr, "cxx_uncaught: unknown kind %s\n", kind.c_str());
}

__attribute__((noinline)) static void run_training(const std::string &kind)
{
  for (int step = 0; step < 3; step++)
    if (step == 2)
      train_step(kind, step);
}

static void own_terminate()
{
  std::fprintf(stderr, "cxx_uncaught: own terminate handler\n");
  std::abort();
}

int main(int argc, char **argv)
{
  std::vector<std::pair<std::string, std::string>> throws;   // (ranks, kind)
  std::string handler;
  for (int i = 1; i < argc; i++) {
    const char *colon = std::strchr(argv[i], ':');
    if (std::strncmp(argv[i], "throw=", 6) == 0 && colon)
      throws.emplace_back(std::string(argv[i] + 6, (size_t)(colon - argv[i] - 6)), std::string(colon + 1));
    else if (std::strncmp(argv[i], "handler=", 8) == 0)
      handler = argv[i] + 8;
  }
  if (handler == "before")
    std::set_terminate(own_terminate);
  MPI_Init(&argc, &argv);
  if (handler == "after")
    std::set_terminate(own_terminate);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);   // every rank is armed before anyone throws
  for (const auto &t : throws)
    if (mpn_rank_in(t.first.c_str(), rank))
      run_training(t.second);
  int one = 1, sum = 0;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("cxx_uncaught: %d ranks finished\n", sum);
  MPI_Finalize();
  return 0;
}
