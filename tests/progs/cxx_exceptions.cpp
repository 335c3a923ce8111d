// cxx_exceptions [N]: each rank throws and catches N exceptions through a few
// frames and prints a checksum. Under preload the output must be identical:
// the library must not take over the C++ unwinder (_Unwind_* symbols).
#include <mpi.h>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

struct Bad : std::runtime_error {
  long code;
  Bad(const std::string &what, long c) : std::runtime_error(what), code(c) {}
};

__attribute__((noinline)) static long deep(long i, int depth) {
  if (depth == 0) {
    if (i % 3 == 0) throw Bad("bad " + std::to_string(i), i * 7 + 1);
    if (i % 3 == 1) throw std::out_of_range("range");
    return i;
  }
  return deep(i, depth - 1) + 1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  long n = argc > 1 ? std::atol(argv[1]) : 20000, sum = 0;
  for (long i = 0; i < n; i++) {
    try {
      sum += deep(i + rank, (int)(i % 5));
    } catch (const Bad &e) {
      sum += e.code + (long)e.what()[0];
    } catch (const std::exception &e) {
      sum -= (long)std::string(e.what()).size();
    }
  }
  std::printf("rank %d checksum %ld\n", rank, sum);
  MPI_Finalize();
  return 0;
}
