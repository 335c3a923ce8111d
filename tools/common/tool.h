/*
 * tool.h - small helpers shared by the mpinotify command-line tools.
 *
 * The tools are clients of the public API only (include/mpinotify.h); what
 * lives here is plumbing that every tool needs and the library does not
 * export: strict number parsing, out-of-memory-safe allocation, and one
 * format for diagnostics.
 */
#ifndef MPN_TOOL_H
#define MPN_TOOL_H

#include <mpinotify.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The name every diagnostic starts with ("mpinotify-run"); set once in main(). */
extern const char *tool_name;

/* Prints "<tool_name>: <message>\n" to stderr. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parses a whole string as a base-10 long: no sign tricks, no trailing junk,
 * no overflow. Returns false on any of those.
 */
bool tool_parse_long(const char *s, long *out);

/* Allocation that cannot return NULL: a tool out of memory exits with 70 (EX_SOFTWARE). */
void *tool_xmalloc(size_t n);
char *tool_xstrdup(const char *s);
char *tool_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Joins n strings with `sep` into a new string. */
char *tool_join(char *const *items, size_t n, const char *sep);

/* The part of a path after its last '/'. Points into `path`. */
const char *tool_basename(const char *path);

/* CLOCK_MONOTONIC in milliseconds. */
long tool_now_ms(void);

/* CLOCK_REALTIME in milliseconds since the epoch: the time messages carry (mpn_format_time). */
long long tool_wall_ms(void);

/* ---- with the library's public API ---- */

/* Prints "<tool_name> VERSION (libmpinotify VERSION at PATH)" on stdout. */
void tool_print_version(void);

/*
 * A command-line argument as a diagnostic may show it: a URL in it (also the
 * value of "--opt=URL") with its secrets masked (mpn_mask_text). New string.
 */
char *tool_shown_arg(const char *arg);

/*
 * Reports a usage error, "<tool_name>: <what><arg>" with `arg` (may be NULL)
 * passed through tool_shown_arg, then calls `usage(stderr)`. Returns 2.
 */
int tool_usage_error(void (*usage)(FILE *), const char *what, const char *arg);

/* The usage error for `c`, the ':' or '?' that getopt_long (with opterr = 0) returned. Returns 2. */
int tool_option_error(void (*usage)(FILE *), int c, char **argv);

/* MPINOTIFY_URLS followed by the given URLs, separated by spaces, as the library reads that variable. */
char *tool_urls_with(char *const *urls, size_t n);

/* Prints each line of `text` (the library's '\n'-separated problems, secrets masked) with tool_warn. */
void tool_warn_lines(const char *text);

/* ---- help texts: the facts come from the library's tables ---- */

/* The library's setting `name` ("MPINOTIFY_TIMEOUT_MS"), or NULL. */
const mpn_setting *tool_setting(const char *name);

/* An option's range and default from setting `name`: "100..3600000 ms
 * (MPINOTIFY_TIMEOUT_MS; default 10000)"; "(NAME)" for a setting without a
 * range. New string. */
char *tool_setting_range(const char *name);

/* A setting's description with its range and default: "how long ...:
 * 0..60000 ms, default 500". New string. */
char *tool_setting_help(const mpn_setting *s);

/* The channel kinds' forms: "KIND+https://... (KIND: webhook slack ...),
 * smtp(s)://..., console://". New string. */
char *tool_kind_forms(void);

/* One item of a help text: `label` from column 2, `text` from column `col`
 * (after two spaces when the label is longer), wrapped before column 79. */
void tool_help_item(FILE *out, int col, const char *label, const char *text);

#endif /* MPN_TOOL_H */
