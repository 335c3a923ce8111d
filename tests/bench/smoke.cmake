# bench.smoke: the benchmark runner, cut to one repetition on 2 ranks (and a
# failing job on 2 and 4), must exit 0 and print all four tables. Exit 0
# includes "exactly one message per failure, listing every faulting rank".
# Timings are printed for the log, never judged.
execute_process(
  COMMAND ${PYTHON} ${RUNNER} --quick --reps 1 --nps 2 --fault-nps 2,4
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
