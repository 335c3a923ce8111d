/*
 * app_words.h - the line of a job's output that explains its failure in the
 * application's own words: an "ERROR:" / "Error:" line (LAMMPS and most
 * simulation codes), the last line of a Python traceback ("ValueError: ..."),
 * gfortran's "Fortran runtime error: ...", or the C++ runtime's "terminate
 * called after throwing an instance of 'T'" with its "what():" line. Fed one
 * line at a time, in order; keeps the strongest kind, and of those the first
 * failure (the root cause comes before its consequences), except that a
 * chained Python traceback ends with the exception that ended the program.
 *
 * Not thread-safe: the caller serialises (job_watch holds its lock).
 */
#ifndef MPN_APP_WORDS_H
#define MPN_APP_WORDS_H

typedef struct app_words {
  char *best;            /* malloc'd, or NULL */
  int strength;          /* of best: 0 none, 1 an ERROR line, 2 a runtime's own report */
  int in_traceback;      /* inside a Python traceback's frames */
  int chained;           /* "During handling..." / "The above exception...": the next one is later */
  char *throwing;        /* the type of a C++ terminate, waiting for its what() line */
  char *fortran_at;      /* "solver.f90:12" from gfortran's "At line 12 of file solver.f90", for the next line */
} app_words;

void app_words_line(app_words *a, const char *line);
void app_words_free(app_words *a);

#endif
