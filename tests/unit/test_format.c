/* test_format.c - unit tests of lib/format/: a report as JSON (schema
 * mpinotify/1), rank ranges. */
#include "format/format.h"

#include "unit.h"

#include <jansson.h>

TEST(json_arbitrary_bytes)
{
  mpn__proc procs[2];
  mpn__report r;
  unsigned seed = 12345;
  for (int round = 0; round < 200; round++) {
    sample_report(&r, procs, 2);
    char junk[200];
    for (size_t i = 0; i + 1 < sizeof junk; i++) {
      seed = seed * 1103515245u + 12345u;
      junk[i] = (char)(1 + (seed >> 16) % 255);   /* every byte but NUL */
    }
    junk[sizeof junk - 1] = '\0';
    memcpy(sample_event.frames[0].function, junk, sizeof junk);
    memcpy(procs[1].host, junk, sizeof procs[1].host - 1);
    procs[1].host[sizeof procs[1].host - 1] = '\0';
    r.job_name = junk;
    char *text = mpn__report_json(&r);
    CHECK(text != NULL);
    json_error_t err;
    json_t *doc = text ? json_loads(text, 0, &err) : NULL;
    if (!doc)
      fprintf(stderr, "round %d: invalid JSON: %s\n", round, err.text);
    CHECK(doc != NULL);
    CHECK(json_is_string(json_object_get(json_object_get(doc, "job"), "name")));
    json_decref(doc);
    free(text);
  }
}

TEST(json_schema_fields)
{
  mpn__proc procs[3];
  mpn__report r;
  sample_report(&r, procs, 3);
  r.job_name = "train \"big\" na\xc3\xafve";
  char *text = mpn__report_json(&r);
  json_t *doc = json_loads(text, 0, NULL);
  CHECK(doc != NULL);
  CHECK_STR(json_string_value(json_object_get(doc, "schema")), "mpinotify/1");
  CHECK_STR(json_string_value(json_object_get(doc, "event")), "crash");
  CHECK_STR(json_string_value(json_object_get(doc, "signature")), "abcdef0123456789");
  CHECK_STR(json_string_value(json_object_get(doc, "signal")), "SIGSEGV");
  CHECK(json_integer_value(json_object_get(doc, "signal_number")) == 11);
  CHECK_STR(json_string_value(json_object_get(doc, "fault_address")), "0x10");
  CHECK_STR(json_string_value(json_object_get(doc, "timestamp")), "2023-11-14T22:13:20.123Z");
  json_t *ranks = json_object_get(doc, "ranks");
  CHECK(json_array_size(ranks) == 3 && json_integer_value(json_array_get(ranks, 2)) == 5);
  CHECK(json_integer_value(json_object_get(doc, "world_size")) == 8);
  CHECK_STR(json_string_value(json_object_get(doc, "election")), "ok");
  json_t *leader = json_object_get(doc, "leader");
  CHECK(json_integer_value(json_object_get(leader, "rank")) == 1);
  CHECK(json_integer_value(json_object_get(leader, "pid")) == 4000);
  CHECK_STR(json_string_value(json_object_get(leader, "hostname")), "node0");
  json_t *p2 = json_array_get(json_object_get(doc, "processes"), 2);
  CHECK(json_integer_value(json_object_get(p2, "rank")) == 5);
  CHECK_STR(json_string_value(json_object_get(p2, "hostname")), "node2");
  json_t *f0 = json_array_get(json_object_get(doc, "backtrace"), 0);
  CHECK(json_integer_value(json_object_get(f0, "index")) == 0);
  CHECK_STR(json_string_value(json_object_get(f0, "module")), "/opt/app/bin/train");
  CHECK_STR(json_string_value(json_object_get(f0, "offset")), "0x1139");
  CHECK_STR(json_string_value(json_object_get(f0, "function")), "bad_fn");
  CHECK_STR(json_string_value(json_object_get(f0, "function_offset")), "0x1d");
  json_t *f1 = json_array_get(json_object_get(doc, "backtrace"), 1);
  CHECK(json_is_null(json_object_get(f1, "function")));
  CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "job"), "name")), "train \"big\" na\xc3\xafve");
  json_decref(doc);
  free(text);
}

