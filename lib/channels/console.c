/* console.c - the console channel: the message as a panel on stderr, written
 * by the leader only, with colour when stderr is a terminal (NO_COLOR off). */
#include "channels/channels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mpn_code console_local(const mpn__channel *ch, const mpn_message *m)
{
  (void)ch;
  int color = isatty(STDERR_FILENO) && !getenv("NO_COLOR");
  char *text = mpn__message_text(m, color);
  if (!text)
    return MPN_E_NO_MEMORY;
  /* One write: the panel must not interleave with the other ranks' output. */
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(STDERR_FILENO, text + off, len - off);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  free(text);
  return off == len ? MPN_OK : MPN_E_IO;
}

const mpn__kind mpn__kind_console = {
  .form = "console://",
  .name = "console",
  .schemes = (const char *const[]){"console", NULL},
  .local = console_local,
};
