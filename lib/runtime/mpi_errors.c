/* errors.c - MPI errors and MPI_Abort, reported with the call site.
 *
 * At MPI_Init our error handlers go on MPI_COMM_WORLD and MPI_COMM_SELF.
 * There is one of ours per handler the application may choose: one for
 * MPI_ERRORS_ARE_FATAL (the default), one for MPI_ERRORS_RETURN and one per
 * user handler (a small pool of trampolines). MPI_Comm_set_errhandler puts
 * the one of ours that stands for the application's choice, so every
 * communicator MPI derives from another (dup, split, create, cart, intercomm)
 * inherits the choice with the handler, by MPI's own rules: no table of
 * communicators, nothing to forget when one is freed. MPI_Comm_get_errhandler
 * gives back the application's handle, with the reference MPI promises.
 *
 * Each handler reports, then does what the application asked for: abort
 * through Open MPI's own MPI_ERRORS_ARE_FATAL function (same messages, same
 * exit status), return (the MPI call returns the error code), or call the
 * user's function. Handlers we cannot call ourselves (created in Fortran, or
 * C++'s MPI::ERRORS_THROW_EXCEPTIONS) are installed as they are, unreported.
 * The library's private communicators keep MPI_ERRORS_RETURN: the table's
 * PMPI functions are the real ones, never ours.
 *
 * The handler runs on the application thread, inside the failing MPI call.
 * A fatal report waits for its election and delivery; the agent thread
 * meanwhile calls MPI on its private communicator, which needs
 * MPI_THREAD_MULTIPLE (the library asks for it; below it the agent stays out
 * of MPI and the report goes through the per-node fallback). */
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { H_FATAL = -1, H_RETURN = -2, H_NONE = -3 };
#define USER_SLOTS 16   /* distinct user handlers we can stand in for; more are installed as they are */

typedef void eh_fn(MPI_Comm *comm, int *code, ...);