/* The backtrace as shown (mpn__report.frames): file, line and inlined
 * calls in the JSON, "fn (dir/file.c:41)" in the text. */
TEST(report_frames_with_lines)
{
  mpn__proc procs[1];
  mpn__report r;
  sample_report(&r, procs, 1);
  mpn__frame *f = calloc(2, sizeof *f);
  f[0] = f[1] = sample_event.frames[0];
  f[0].inlined = 1;
  strcpy(f[0].function, "ratio");
  strcpy(f[0].file, "/home/u/src/solver/kernel.f90");
  f[0].line = 26;
  strcpy(f[1].file, "/home/u/src/solver/main.f90");
  f[1].line = 20;
  r.frames = f;
  r.nframes = 2;
  char *text = mpn__report_json(&r);
  json_t *doc = json_loads(text, 0, NULL), *bt = json_object_get(doc, "backtrace");
  json_t *f0 = json_array_get(bt, 0), *f1 = json_array_get(bt, 1);
  CHECK(json_array_size(bt) == 2 && json_is_true(json_object_get(f0, "inlined")));
  CHECK_STR(json_string_value(json_object_get(f0, "file")), "/home/u/src/solver/kernel.f90");
  CHECK(json_integer_value(json_object_get(f0, "line")) == 26 && json_is_null(json_object_get(f0, "function_offset")));
  CHECK(json_is_false(json_object_get(f1, "inlined")) && json_integer_value(json_object_get(f1, "line")) == 20);
  mpn__buf b = mpn__buf_make(256);
  mpn__frames_text(&b, bt, "", 10);
  CHECK_STR(b.p, "#0  ratio (solver/kernel.f90:26) [inlined]\n#1  bad_fn (solver/main.f90:20)\n");
  free(b.p);
  json_decref(doc);
  free(text);
  r.frames = NULL;   /* the event's own: no file, no line */
  text = mpn__report_json(&r);
  doc = json_loads(text, 0, NULL);
  f0 = json_array_get(json_object_get(doc, "backtrace"), 0);
  CHECK(json_is_null(json_object_get(f0, "file")) && json_is_null(json_object_get(f0, "line")));
  CHECK(json_is_false(json_object_get(f0, "inlined")));
  json_decref(doc);
  free(text);
  free(f);
}

TEST(rank_ranges)
{
  char out[64];
  int a[] = {0, 1, 2, 3, 6, 8, 9};
  mpn__rank_ranges(a, 7, out, sizeof out);
  CHECK_STR(out, "0-3,6,8-9");
  int b[] = {5};
  mpn__rank_ranges(b, 1, out, sizeof out);
  CHECK_STR(out, "5");
  mpn__rank_ranges(b, 0, out, sizeof out);
  CHECK_STR(out, "");
}

