/* capture.h - the capture layer (docs/internals/capture.md): fatal-signal
 * handlers, stacks (native through libunwind, Python through CPython's own
 * traceback writer), signatures, the minimal crash record, and the hand-off
 * from a handler to the agent thread. Uses base/ only. Everything marked
 * async-signal-safe may run in a signal handler. */
#ifndef MPN_CAPTURE_H
#define MPN_CAPTURE_H

#include "base/base.h"

#include <ucontext.h>

#define MPN__MAX_FRAMES 64     /* frames captured per backtrace */
#define MPN__SIG_FRAMES 5      /* top frames hashed into the signature */

typedef struct mpn__frame {
  uintptr_t ip;
  uintptr_t offset;            /* ip - module load base */
  uintptr_t function_offset;
  int has_function;
  int call_site;               /* ip is a return address: its source line is the call's (ip - 1) */
  int inlined;                 /* a function inlined into the next frame (lines.c): ip, module and offset are that frame's */
  int line;                    /* source line from the debug information, 0 when unknown */
  char module[MPN__PATH_MAX];
  char function[256];
  char file[MPN__PATH_MAX];    /* source file as the debug information names it, "" when unknown */
} mpn__frame;

/* What the signal handler hands to the agent thread. */
typedef struct mpn__crash_slot {
  int signo;
  int si_code;
  uintptr_t fault_addr;
  int64_t wall_ns;
  int64_t mono_ns;
  pid_t tid;
  siginfo_t info;
  ucontext_t uc;
  int nraw;
  uintptr_t raw[MPN__MAX_FRAMES];
  void *py_tstate;       /* the faulting thread's PyThreadState, or NULL (python.c) */
} mpn__crash_slot;

/* The hand-off between a handler and the agent (signals.c). The runtime
 * fills it when it arms; the handler only reads it and the slot. */
typedef struct mpn__crash_state {
  atomic_int armed;          /* handlers installed, agent running */
  pid_t agent_tid;           /* a fault of the agent itself is not handed to it */
  int wake_fd[2];            /* handler -> agent */
  int reply_fd[2];           /* agent -> handler */
  atomic_long wait_ms;       /* how long a handler waits for the agent's report; a reload may change it (lock-free) */
  mpn__crash_slot slot;
  atomic_int crash_owner;    /* tid of the thread whose crash is handled, 0 if none */
  atomic_int crash_done;
  /* SIGTERM (signals.c's term hook): the handler says 't' on wake_fd and
   * waits (bounded) for term_done; the agent tells the launcher first. */
  atomic_int term_seen;
  atomic_int term_done;
  pid_t term_sender;         /* si_pid of the SIGTERM, 0 when the kernel's */
} mpn__crash_state;
extern mpn__crash_state mpn__crash;

/* ---- signals.c ----------------------------------------------------------- */
int mpn__signals_install(void);             /* (re)install; chains to what is there */
void mpn__signals_uninstall(void);         /* put back what was there, if still ours */
/* SIGTERM: creates the file `marker` (when not NULL or ""), hands 't' to
 * the agent, waits at most wait_ms for term_done, then does what was there
 * before (its handler, or the default action). Not installed over SIG_IGN.
 * 0 when installed (or already ours). */
int mpn__signals_install_term(long wait_ms, const char *marker);
void *mpn__signals_altstack(void);          /* alternate stack for the calling thread; its mapping or NULL */
void mpn__signals_altstack_free(void *mem); /* at thread exit: that mapping */
/* Calls fn(arg); a fault inside it (reading another thread's state) returns -1 instead of ending the process. */
int mpn__guarded_call(void (*fn)(void *), void *arg);

/* ---- unwind.c ------------------------------------------------------------ */
int mpn__unwind_load(void);                 /* dlopen libunwind RTLD_LOCAL; 0 on success */
void mpn__unwind_prime(void);
/* Raw IPs from a signal context; async-signal-safe once primed. */
int mpn__unwind_raw(ucontext_t *uc, uintptr_t *ips, int max);
/* Full frames with module/offset/symbol from a saved context (agent thread). */
int mpn__unwind_frames(ucontext_t *uc, mpn__frame *frames, int max);
void mpn__symbolize(mpn__frame *f);
void mpn__demangle(char *name, size_t cap);   /* a C++ symbol in place, when the C++ runtime is there */
int mpn__unwind_here(mpn__frame *frames, int max, int skip);   /* the caller's stack, not a signal's */

