/*
 * mpinotify.h - the one public header of libmpinotify.
 *
 * libmpinotify reports failures of MPI jobs: one message per unique failure
 * across all ranks, sent by one elected rank. Most programs need none of this
 * API: preloading the library (or running under mpinotify-run) or linking it
 * is enough, and configuration comes from the environment (see README.md).
 * This header is for programs that want to configure or query the library,
 * and for the tools shipped with it.
 *
 * Conventions for every function below:
 *  - Ownership: strings passed in are copied; nothing returned must be freed
 *    unless the function says so.
 *  - Thread safety: stated per function.
 *  - Signal safety: no function here may be called from a signal handler
 *    unless its comment says "async-signal-safe".
 */
#ifndef MPINOTIFY_H
#define MPINOTIFY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPN_BUILDING_LIBRARY) && defined(__GNUC__)
#  define MPN_EXTERN __attribute__((visibility("default")))
#else
#  define MPN_EXTERN
#endif

#define MPN_VERSION_MAJOR 0
#define MPN_VERSION_MINOR 1
#define MPN_VERSION_PATCH 0
#define MPN_VERSION_STRING "0.1.0"
/* One number that grows with every release: 0xMMmmpp. */
#define MPN_VERSION_NUM ((MPN_VERSION_MAJOR << 16) | (MPN_VERSION_MINOR << 8) | MPN_VERSION_PATCH)

/*
 * Error codes. This enum only grows: values are never renumbered or reused,
 * so they may be stored and compared across versions.
 */
typedef enum mpn_code {
  MPN_OK = 0,
  MPN_E_INVALID_ARGUMENT = 1,  /* a NULL or out-of-range argument */
  MPN_E_NO_MEMORY = 2,         /* an allocation failed */
  MPN_E_BAD_URL = 3,           /* a channel URL could not be parsed */
  MPN_E_UNKNOWN_KIND = 4,      /* a channel URL names no known channel kind */
  MPN_E_DISABLED = 5,          /* MPINOTIFY_DISABLE is set */
  MPN_E_ALREADY_INITIALIZED = 6, /* mpn_init was called twice */
  MPN_E_NOT_INITIALIZED = 7,   /* the library is not active in this process */
  MPN_E_TIMEOUT = 8,           /* a deadline passed */
  MPN_E_DELIVERY = 9,          /* a channel did not accept a message */
  MPN_E_ELECTION = 10,         /* ranks could not agree on a reporter */
  MPN_E_MPI = 11,              /* an MPI call failed */
  MPN_E_UNWIND = 12,           /* no backtrace could be taken */
  MPN_E_IO = 13,               /* a file or pipe operation failed */
  MPN_E_BUFFER_TOO_SMALL = 14, /* the caller's buffer was too small; output is truncated */
  MPN_E_BAD_CONFIG = 15        /* an environment variable or option has an invalid value */
} mpn_code;

/*
 * Describes an error code with a fixed English string. Unknown values give
 * "unknown error". Never NULL. Thread-safe; async-signal-safe.
 */
MPN_EXTERN const char *mpn_strerror(mpn_code code);

/* The library's version, "MAJOR.MINOR.PATCH". Thread-safe; async-signal-safe. */
MPN_EXTERN const char *mpn_version(void);

/*
 * The absolute path of the libmpinotify shared object this process runs,
 * for tools that preload it into other processes. NULL when the library is
 * linked statically. Thread-safe.
 */
MPN_EXTERN const char *mpn_library_path(void);

/*
 * Validates a list of channel URLs as MPINOTIFY_URLS takes it (separated by
 * white space or commas). Returns MPN_OK when every URL is valid, or the code
 * of the first problem. `err` (when non-NULL) receives one line per problem,
 * separated by '\n', each naming the URL with its secrets masked. An empty
 * list is valid (the console channel is then used). Thread-safe.
 */
MPN_EXTERN mpn_code mpn_check_urls(const char *urls, char *err, size_t errlen);