TEST(launcher_crash_message)
{
  mpn_launcher_crash c = {.rank = 5, .signo = SIGKILL, .pid = 4242, .host = "n17", .world_size = 8,
                          .time_ms = 1795082400123LL, .job_name = "train"};
  mpn_message *m = mpn_launcher_crash_new(&c);
  char *text = mpn_message_json(m);
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  CHECK(o != NULL);
  CHECK_STR(json_string_value(json_object_get(o, "schema")), "mpinotify/1");
  CHECK_STR(json_string_value(json_object_get(o, "event")), "crash");
  CHECK_STR(json_string_value(json_object_get(o, "severity")), "critical");
  CHECK_STR(json_string_value(json_object_get(o, "reported_by")), "launcher");
  CHECK_STR(json_string_value(json_object_get(o, "title")), "SIGKILL on 1 of 8 ranks (job train)");
  CHECK_STR(json_string_value(json_object_get(o, "signal")), "SIGKILL");
  CHECK_STR(json_string_value(json_object_get(o, "timestamp")), "2026-11-19T10:00:00.123Z");
  /* FNV-1a 64 of "launcher:SIGKILL": what mpinotify-run has always sent */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *p = "launcher:SIGKILL"; *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  char sig[17];
  snprintf(sig, sizeof sig, "%016llx", (unsigned long long)h);
  CHECK_STR(json_string_value(json_object_get(o, "signature")), sig);
  CHECK(json_integer_value(json_object_get(o, "signal_number")) == SIGKILL);
  CHECK(json_integer_value(json_object_get(o, "world_size")) == 8);
  static const char *const nulls[] = {"fault_address", "backtrace", "election", "leader", "mpi_thread_level"};
  for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
    CHECK(json_is_null(json_object_get(o, nulls[i])));
  json_t *ranks = json_object_get(o, "ranks"), *p = json_array_get(json_object_get(o, "processes"), 0);
  CHECK(json_array_size(ranks) == 1 && json_integer_value(json_array_get(ranks, 0)) == 5);
  CHECK(json_integer_value(json_object_get(p, "pid")) == 4242);
  CHECK_STR(json_string_value(json_object_get(p, "hostname")), "n17");
  const char *t = json_string_value(json_object_get(o, "text"));
  CHECK(t && strstr(t, "Rank 5 (pid 4242 on n17) was killed by SIGKILL (signal 9)") && strstr(t, "OOM killer"));
  json_decref(o);
  mpn_free(text);
  mpn_message_free(m);
  /* what the launcher does not know is null */
  mpn_launcher_crash u = {.rank = 0, .signo = SIGTERM, .time_ms = 0};
  m = mpn_launcher_crash_new(&u);
  text = mpn_message_json(m);
  o = text ? json_loads(text, 0, NULL) : NULL;
  p = json_array_get(json_object_get(o, "processes"), 0);
  CHECK(json_is_null(json_object_get(o, "world_size")) && json_is_null(json_object_get(p, "pid")) &&
        json_is_null(json_object_get(p, "hostname")));
  CHECK_STR(json_string_value(json_object_get(o, "title")), "SIGTERM on 1 of 1 rank (job ?)");
  json_decref(o);
  mpn_free(text);
  mpn_message_free(m);
  mpn_launcher_crash bad = {.rank = -1, .signo = SIGKILL};
  CHECK(mpn_launcher_crash_new(&bad) == NULL && mpn_launcher_crash_new(NULL) == NULL);
  CHECK(mpn_message_json(NULL) == NULL);
}

/* Two ranks killed outright at once: one message naming both. */
TEST(launcher_crashes_group)
{
  mpn_launcher_crash c[2] = {{.rank = 1, .signo = SIGKILL, .pid = 41, .host = "n1", .world_size = 6, .time_ms = 1},
                             {.rank = 2, .signo = SIGKILL, .pid = 42, .host = "n2", .world_size = 6, .time_ms = 2}};
  mpn_message *m = mpn_launcher_crashes_new(c, 2);
  char *text = mpn_message_json(m);
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  CHECK(o != NULL);
  json_t *ranks = json_object_get(o, "ranks"), *procs = json_object_get(o, "processes");
  CHECK(json_array_size(ranks) == 2 && json_integer_value(json_array_get(ranks, 1)) == 2);
  CHECK(json_array_size(procs) == 2 && json_integer_value(json_object_get(json_array_get(procs, 1), "pid")) == 42);
  CHECK_STR(json_string_value(json_object_get(o, "title")), "SIGKILL on 2 of 6 ranks (job ?)");
  const char *t = json_string_value(json_object_get(o, "text"));
  CHECK(t && strstr(t, "Ranks 1 (pid 41 on n1) and 2 (pid 42 on n2) were killed by SIGKILL"));
  json_decref(o);
  mpn_free(text);
  mpn_message_free(m);
  c[1].signo = SIGSEGV;   /* two failures are two messages */
  CHECK(mpn_launcher_crashes_new(c, 2) == NULL && mpn_launcher_crashes_new(c, 0) == NULL);
}

/* A signal another process sent (kill -SEGV) has no fault address: the
 * message names the sender instead, in the JSON, the facts and the panel. */