static struct {
  pthread_mutex_t lock;   /* the slots and the holder */
  MPI_Errhandler fatal_w, return_w;
  MPI_Comm holder;        /* private: where we take references to handles */
  struct {
    MPI_Errhandler app;   /* the application's handler; we hold a reference, so the handle stays unique */
    MPI_Comm_errhandler_function *fn;
    MPI_Errhandler w;     /* ours, created when first set */
  } user[USER_SLOTS];
  int nuser;
  eh_fn *ompi_fatal;      /* Open MPI's MPI_ERRORS_ARE_FATAL function */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int ready;
static atomic_int abort_reported;   /* one MPI_Abort report per process */
static __thread int in_handler;     /* our reporting calls MPI: its errors must not recurse */

/* ---- the report ----------------------------------------------------------- */

static const char *class_name(int c)
{
#define C(x) \
  case x: \
    return #x;
  switch (c) {
    C(MPI_SUCCESS) C(MPI_ERR_BUFFER) C(MPI_ERR_COUNT) C(MPI_ERR_TYPE) C(MPI_ERR_TAG) C(MPI_ERR_COMM)
    C(MPI_ERR_RANK) C(MPI_ERR_REQUEST) C(MPI_ERR_ROOT) C(MPI_ERR_GROUP) C(MPI_ERR_OP) C(MPI_ERR_TOPOLOGY)
    C(MPI_ERR_DIMS) C(MPI_ERR_ARG) C(MPI_ERR_UNKNOWN) C(MPI_ERR_TRUNCATE) C(MPI_ERR_OTHER) C(MPI_ERR_INTERN)
    C(MPI_ERR_IN_STATUS) C(MPI_ERR_PENDING) C(MPI_ERR_ACCESS) C(MPI_ERR_AMODE) C(MPI_ERR_ASSERT)
    C(MPI_ERR_BAD_FILE) C(MPI_ERR_BASE) C(MPI_ERR_CONVERSION) C(MPI_ERR_DISP) C(MPI_ERR_DUP_DATAREP)
    C(MPI_ERR_FILE_EXISTS) C(MPI_ERR_FILE_IN_USE) C(MPI_ERR_FILE) C(MPI_ERR_INFO_KEY) C(MPI_ERR_INFO_NOKEY)
    C(MPI_ERR_INFO_VALUE) C(MPI_ERR_INFO) C(MPI_ERR_IO) C(MPI_ERR_KEYVAL) C(MPI_ERR_LOCKTYPE) C(MPI_ERR_NAME)
    C(MPI_ERR_NO_MEM) C(MPI_ERR_NOT_SAME) C(MPI_ERR_NO_SPACE) C(MPI_ERR_NO_SUCH_FILE) C(MPI_ERR_PORT)
    C(MPI_ERR_QUOTA) C(MPI_ERR_READ_ONLY) C(MPI_ERR_RMA_CONFLICT) C(MPI_ERR_RMA_SYNC) C(MPI_ERR_SERVICE)
    C(MPI_ERR_SIZE) C(MPI_ERR_SPAWN) C(MPI_ERR_UNSUPPORTED_DATAREP) C(MPI_ERR_UNSUPPORTED_OPERATION)
    C(MPI_ERR_WIN) C(MPI_ERR_RMA_RANGE) C(MPI_ERR_RMA_ATTACH) C(MPI_ERR_RMA_FLAVOR) C(MPI_ERR_RMA_SHARED)
  }
#undef C
  return NULL;   /* a class the application added (MPI_Add_error_class) */
}

static int module_is_mpi(const char *module)
{
  const char *base = strrchr(module, '/');
  base = base ? base + 1 : module;
  static const char *const mpi[] = {"libmpi", "libopen-pal", "libopen-rte", "mca_", "libmca_"};
  for (size_t i = 0; i < sizeof mpi / sizeof mpi[0]; i++)
    if (!strncmp(base, mpi[i], strlen(mpi[i])))
      return 1;
  return 0;
}

static int frame_is_ours(const mpn__frame *f)
{
  Dl_info self, at;
  if (!dladdr((void *)&frame_is_ours, &self) || !dladdr((void *)(f->ip - 1), &at))
    return 0;
  return self.dli_fbase == at.dli_fbase;
}

/* The caller's stack from the call site down: our frames, then Open MPI's
 * (the errhandler invocation, the MPI function, a Fortran binding) are cut,
 * so the top frame is the application's call of MPI, as stable as a crash's. */
static int site_frames(mpn__frame *frames)
{
  int n = mpn__unwind_here(frames, MPN__MAX_FRAMES, 0);
  int k = 0;
  while (k < n && frame_is_ours(&frames[k]))
    k++;
  int own = k;
  while (k < n && module_is_mpi(frames[k].module))
    k++;
  if (k == n)   /* nothing of the application's (a thread MPI started?): keep MPI's frames */
    k = own;
  memmove(frames, frames + k, sizeof *frames * (size_t)(n - k));
  return n - k;
}

static const char *comm_label(MPI_Comm comm)
{
  if (comm == mpn__pmpi.world)
    return "MPI_COMM_WORLD";
  if (comm == mpn__pmpi.self)
    return "MPI_COMM_SELF";
  return "other";
}

static const char *handler_label(int mode)
{
  return mode == H_FATAL ? "fatal" : mode == H_RETURN ? "return" : "user";
}

/* `where` is the MPI function Open MPI names when it invokes the handler. */
static void report_error(MPI_Comm comm, int code, const char *where, int mode)
{
  int cls = code;
  if (mpn__pmpi.Error_class(code, &cls) != 0)
    cls = code;
  char text[MPI_MAX_ERROR_STRING + 1] = "";
  int len = 0;
  if (mpn__pmpi.Error_string(code, text, &len) != 0 || len < 0 || len > MPI_MAX_ERROR_STRING)
    len = 0;
  text[len] = '\0';
  char other[32];
  const char *name = class_name(cls);
  if (!name) {
    snprintf(other, sizeof other, "MPI error class %d", cls);
    name = other;
  }
  const char *what = text;   /* Open MPI's strings are "MPI_ERR_RANK: invalid rank" */
  size_t nl = strlen(name);
  if (!strncmp(what, name, nl) && what[nl] == ':')
    what += nl + 1 + (what[nl + 1] == ' ');
  mpn__event *ev = mpn__event_new("mpi_error", mode == H_FATAL ? "critical" : "error");
  if (!ev)
    return;
  ev->fatal = mode == H_FATAL;
  ev->nframes = site_frames(ev->frames);
  snprintf(ev->headline, sizeof ev->headline, "%.32s%s%.40s%s%.80s", name, where ? " in " : "",
           where ? where : "", *what ? ": " : "", what);
  const char *sig[] = {name, where};
  mpn__event_sign(ev, sig, 2, 1);
  char cname[MPI_MAX_OBJECT_NAME + 1] = "";
  int cl = 0;
  if (mpn__pmpi.Comm_get_name(comm, cname, &cl) != 0 || cl < 0 || cl > MPI_MAX_OBJECT_NAME)
    cl = 0;
  cname[cl] = '\0';
  json_t *o = json_pack("{s:s, s:i, s:o, s:s, s:s}", "error_class", name, "error_code", code, "error_string",
                        mpn__jstr(text), "handler", handler_label(mode), "communicator", comm_label(comm));
  if (o && where)
    json_object_set_new(o, "function", mpn__jstr(where));
  if (o && cname[0])
    json_object_set_new(o, "communicator_name", mpn__jstr(cname));
  json_object_set_new(ev->extra, "mpi_error", o ? o : json_object());
  json_object_set_new(ev->extra, "text", mpn__jstr(text));
  mpn__event_submit(ev, ev->fatal ? mpn__cfg()->timeout_ms + 1000 : 0);
  if (mode == H_FATAL)
    atomic_store(&mpn__fatal_reported, 1);   /* the abort that follows is this failure */
}

static void report_abort(int code)
{
  mpn__event *ev = mpn__event_new("mpi_error", "critical");
  if (!ev)
    return;
  ev->fatal = 1;
  ev->nframes = site_frames(ev->frames);
  snprintf(ev->headline, sizeof ev->headline, "MPI_Abort(%d)", code);
  char c[16];
  snprintf(c, sizeof c, "%d", code);
  const char *sig[] = {"MPI_Abort", c};
  mpn__event_sign(ev, sig, 2, 1);
  json_object_set_new(ev->extra, "mpi_error",
                      json_pack("{s:s, s:i, s:b}", "function", "MPI_Abort", "error_code", code, "abort", 1));
  mpn__event_submit(ev, mpn__cfg()->timeout_ms + 1000);
  atomic_store(&mpn__fatal_reported, 1);
}

/* ---- our handlers ------------------------------------------------------------- */

static void on_error(MPI_Comm *comm, int *code, const char *where, int mode)
{
  if (in_handler)
    return;   /* an MPI call of our own report failed: it just returns the error */
  if (atomic_load(&mpn__crash.armed)) {
    in_handler = 1;
    report_error(*comm, *code, where, mode);
    in_handler = 0;
  }
  if (mode == H_RETURN)
    return;   /* the MPI call returns *code to the application */
  if (mode >= 0) {
    S.user[mode].fn(comm, code, where, NULL);   /* as Open MPI calls it; its MPI errors are reported again */
    return;
  }
  if (S.ompi_fatal)
    S.ompi_fatal(comm, code, where, NULL);   /* Open MPI's message and abort, as without us */
  else
    mpn__pmpi.Abort(*comm, *code);
}

/* Open MPI passes the MPI function's name after the code (then NULL). */
static const char *where_of(va_list ap)
{
  const char *where = va_arg(ap, const char *);
  return where && where[0] ? where : NULL;
}

/* One function per mode and per user slot: an MPI error handler gets no user data. */
#define HANDLER(name, mode) \
  static void name(MPI_Comm *comm, int *code, ...) \
  { \
    va_list ap; \
    va_start(ap, code); \
    const char *where = where_of(ap); \
    va_end(ap); \
    on_error(comm, code, where, mode); \
  }
HANDLER(fatal_fn, H_FATAL) HANDLER(return_fn, H_RETURN)
HANDLER(user_fn_0, 0) HANDLER(user_fn_1, 1) HANDLER(user_fn_2, 2) HANDLER(user_fn_3, 3)
HANDLER(user_fn_4, 4) HANDLER(user_fn_5, 5) HANDLER(user_fn_6, 6) HANDLER(user_fn_7, 7)
HANDLER(user_fn_8, 8) HANDLER(user_fn_9, 9) HANDLER(user_fn_10, 10) HANDLER(user_fn_11, 11)
HANDLER(user_fn_12, 12) HANDLER(user_fn_13, 13) HANDLER(user_fn_14, 14) HANDLER(user_fn_15, 15)
static MPI_Comm_errhandler_function *const user_fns[USER_SLOTS] = {
  user_fn_0, user_fn_1, user_fn_2, user_fn_3, user_fn_4, user_fn_5, user_fn_6, user_fn_7,
  user_fn_8, user_fn_9, user_fn_10, user_fn_11, user_fn_12, user_fn_13, user_fn_14, user_fn_15};

/* ---- handles ---------------------------------------------------------------- */

/* A new reference to `eh` (MPI has no call for it: set it on our private
 * communicator and get it back). Under S.lock. 0 on success. */
static int take_ref(MPI_Errhandler eh, MPI_Errhandler *out)
{
  mpn__pmpi_table *P = &mpn__pmpi;
  if (P->Comm_set_errhandler(S.holder, eh) != 0)
    return -1;
  int rc = P->Comm_get_errhandler(S.holder, out);
  P->Comm_set_errhandler(S.holder, P->errors_return);
  return rc;
}

/* Which application choice one of our handlers stands for; H_NONE: not ours. Under S.lock. */
static int which(MPI_Errhandler eh)
{
  if (eh == S.fatal_w)
    return H_FATAL;
  if (eh == S.return_w)
    return H_RETURN;
  for (int k = 0; k < S.nuser; k++)
    if (S.user[k].w && eh == S.user[k].w)
      return k;
  return H_NONE;
}

/* The handler to install for the application's `eh`. Under S.lock. */
static MPI_Errhandler stand_in(MPI_Errhandler eh)
{
  if (eh == mpn__pmpi.errors_are_fatal)
    return S.fatal_w;
  if (eh == mpn__pmpi.errors_return)
    return S.return_w;
  for (int k = 0; k < S.nuser; k++)
    if (S.user[k].app == eh) {
      if (!S.user[k].w && mpn__pmpi.Comm_create_errhandler(user_fns[k], &S.user[k].w) != 0)
        S.user[k].w = NULL;
      return S.user[k].w ? S.user[k].w : eh;
    }
  return eh;   /* not ours to stand in for (or not a valid handle: MPI says so) */
}

void mpn__errors_setup(void)
{
  mpn__pmpi_table *P = &mpn__pmpi;
  if (atomic_load(&ready))
    return;
  *(void **)&S.ompi_fatal = mpn__mpi_object("ompi_mpi_errors_are_fatal_comm_handler");
  if (P->Comm_dup(P->self, &S.holder) != 0) {
    mpn__log_debug("no private communicator for error handlers: MPI errors are not reported");
    return;
  }
  P->Comm_set_errhandler(S.holder, P->errors_return);
  if (P->Comm_create_errhandler(fatal_fn, &S.fatal_w) != 0 || P->Comm_create_errhandler(return_fn, &S.return_w) != 0) {
    mpn__log_debug("cannot create an MPI error handler: MPI errors are not reported");
    return;
  }
  /* Before any application call: both still have MPI_ERRORS_ARE_FATAL. */
  P->Comm_set_errhandler(P->world, S.fatal_w);
  P->Comm_set_errhandler(P->self, S.fatal_w);
  atomic_store(&ready, 1);
}

/* ---- the interposed calls (interpose.c) --------------------------------------- */

int mpn__errors_set(MPI_Comm comm, MPI_Errhandler eh)
{
  static __typeof__(PMPI_Comm_set_errhandler) *real;
  if (!real)
    *(void **)&real = mpn__mpi_next("PMPI_Comm_set_errhandler");
  if (!real)
    return MPI_ERR_INTERN;
  if (!atomic_load(&ready))
    return real(comm, eh);
  pthread_mutex_lock(&S.lock);
  MPI_Errhandler w = stand_in(eh);
  pthread_mutex_unlock(&S.lock);
  return real(comm, w);
}

int mpn__errors_get(MPI_Comm comm, MPI_Errhandler *eh)
{
  static __typeof__(PMPI_Comm_get_errhandler) *real;
  if (!real)
    *(void **)&real = mpn__mpi_next("PMPI_Comm_get_errhandler");
  if (!real)
    return MPI_ERR_INTERN;
  int rc = real(comm, eh);
  if (rc != 0 || !atomic_load(&ready))
    return rc;
  pthread_mutex_lock(&S.lock);
  int k = which(*eh);
  MPI_Errhandler app = k == H_FATAL    ? mpn__pmpi.errors_are_fatal
                       : k == H_RETURN ? mpn__pmpi.errors_return
                       : k >= 0        ? S.user[k].app
                                       : NULL;
  MPI_Errhandler ref;
  if (app && take_ref(app, &ref) == 0) {   /* the caller frees what it gets: give it a reference of its own */
    mpn__pmpi.Errhandler_free(eh);
    *eh = ref;
  }
  pthread_mutex_unlock(&S.lock);
  return rc;
}

int mpn__errors_create(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh)
{
  static __typeof__(PMPI_Comm_create_errhandler) *real;
  if (!real)
    *(void **)&real = mpn__mpi_next("PMPI_Comm_create_errhandler");
  if (!real)
    return MPI_ERR_INTERN;
  int rc = real(fn, eh);
  if (rc != 0 || !atomic_load(&ready) || !fn)
    return rc;
  pthread_mutex_lock(&S.lock);
  MPI_Errhandler ref;   /* held for good: the handle can never be reused for another function */
  if (S.nuser < USER_SLOTS && take_ref(*eh, &ref) == 0) {
    S.user[S.nuser].app = ref;
    S.user[S.nuser].fn = fn;
    S.user[S.nuser].w = NULL;
    S.nuser++;
  }
  pthread_mutex_unlock(&S.lock);
  return rc;
}

static mpn_abort_hook_fn abort_hook;
static void *abort_hook_arg;

mpn_code mpn_set_abort_hook(mpn_abort_hook_fn fn, void *arg)
{
  abort_hook_arg = arg;
  abort_hook = fn;
  return MPN_OK;
}

/* The language runtime's word first: an MPI_Abort inside an exception
 * handler (python -m mpi4py) is that exception, reported with its type and
 * traceback, not a bare MPI_Abort(1) that every exception would share. */
static int hook_reported(int code)
{
  mpn_abort_hook_fn fn = abort_hook;
  /* Python's hook (a ctypes callback) needs the GIL: from a thread without it
   * the call would wait for the GIL, maybe forever (a thread holding it is
   * blocked in MPI), and after the interpreter finalized it would crash. */
  if (!fn || !mpn__python_may_call())
    return 0;
  return fn(code, abort_hook_arg) == 1 && atomic_load(&mpn__fatal_reported);
}

mpn_code mpn_abort_job(int status)
{
  if (mpn__g.thread_level < 0 || atomic_load(&mpn__g.mpi_finalized) || !mpn__pmpi.Abort || !mpn__pmpi.world)
    return MPN_E_NOT_INITIALIZED;
  atomic_store(&abort_reported, 1);
  mpn__pmpi.Abort(mpn__pmpi.world, status);
  return MPN_E_MPI;   /* MPI_Abort returned: the job could not be ended */
}

int mpn__errors_abort(MPI_Comm comm, int code)
{
  static __typeof__(PMPI_Abort) *real;
  if (!real)
    *(void **)&real = mpn__mpi_next("PMPI_Abort");
  if (!in_handler && !mpn__self.disabled && getpid() == mpn__self.pid && atomic_load(&mpn__crash.armed) &&
      !atomic_exchange(&abort_reported, 1)) {
    in_handler = 1;
    if (!atomic_load(&mpn__fatal_reported) && !hook_reported(code))
      report_abort(code);
    in_handler = 0;
  }
  return real ? real(comm, code) : MPI_ERR_INTERN;
}
