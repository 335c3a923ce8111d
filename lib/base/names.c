/* names.c - the one table of signal names (library messages, the tools'
 * job messages through mpn_signal_name). Async-signal-safe: a switch, no
 * locale, no strsignal. */
#include "base/base.h"

/* X(number, name): every signal a report or a launcher notice may name. */
#define MPN__SIGNALS(X) \
  X(SIGSEGV) X(SIGBUS) X(SIGFPE) X(SIGILL) X(SIGABRT) X(SIGTRAP) X(SIGKILL) X(SIGTERM) \
  X(SIGINT) X(SIGHUP) X(SIGQUIT) X(SIGUSR1) X(SIGUSR2) X(SIGPIPE) X(SIGALRM) X(SIGXCPU) \
  X(SIGXFSZ) X(SIGSYS) X(SIGCONT) X(SIGSTOP)

const char *mpn__signal_name(int signo)
{
  switch (signo) {
#define MPN__SIGNAL_CASE(s) case s: return #s;
    MPN__SIGNALS(MPN__SIGNAL_CASE)
#undef MPN__SIGNAL_CASE
  }
  return "SIG?";
}

const char *mpn_signal_name(int signo)
{
  const char *n = mpn__signal_name(signo);
  return n[3] == '?' ? NULL : n;
}