TEST(json_signal_sent_by)
{
  mpn__proc procs[1];
  mpn__report r;
  sample_report(&r, procs, 1);
  sample_event.sent_by_pid = 4242;
  mpn_message *m = mpn__message_from_report(&r);
  CHECK(m != NULL);
  if (!m)
    return;
  json_t *doc = m->doc;
  CHECK(json_is_null(json_object_get(doc, "fault_address")));
  CHECK(json_integer_value(json_object_get(doc, "sent_by_pid")) == 4242);
  mpn__view *v = mpn__view_new(m);
  int named = 0;
  for (int i = 0; v && i < v->nfacts; i++)
    named |= !strcmp(v->facts[i].label, "Signal") && !strcmp(v->facts[i].value, "SIGSEGV, sent by pid 4242");
  CHECK(named);
  mpn__view_free(v);
  char *text = mpn__message_text(m, 0);
  CHECK(text && strstr(text, "sent by pid 4242"));
  free(text);
  mpn_message_free(m);
  sample_event.sent_by_pid = 0;
  sample_report(&r, procs, 1);
  m = mpn__message_from_report(&r);
  CHECK(m && json_is_null(json_object_get(m->doc, "sent_by_pid")));
  mpn_message_free(m);
}

/* A job message (mpinotify-run's) shows its hosts, and never says a rank
 * could not report: every job message is the launcher's by nature. */
TEST(view_job_message_facts)
{
  mpn_message *m = mpn__message_from_json(
      "{\"schema\":\"mpinotify/1\",\"event\":\"job\",\"status\":\"failed\",\"title\":\"Job t failed\","
      "\"severity\":\"error\",\"ranks\":[3],\"world_size\":8,\"hosts\":[\"node17\",\"node18\"],"
      "\"reported_by\":\"launcher\",\"job\":{\"name\":\"t\"}}", NULL);
  CHECK(m != NULL);
  mpn__view *v = m ? mpn__view_new(m) : NULL;
  int hosts = 0, reported = 0;
  for (int i = 0; v && i < v->nfacts; i++) {
    hosts |= !strcmp(v->facts[i].label, "Hosts") && !strcmp(v->facts[i].value, "node17, node18");
    reported |= !strcmp(v->facts[i].label, "Reported by");
  }
  CHECK(hosts && !reported);
  mpn__view_free(v);
  mpn_message_free(m);
}

/* rank_output: the last few lines after the text of every channel's view,
 * and under "output" in the console panel. */
TEST(view_rank_output)
{
  mpn__buf doc = mpn__buf_make(1024);
  mpn__buf_add(&doc, "{\"schema\":\"mpinotify/1\",\"event\":\"crash\",\"title\":\"SIGSEGV on 1 of 4 ranks (job t)\","
               "\"severity\":\"critical\",\"signature\":\"0123456789abcdef\",\"signal\":\"SIGSEGV\",\"ranks\":[2],"
               "\"leader\":{\"rank\":2,\"pid\":7,\"hostname\":\"n1\"},\"processes\":[],\"backtrace\":[],"
               "\"rank_output\":[");
  for (int i = 1; i <= 12; i++)
    mpn__buf_add(&doc, "\"step %d ok\",", i);
  mpn__buf_add(&doc, "\"ERROR: boom\"]}");
  mpn_message *m = mpn__message_from_json(doc.p, NULL);
  free(doc.p);
  CHECK(m != NULL);
  mpn__view *v = m ? mpn__view_new(m) : NULL;
  CHECK(v && v->text && strstr(v->text, "Last lines of rank 2's output:\nstep 6 ok\n"));
  CHECK(v && v->text && !strstr(v->text, "step 5 ok") && strstr(v->text, "step 12 ok\nERROR: boom\n"));
  char *panel = m ? mpn__message_text(m, 0) : NULL;
  CHECK(panel && strstr(panel, "| output (rank 2, last lines)\n|   step 6 ok\n"));
  CHECK(panel && strstr(panel, "|   ERROR: boom\n===\n"));
  free(panel);
  mpn__view_free(v);
  mpn_message_free(m);
}
