/* base.h - the ground layer of lib/ (docs/internals/base.md): time, strings,
 * signal-safe formatting, logging, hashing, hex, names, valid UTF-8, and who
 * this process is. It calls nothing above it. Names are mpn__ (internal) or
 * static; see CONTRIBUTING.md. */
#ifndef MPN_BASE_H
#define MPN_BASE_H

#include "mpinotify.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#define MPN__HOST_MAX 64
#define MPN__PATH_MAX 512

/* ---- util.c: time, strings ---------------------------------------------- */
int64_t mpn__now_ns(void);            /* CLOCK_MONOTONIC; async-signal-safe */
int64_t mpn__wall_ns(void);           /* CLOCK_REALTIME; async-signal-safe */
void mpn__sleep_ms(long ms);
size_t mpn__strlcpy(char *dst, const char *src, size_t size);
/* Async-signal-safe formatting into a fixed buffer; all return the new length. */
size_t mpn__fmt_str(char *buf, size_t cap, size_t len, const char *s);
size_t mpn__fmt_u64(char *buf, size_t cap, size_t len, uint64_t v);
size_t mpn__fmt_i64(char *buf, size_t cap, size_t len, int64_t v);
size_t mpn__fmt_hex(char *buf, size_t cap, size_t len, uint64_t v);
void mpn__iso8601(int64_t wall_ns, char *out, size_t cap);   /* 2026-11-22T10:00:00.123Z */
/* A growing string, NUL-terminated (p is NULL only when memory ran out, and
 * mpn__buf_add then adds nothing); a failed growth keeps what fitted. */
typedef struct mpn__buf {
  char *p;
  size_t len, cap;
} mpn__buf;
mpn__buf mpn__buf_make(size_t hint);   /* the one initialiser: hint bytes, "" */
void mpn__buf_add(mpn__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The one thread starter: a detached or joinable thread (t may be NULL when
 * detached), named, with the process's asynchronous signals blocked (they
 * belong to the application); stack 0: the default size. 0 on success, else
 * pthread_create's error number. */
int mpn__thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg, int detached, size_t stack);
/* Closes descriptors lo..hi: close_range, or one close() per descriptor
 * where it fails (kernels before 5.9, seccomp profiles). Async-signal-safe
 * (a child between fork and exec). */
void mpn__close_between(unsigned lo, unsigned hi);

/* ---- util.c: who this process is ---------------------------------------- */
typedef struct mpn__self_t {
  pid_t pid;
  int rank;                       /* -1 until known */
  int world_size;
  int disabled;                   /* MPINOTIFY_DISABLE, or a tool using the API only */
  char host[MPN__HOST_MAX];
  char self_path[MPN__PATH_MAX];  /* this library's file, "" if static */
} mpn__self_t;
extern mpn__self_t mpn__self;
int mpn__mpi_world_rank_from_env(void);   /* the launcher's rank for this process, -1 if none */
int mpn__world_size_from_env(void);   /* the launcher's job size (OMPI_COMM_WORLD_SIZE, ...), 0 if none */

/* ---- log.c --------------------------------------------------------------- */
extern atomic_int mpn__log_debug_on;   /* MPINOTIFY_DEBUG, set with the configuration */
void mpn__log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- hash.c: FNV-1a 64, the one hash; async-signal-safe ------------------ */
#define MPN__FNV_OFFSET 0xcbf29ce484222325ULL
#define MPN__FNV_PRIME 0x100000001b3ULL
/* The seed event signatures, job tokens and names of variables have always
 * used (one digit short of FNV's offset): changing it changes what users saw. */
#define MPN__HASH_SEED 1469598103934665603ULL
uint64_t mpn__hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t mpn__hash_str(uint64_t h, const char *s);        /* NULL adds nothing */
uint64_t mpn__hash_sep(uint64_t h, unsigned char sep);    /* a separator: ("ab","c") != ("a","bc") */

/* ---- hex.c --------------------------------------------------------------- */
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void mpn__hex_encode(const unsigned char *in, size_t n, char *out);
int mpn__hex_key(const char *hex, unsigned char key[32]);   /* 64 hex digits; 0 on success */

/* ---- names.c ------------------------------------------------------------- */
const char *mpn__signal_name(int signo);    /* "SIGSEGV", "SIG?" if unknown; async-signal-safe */

/* ---- text.c -------------------------------------------------------------- */
struct json_t;
struct json_t *mpn__jstr(const char *s);    /* a JSON string of valid UTF-8, or null */
/* Replaces every invalid UTF-8 sequence with U+FFFD: JSON needs valid text. */
char *mpn__utf8_sanitize(const char *s, size_t len);
size_t mpn__utf8_len(const char *s);        /* characters */
/* Appends one problem line to err; keeps the first lines when it is full. */
void mpn__add_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The words of a flag (any case): on, then off; settings' error texts list them. */
#define MPN__FLAG_ON "1,yes,true,on"
#define MPN__FLAG_OFF "0,no,false,off"
int mpn__flag_word(const char *v);          /* 1: a word of MPN__FLAG_ON, 0: of MPN__FLAG_OFF, -1: neither */
int mpn__env_flag(const char *name);        /* 1 for a word of MPN__FLAG_ON */
/* The index of `v` in the comma-separated `list`, or -1; `nocase`: any case. */
int mpn__word_index(const char *list, const char *v, int nocase);

#endif