/*
 * Validates the whole configuration the environment holds now: every
 * MPINOTIFY_* variable the library reads, URLs included. Same contract as
 * mpn_check_urls. A launcher that has run this and reported the problems sets
 * MPINOTIFY_CONFIG_CHECKED=1 for the ranks, which then stay quiet about them.
 * Not thread-safe against concurrent setenv().
 */
MPN_EXTERN mpn_code mpn_check_environment(char *err, size_t errlen);

/*
 * A program that links libmpinotify only to use this API (a tool, a test
 * driver) and must not be watched itself writes MPN_API_ONLY_PROGRAM; at file
 * scope in one source file and links with
 * -Wl,--export-dynamic-symbol=mpn_api_only_program: the library then never
 * arms itself in that process.
 */
#define MPN_API_ONLY_PROGRAM \
  __attribute__((visibility("default"), used)) const int mpn_api_only_program = 1

/*
 * Writes `url` to `out` with every secret masked: the password, every query
 * value and every path segment that could be a token (anything but a short
 * lower-case word such as "services" or "hook") become "***". Always
 * NUL-terminates a non-empty buffer. Returns MPN_E_BUFFER_TOO_SMALL when the
 * result was truncated. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_mask_url(const char *url, char *out, size_t outlen);

/*
 * Options for an explicit mpn_init(). Opaque; create with
 * mpn_options_new(), configure with the setters, pass to mpn_init(), which
 * takes ownership. A setter copies its argument and returns MPN_OK, or
 * MPN_E_INVALID_ARGUMENT for a NULL handle or an out-of-range value.
 * An options object is not thread-safe: configure it from one thread.
 * Values not set come from the environment (MPINOTIFY_*), then defaults.
 */
typedef struct mpn_options mpn_options;

/* A new options object, or NULL when out of memory. */
MPN_EXTERN mpn_options *mpn_options_new(void);
/* Frees an options object that was not passed to mpn_init(). NULL is a no-op. */
MPN_EXTERN void mpn_options_free(mpn_options *opts);
/* Channel URLs, as in MPINOTIFY_URLS. Validated by mpn_init(). */
MPN_EXTERN mpn_code mpn_options_set_urls(mpn_options *opts, const char *urls);
/* The job's name, shown in every message (MPINOTIFY_JOB_NAME). */
MPN_EXTERN mpn_code mpn_options_set_job_name(mpn_options *opts, const char *name);
/* The job's command line, shown in every message; secrets in it are masked. */
MPN_EXTERN mpn_code mpn_options_set_job_command(mpn_options *opts, const char *command);
/* Time budget from a fault to the end of its handling, 100..3600000 ms (MPINOTIFY_TIMEOUT_MS). */
MPN_EXTERN mpn_code mpn_options_set_timeout_ms(mpn_options *opts, long ms);
/* Gathering window for ranks hitting the same failure, 0..60000 ms (MPINOTIFY_WINDOW_MS). */
MPN_EXTERN mpn_code mpn_options_set_window_ms(mpn_options *opts, long ms);

/*
 * Activates the library in a program that links it and wants to configure
 * it in code, before MPI_Init. Takes ownership of `opts` (also on error;
 * NULL means "environment only"). Without this call, a linked or preloaded
 * library configures itself from the environment. Returns
 * MPN_E_ALREADY_INITIALIZED once the library is active (it activates itself
 * in MPI_Init), MPN_E_DISABLED when MPINOTIFY_DISABLE is set, or a
 * configuration error (the library then stays active with the valid
 * channels). Call from one thread, before starting others.
 */
MPN_EXTERN mpn_code mpn_init(mpn_options *opts);

/* 1 when the library is armed in this process (handlers installed), else 0. Thread-safe. */
MPN_EXTERN int mpn_is_active(void);

#ifdef __cplusplus
}
#endif

#endif /* MPINOTIFY_H */
