# bench.smoke: the benchmark runner, cut to one repetition on 2 ranks, must
# exit 0 and print its table (header and one row per configuration).
# Timings are printed for the log, never judged.
execute_process(
  COMMAND ${PYTHON} ${RUNNER} --quick --reps 1 --nps 2
          --bench-exe ${BENCH_EXE} --lib ${LIB} --mpirun ${MPIRUN}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 280)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "run_bench.py failed (${rc}):\n${err}")
endif()
foreach(row "np +iters +app level +configuration +provided"
            "\n +2 +[0-9]+ +single +preload +[a-z]+->[a-z]+ +[0-9.]+"
            "\n +2 +[0-9]+ +multiple +preload +[a-z]+->[a-z]+ +[0-9.]+"
            "\n +2 +[0-9]+ +single +preload\\+keep +[a-z]+->[a-z]+ +[0-9.]+")
  if(NOT out MATCHES "${row}")
    message(FATAL_ERROR "run_bench.py printed no table row matching '${row}'\n${err}")
  endif()
endforeach()
