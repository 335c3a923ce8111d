/* config_file.c - the optional INI file named by MPINOTIFY_CONFIG, parsed by
 * inih (README.md "Config file"). Section [mpinotify] holds settings named as
 * the MPINOTIFY_* variables without the prefix, in lower case; each
 * [channel NAME] section holds one channel: `url` plus its options. */
#include "config/config.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

typedef struct parse_ctx {
  mpn__file_config *fc;
  const char *path;
  char *err;
  size_t errlen;
  mpn_code rc;
} parse_ctx;

static int add_opt(mpn__opt **opts, int *n, const char *key, const char *value)
{
  mpn__opt *grown = realloc(*opts, sizeof **opts * (size_t)(*n + 1));
  if (!grown)
    return -1;
  *opts = grown;
  grown[*n] = (mpn__opt){strdup(key), strdup(value), NULL};
  if (!grown[*n].key || !grown[*n].value) {
    free(grown[*n].key);
    free(grown[*n].value);
    return -1;
  }
  (*n)++;
  return 0;
}

static mpn__file_channel *channel_named(mpn__file_config *fc, const char *name)
{
  for (int i = 0; i < fc->nchannels; i++)
    if (!strcmp(fc->channels[i].name, name))
      return &fc->channels[i];
  mpn__file_channel *grown = realloc(fc->channels, sizeof *grown * (size_t)(fc->nchannels + 1));
  if (!grown)
    return NULL;
  fc->channels = grown;
  mpn__file_channel *c = &grown[fc->nchannels];
  memset(c, 0, sizeof *c);
  c->name = strdup(name);
  if (!c->name)
    return NULL;
  fc->nchannels++;
  return c;
}

static int on_setting(void *user, const char *section, const char *key, const char *value)
{
  parse_ctx *c = user;
  int bad = 0;
  if (!strcmp(section, "mpinotify")) {
    bad = add_opt(&c->fc->globals, &c->fc->nglobals, key, value);
  } else if (!strncmp(section, "channel ", 8) && section[8]) {
    mpn__file_channel *ch = channel_named(c->fc, section + 8);
    if (!ch)
      bad = -1;
    else if (!strcmp(key, "url")) {
      free(ch->url);
      bad = (ch->url = strdup(value)) ? 0 : -1;
    } else
      bad = add_opt(&ch->opts, &ch->nopts, key, value);
  } else {
    mpn__add_err(c->err, c->errlen, "%s: unknown section [%s] (known: [mpinotify], [channel NAME])", c->path, section);
    c->rc = MPN_E_BAD_CONFIG;
    return 1;
  }
  if (bad) {
    c->rc = MPN_E_NO_MEMORY;
    return 0;
  }
  return 1;
}

static mpn_code finish_read(parse_ctx *c, int line);

mpn_code mpn__config_file_read(const char *path, mpn__file_config *fc, char *err, size_t errlen)
{
  memset(fc, 0, sizeof *fc);
  parse_ctx c = {fc, path, err, errlen, MPN_OK};
  int line = ini_parse(path, on_setting, &c);
  if (line == -1) {
    mpn__add_err(err, errlen, "MPINOTIFY_CONFIG=\"%s\": cannot open the file", path);
    return MPN_E_BAD_CONFIG;
  }
  return finish_read(&c, line);
}

mpn_code mpn__config_text_read(const char *text, mpn__file_config *fc, char *err, size_t errlen)
{
  memset(fc, 0, sizeof *fc);
  parse_ctx c = {fc, "configuration text", err, errlen, MPN_OK};
  return finish_read(&c, ini_parse_string(text, on_setting, &c));
}

static mpn_code finish_read(parse_ctx *c, int line)
{
  const char *path = c->path;
  mpn__file_config *fc = c->fc;
  char *err = c->err;
  size_t errlen = c->errlen;
  if (line > 0) {
    mpn__add_err(err, errlen, "%s:%d: not a setting (expected `key = value` or `[section]`)", path, line);
    c->rc = MPN_E_BAD_CONFIG;
  }
  for (int i = 0; i < fc->nchannels; i++)
    if (!fc->channels[i].url) {
      mpn__add_err(err, errlen, "%s: [channel %s] has no url", path, fc->channels[i].name);
      c->rc = MPN_E_BAD_CONFIG;
    }
  return c->rc;
}

const char *mpn__file_global(const mpn__file_config *fc, const char *key)
{
  for (int i = fc ? fc->nglobals - 1 : -1; i >= 0; i--)   /* the last one wins */
    if (!strcmp(fc->globals[i].key, key))
      return fc->globals[i].value;
  return NULL;
}

static void free_opts(mpn__opt *o, int n)
{
  for (int i = 0; i < n; i++) {
    free(o[i].key);
    free(o[i].value);
    free(o[i].resolved);
  }
  free(o);
}

void mpn__config_file_free(mpn__file_config *fc)
{
  free_opts(fc->globals, fc->nglobals);
  for (int i = 0; i < fc->nchannels; i++) {
    free(fc->channels[i].name);
    free(fc->channels[i].url);
    free_opts(fc->channels[i].opts, fc->channels[i].nopts);
  }
  free(fc->channels);
  memset(fc, 0, sizeof *fc);
}