/* ---- lines.c: file and line through libdw (never in a signal handler) ---- */
/* Copies n frames into out (may be `in`) with file and line, each inlined
 * call a frame of its own before the frame it was inlined into (at most max
 * frames: the outermost are dropped). Waits for libdw at most until
 * deadline_ns (mpn__now_ns's clock); past it, or without libdw, the frames
 * are copied as they are. Returns the number of frames in out. */
int mpn__lines_resolve(const mpn__frame *in, int n, mpn__frame *out, int max, int64_t deadline_ns);

/* ---- signature.c --------------------------------------------------------- */
uint64_t mpn__signature(int signo, const mpn__frame *frames, int n);
int mpn__signature_first_frame(int signo, const mpn__frame *frames, int n);
/* Adds the top frames' module and offset (as for crashes) to a hash. */
uint64_t mpn__signature_add_site(uint64_t h, const mpn__frame *frames, int n);

/* ---- record.c ------------------------------------------------------------ */
void mpn__record_prepare(const char *dir);             /* the record's path, in the spool */
void mpn__record_write(const mpn__crash_slot *slot);   /* async-signal-safe */
void mpn__record_remove(void);

/* ---- threads.c: new threads get an alternate signal stack ---------------- */

/* ---- python.c: Python ranks ---------------------------------------------- */
void mpn__python_prime(void);        /* arm time: CPython's entry points */
void *mpn__python_thread_state(void);   /* async-signal-safe */
void *mpn__python_traceback(void *tstate);   /* json_t * frames, outermost first, or NULL */
int mpn__python_present(void);             /* this process runs CPython */
int mpn__python_dump(void *tstate);          /* ... in two steps: the dump (a memfd, -1: none) while the thread waits, */
void *mpn__python_parse(int fd);             /* then its frames with source lines (files read), closing fd */
int mpn__python_may_call(void);      /* 1: not Python, or this thread holds the GIL of a live interpreter */

/* ---- peek.c: another thread's stack (hang reports) ------------------------ */
int mpn__peek_install(void);   /* a free real-time signal for it; 0 when installed */
/* Thread `tid` of this process pauses (at most 0.5 s) while its frames are
 * unwound into `frames` and its Python frames read (*py_frames: json_t *
 * array or NULL). Agent thread only, one at a time. Frame count, or -1. */
int mpn__peek(pid_t tid, mpn__frame *frames, int max, void **py_frames);
/* SIGURG sent with sigqueue (a value > 0) by mpinotify-send --stacks asks for the job's stacks: the
 * handler keeps the value and wakes the agent ('v'). Only where SIGURG is unused (SIG_DFL). */
int mpn__peek_install_request(void);
int mpn__peek_request_take(void);   /* the pending request's value, 0: none */

/* ---- output.c: the rank's last lines of output ---------------------------- */
#define MPN__OUTPUT_LINE_MAX 4096   /* bytes of a line kept before masking; reports show 400 */
/* At start, in a process of a rank (key: its launcher's variables): a copier
 * process takes fds 1 and 2 over, or the ring a parent of this process made
 * (same key, named by MPINOTIFY_OUTPUT_RING) is used. Once per process,
 * before other threads exist. 0 when a ring is there. */
int mpn__output_start(uint64_t key);
int mpn__output_active(void);
/* The last max_lines lines the rank wrote, cleaned (mpn__output_lines),
 * '\n'-separated, after waiting at most wait_ms for the copier to store what
 * is pending; malloc'd, NULL without a ring. Not in a signal handler. */
char *mpn__output_text(int max_lines, long wait_ms);
/* Lines of raw output as reports show them: escapes, control characters
 * and the library's own console panels dropped, a carriage return keeps what
 * follows it, invalid UTF-8 replaced, empty lines skipped; the last
 * max_lines (> 0), '\n'-separated, malloc'd. */
char *mpn__output_lines(const char *bytes, size_t n, int max_lines);

#endif
