/* console.c - the console channel: the report as a panel on stderr, written
 * by the leader only, with colour when stderr is a terminal (NO_COLOR off). */
#include "core/mpn.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mpn__console_send(const mpn__report *r)
{
  int color = isatty(STDERR_FILENO) && !getenv("NO_COLOR");
  char *text = mpn__report_text(r, color);
  if (!text)
    return;
  /* One write: the panel must not interleave with the other ranks' output. */
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(STDERR_FILENO, text + off, len - off);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  free(text);
}
