/* strerror.c - fixed strings for the public error codes (MPN_CODES in
 * include/mpinotify.h holds them); the version. Async-signal-safe. */
#include "base/base.h"

const char *mpn_strerror(mpn_code code)
{
  switch (code) {
#define MPN__CODE_TEXT(name, value, text) case MPN_##name: return text;
    MPN_CODES(MPN__CODE_TEXT)
#undef MPN__CODE_TEXT
  }
  return "unknown error";
}

const char *mpn_version(void)
{
  return MPN_VERSION_STRING;
}
