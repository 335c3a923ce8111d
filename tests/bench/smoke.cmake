# bench.smoke: the benchmark runner, cut to one repetition on 2 ranks (and a
# failing job on 2 and 4), must exit 0 and print all six tables (the two
# Python ones only where /usr/bin/python3 has mpi4py and numpy; otherwise it
# must say that it skipped them). Exit 0 includes "exactly one message per
# failure, listing every faulting rank" and "the preloaded Python ranks had
# mpinotify's hooks". Timings are printed for the log, never judged.
execute_process(
  COMMAND ${PYTHON} ${RUNNER} --quick --reps 1 --startup-reps 2 --nps 2 --fault-nps 2,4
          --bench-exe ${BENCH_EXE} --fault-exe ${FAULT_EXE} --lib ${LIB} --mpirun ${MPIRUN}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 280)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "run_bench.py failed (${rc}):\n${err}")
endif()
set(num "[0-9.]+ \\([0-9.]+-[0-9.]+\\)")
foreach(row "\nallreduce 8 B +2 +[0-9]+ +single +preload +[a-z]+->[a-z]+ +${num} +${num} +[0-9.]+"
            "\nallreduce 8 B +2 +[0-9]+ +multiple +preload +[a-z]+->[a-z]+ +${num}"
            "\nallreduce 8 B +2 +[0-9]+ +single +preload\\+keep +[a-z]+->[a-z]+ +${num}"
            "\nallreduce 1 MiB +2 +[0-9]+ +single +preload +[a-z]+->[a-z]+ +${num}"
            "\ncompute +2 +[0-9]+ +single +preload +[a-z]+->[a-z]+ +${num}"
            "\n2 +${num} +${num} +[-+][0-9.]+ +${num} +${num} +[-+][0-9.]+ +${num} +${num}"
            "\n4 +2 +1 \\(1 of 1\\) +1 of 1 +${num}"
            "\n4 +${num} +${num} +${num} +${num} +${num} +${num}")
  if(NOT out MATCHES "${row}")
    message(FATAL_ERROR "run_bench.py printed no table row matching '${row}'\n${err}")
  endif()
endforeach()

if(out MATCHES "\nPython ranks: skipped: [^\n]+")
  message(STATUS "bench.smoke: the Python tables were skipped, as the runner said")
  return()
endif()
foreach(row "\nmpi4py Allreduce 8 B +2 +[0-9]+ +mpi4py default +preload +[a-z]+->[a-z]+ +${num} +${num} +[0-9.]+"
            "\nimport mpinotify [^\n]*, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nPython rank start to exit [^\n]*, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nthe same without mpirun [^\n]*, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nthe same, with: MPINOTIFY_PYTHON=0 [^\n]*, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nfrom mpi4py import MPI [^\n]*, np 2, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nMPI.Finalize\\(\\), np 2, ms +${num} +${num} +[-+][0-9.]+ ms"
            "\nRSS per rank, np 2, MiB +${num} +${num} +[-+][0-9.]+ MiB")
  if(NOT out MATCHES "${row}")
    message(FATAL_ERROR "run_bench.py printed no table row matching '${row}'\n${err}")
  endif()
endforeach()
