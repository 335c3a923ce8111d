/* Links the installed library and uses its public API; prints what the
 * install test checks. */
#include <mpinotify.h>
#include <stdio.h>

int main(void)
{
  char err[256];
  mpn_code rc = mpn_check_urls("webhook+https://h.example/hook", err, sizeof err);
  printf("version=%s active=%d check=%s library=%s\n", mpn_version(), mpn_is_active(), mpn_strerror(rc),
         mpn_library_path() ? mpn_library_path() : "(static)");
  return rc == MPN_OK && mpn_is_active() ? 0 : 1;
}
