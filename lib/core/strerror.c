/* strerror.c - fixed strings for the public error codes. */
#include "core/mpn.h"

const char *mpn_strerror(mpn_code code)
{
  switch (code) {
  case MPN_OK: return "no error";
  case MPN_E_INVALID_ARGUMENT: return "invalid argument";
  case MPN_E_NO_MEMORY: return "out of memory";
  case MPN_E_BAD_URL: return "malformed channel URL";
  case MPN_E_UNKNOWN_KIND: return "unknown channel kind";
  case MPN_E_DISABLED: return "disabled by MPINOTIFY_DISABLE";
  case MPN_E_ALREADY_INITIALIZED: return "already initialized";
  case MPN_E_NOT_INITIALIZED: return "not initialized";
  case MPN_E_TIMEOUT: return "deadline passed";
  case MPN_E_DELIVERY: return "delivery failed";
  case MPN_E_ELECTION: return "election could not run";
  case MPN_E_MPI: return "MPI call failed";
  case MPN_E_UNWIND: return "no backtrace available";
  case MPN_E_IO: return "input/output error";
  case MPN_E_BUFFER_TOO_SMALL: return "buffer too small";
  case MPN_E_BAD_CONFIG: return "invalid configuration value";
  case MPN_E_HTTP_STATUS: return "the service answered with an HTTP error";
  case MPN_E_SERVICE: return "the service reported an error";
  case MPN_E_TLS: return "TLS failed (certificate not verified or handshake error)";
  case MPN_E_DNS: return "host name not resolved";
  case MPN_E_CONNECT: return "could not connect";
  case MPN_E_RATE_LIMITED: return "rate limited by the service";
  case MPN_E_SPOOL: return "spool directory unusable";
  case MPN_E_RELAY: return "the relay did not take the message";
  case MPN_E_FORGED: return "relayed message failed authentication";
  case MPN_E_MUTED: return "muted by the alert cooldown or cap";
  }
  return "unknown error";
}

const char *mpn_version(void)
{
  return MPN_VERSION_STRING;
}
