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

/* ---- every event kind's facts, on every channel ---------------------------
 * Messages as they arrived at a webhook sink from the scenario tests (job.py,
 * events.py, python.py, hang.py and a Slurm time limit), trimmed: single quotes
 * stand for double ones. Each must show its facts in the console panel
 * (mpn__message_text) and in the view every other channel is built from. */
typedef struct kind_case {
  const char *name, *json;
  const char *panel[8];   /* lines (or parts of lines) of the console panel */
  const char *facts[8];   /* "Label: value" of the view's facts */
  const char *text;       /* in the view's text (the application's words, the rank's lines), or NULL */
  const char *code;       /* in the view's backtrace (native frames, a Python traceback), or NULL */
  int by_launcher;        /* "Reported by" in the facts and the panel, exactly then */
} kind_case;

#define LEADER3 "'leader':{'rank':3,'pid':30066,'hostname':'vm'},'processes':[{'rank':3,'pid':30066,'hostname':'vm'}],"
#define FRAMES "'backtrace':[{'index':0,'module':'/w/bin/mpi_crash','offset':'0x1677','function':'bad_fn'," \
  "'function_offset':'0x7','file':'/w/tests/progs/mpi_crash.c','line':18,'inlined':false}],"
#define JOB_END(status, secs, victims) "'status':'failed','exit_status':" #status ",'duration_s':" #secs \
  ",'world_size':8,'hosts':['vm','vm2'],'victims':" #victims ",'reports_count':1"

static const kind_case kind_cases[] = {
  {"crash", "{'event':'crash','title':'SIGSEGV on 1 of 8 ranks (job t)','severity':'critical','signature':"
   "'6eaba5fc6989a89f','signal':'SIGSEGV','signal_number':11,'fault_address':'0x0','sent_by_pid':null,"
   "'timestamp':'2026-12-03T02:19:40.056Z','ranks':[3],'world_size':8,'election':'ok'," LEADER3 FRAMES
   "'rank_output':['rank 3 faults: segv'],'job':{'name':'t','command':'mpirun -np 8 mpi_crash segv=3'},'reported_by':'rank'}",
   {"| ranks      3\n", "| hosts      vm\n", "| leader     rank 3, pid 30066 on vm\n", "|   #0  bad_fn (progs/mpi_crash.c:18)",
    "|   rank 3 faults: segv\n", "fault address 0x0"},
   {"Signal: SIGSEGV", "Ranks: 1 of 8", "Hosts: vm", "Leader: rank 3, pid 30066 on vm"},
   "rank 3 faults: segv", "#0  bad_fn (progs/mpi_crash.c:18)", 0},
  {"crash_python", "{'event':'crash','title':'SIGSEGV on 1 of 4 ranks (job t)','severity':'critical','signature':"
   "'0123456789abcdef','signal':'SIGSEGV','ranks':[3],'world_size':4,'election':'ok'," LEADER3 FRAMES
   "'python_traceback':[{'file':'train.py','line':12,'function':'step','code':'lib.crash()'}],'reported_by':'rank'}",
   {"| Python stack (most recent call last):\n", "|   File \"train.py\", line 12, in step\n", "|   #0  bad_fn"},
   {"Signal: SIGSEGV", "Hosts: vm", "Leader: rank 3, pid 30066 on vm"}, NULL, "File \"train.py\", line 12, in step\n    lib.crash()", 0},
  {"exception_python", "{'event':'exception','title':'uncaught ValueError on 2 of 4 ranks (job t)','severity':'critical',"
   "'signature':'f3d67d752e6fb866','timestamp':'2026-12-03T02:21:48.001Z','ranks':[1,3],'world_size':4,'election':'ok',"
   "'leader':{'rank':1,'pid':6156,'hostname':'vm'},'processes':[{'rank':1,'pid':6156,'hostname':'vm'},"
   "{'rank':3,'pid':6164,'hostname':'vm2'}],'backtrace':[],'rank_output':['ValueError: loss is nan at step 7'],"
   "'reported_by':'rank','exception':{'type':'ValueError','message':'loss is nan at step 7','context':null,"
   "'uncaught':true,'traceback':[{'file':'ranks.py','line':40,'function':'train_step','code':'raise ValueError()'}]},"
   "'text':'Traceback (most recent call last):\\n  File \\'ranks.py\\', line 40, in train_step\\n    raise ValueError()\\n"
   "ValueError: loss is nan at step 7\\n'}",
   {"| ranks      1,3\n", "| hosts      vm, vm2\n", "| leader     rank 1, pid 6156 on vm\n", "|   rank 3      pid 6164     vm2\n",
    "|     raise ValueError()\n", "| ValueError: loss is nan at step 7\n"},
   {"Exception: ValueError", "Ranks: 2 of 4", "Hosts: vm, vm2", "Leader: rank 1, pid 6156 on vm"},
   "ValueError: loss is nan at step 7", "    raise ValueError()", 0},
  {"exception_cxx", "{'event':'exception','title':'uncaught std::runtime_error on 1 of 8 ranks (job t)','severity':'critical',"
   "'signature':'2daf9d7b91ac62e8','ranks':[2],'world_size':8,'election':'ok','leader':{'rank':2,'pid':3885,'hostname':'vm'},"
   "'processes':[{'rank':2,'pid':3885,'hostname':'vm'}],'backtrace':[{'index':0,'module':'/w/bin/cxx_uncaught','offset':"
   "'0xbc12','function':'train_step(int)','function_offset':'0x32','file':'/w/progs/cxx_uncaught.cpp','line':31}],"
   "'rank_output':[],'reported_by':'rank','exception':{'type':'std::runtime_error','message':'loss is nan',"
   "'context':'uncaught (std::terminate)','uncaught':true},'text':'loss is nan'}",
   {"| ranks      2\n", "| hosts      vm\n", "| leader     rank 2, pid 3885 on vm\n", "|   #0  train_step(int) (progs/cxx_uncaught.cpp:31)",
    "| loss is nan\n"},
   {"Exception: std::runtime_error", "Context: uncaught (std::terminate)", "Hosts: vm", "Leader: rank 2, pid 3885 on vm"},
   "loss is nan", "#0  train_step(int) (progs/cxx_uncaught.cpp:31)", 0},
  {"exit", "{'event':'exit','title':'exit status 1 on 1 of 8 ranks (job t)','severity':'error','signature':'1faa72bb88d91e97',"
   "'ranks':[3],'world_size':8,'election':'ok'," LEADER3 FRAMES "'rank_output':['giving up'],'reported_by':'rank','exit_status':1}",
   {"| ranks      3\n", "| hosts      vm\n", "| leader     rank 3", "|   #0  bad_fn", "|   giving up\n"},
   {"Exit status: 1", "Hosts: vm", "Leader: rank 3, pid 30066 on vm"}, "giving up", "#0  bad_fn", 0},
  {"mpi_error", "{'event':'mpi_error','title':'MPI_ERR_RANK in MPI_Send: invalid rank on 8 of 8 ranks (job t)','severity':'error',"
   "'signature':'3563328ff86f1bbf','ranks':[0,1,2,3,4,5,6,7],'world_size':8,'election':'ok','leader':{'rank':0,'pid':4728,"
   "'hostname':'vm'},'processes':[{'rank':0,'pid':4728,'hostname':'vm'},{'rank':7,'pid':4771,'hostname':'vm2'}]," FRAMES
   "'rank_output':['rank 0 send returned 6'],'reported_by':'rank','mpi_error':{'error_class':'MPI_ERR_RANK','error_code':6,"
   "'error_string':'MPI_ERR_RANK: invalid rank','handler':'return','communicator':'MPI_COMM_WORLD','function':'MPI_Send'},"
   "'text':'MPI_ERR_RANK: invalid rank'}",
   {"| ranks      0-7\n", "| hosts      vm, vm2\n", "| leader     rank 0, pid 4728 on vm\n", "|   #0  bad_fn", "| MPI_ERR_RANK: invalid rank\n"},
   {"MPI error: MPI_ERR_RANK: MPI_ERR_RANK: invalid rank", "Ranks: 8 of 8", "Hosts: vm, vm2"}, "rank 0 send returned 6", "#0  bad_fn", 0},
  {"mpi_abort", "{'event':'mpi_error','title':'MPI_Abort(7) on 1 of 8 ranks (job t)','severity':'critical','signature':"
   "'7f79bf7d183ba764','ranks':[3],'world_size':8,'election':'ok'," LEADER3 FRAMES
   "'rank_output':['ERROR: rank 3 cannot go on: mesh.dat has no cells'],'reported_by':'rank','mpi_error':"
   "{'function':'MPI_Abort','error_code':7,'abort':true}}",
   {"| ranks      3\n", "| hosts      vm\n", "| leader     rank 3", "|   #0  bad_fn", "|   ERROR: rank 3 cannot go on: mesh.dat has no cells\n"},
   {"MPI error: MPI_Abort", "Hosts: vm", "Leader: rank 3, pid 30066 on vm"}, "ERROR: rank 3 cannot go on", "#0  bad_fn", 0},
  {"launcher_crash", "{'event':'crash','title':'SIGKILL on 1 of 8 ranks (job t)','severity':'critical','signature':'22c55215d79e9c12',"
   "'signal':'SIGKILL','signal_number':9,'fault_address':null,'sent_by_pid':null,'ranks':[5],'world_size':8,'election':null,"
   "'leader':null,'processes':[{'rank':5,'pid':41234,'hostname':'n17'}],'backtrace':null,'rank_output':null,"
   "'job':{'name':'t'},'reported_by':'launcher','text':'Rank 5 (pid 41234 on n17) was killed by SIGKILL (signal 9).'}",
   {"| ranks      5\n", "| hosts      n17\n", "|   rank 5      pid 41234    n17\n", "| Rank 5 (pid 41234 on n17) was killed"},
   {"Signal: SIGKILL", "Ranks: 1 of 8", "Hosts: n17"}, "was killed by SIGKILL", NULL, 1},
  /* two ranks killed at once, merged with the job's end; the application said why, nowhere else */
  {"launcher_crash_two_merged", "{'event':'crash','title':'SIGKILL on 2 of 8 ranks (job t)','severity':'critical',"
   "'signature':'22c55215d79e9c12','signal':'SIGKILL','ranks':[2,5],'world_size':8,'election':null,'leader':null,"
   "'processes':[{'rank':2,'pid':30693,'hostname':'vm'},{'rank':5,'pid':30710,'hostname':'vm'}],'backtrace':null,"
   "'job':{'name':'t'," JOB_END(137, 4.887, 6) "},'reported_by':'launcher','application_error':'ERROR: out of memory in "
   "assemble()','text':'Ranks 2 (pid 30693 on vm) and 5 (pid 30710 on vm) were killed by SIGKILL (signal 9).'}",
   {"| ranks      2,5\n", "| hosts      vm\n", "| job hosts  vm, vm2\n",
    "| job end    failed with exit status 137 after 4.9 s; 6 other ranks ended after it without a failure of their own\n",
    "| The application said: ERROR: out of memory in assemble()\n", "| Ranks 2 (pid 30693 on vm) and 5"},
   {"Signal: SIGKILL", "Ranks: 2 of 8", "Hosts: vm", "Job hosts: vm, vm2",
    "Job end: failed with exit status 137 after 4.9 s; 6 other ranks ended after it without a failure of their own"},
   "The application said: ERROR: out of memory in assemble()\n\nRanks 2", NULL, 1},
  {"node_lost", "{'event':'node_lost','title':'Node nodeB lost on 2 of 4 ranks (job t)','severity':'critical','signature':"
   "'232025dc4d3d4940','ranks':[2,3],'world_size':4,'election':null,'leader':null,'processes':[{'rank':2,'pid':31632,"
   "'hostname':'nodeB'},{'rank':3,'pid':31640,'hostname':'nodeB'}],'backtrace':null,'rank_output':null,'job':{'name':'t',"
   "'status':'failed','exit_status':205,'duration_s':4.272,'world_size':4,'hosts':['nodeA','nodeB'],'victims':2},"
   "'reported_by':'launcher','lost_host':'nodeB','text':'Node nodeB was lost.','application_error':null}",
   {"| ranks      2-3\n", "| hosts      nodeB\n", "| job hosts  nodeA, nodeB\n", "| job end    failed with exit status 205 after 4.3 s",
    "| Node nodeB was lost.\n"},
   {"Ranks: 2 of 4", "Hosts: nodeB", "Job hosts: nodeA, nodeB", "Job end: failed with exit status 205 after 4.3 s; 2 other"},
   "Node nodeB was lost.", NULL, 1},
  {"hang", "{'event':'hang','title':'Job t hung for 2 s: rank 2 is in compute_loss (mpi_hang.c:40), not in MPI','severity':"
   "'error','signature':'fbe27f65d345dd21','ranks':[2],'world_size':4,'election':'ok','leader':{'rank':0,'pid':6797,"
   "'hostname':'vm'},'processes':[{'rank':2,'pid':6806,'hostname':'vm2'}],'backtrace':[],'rank_output':null,"
   "'reported_by':'rank','text':'rank 2 is in compute_loss (mpi_hang.c:40), not in MPI.\\nranks 0-1,3 wait in MPI_Allreduce.',"
   "'stuck_for_s':2,'suspects':[2]}",
   {"| ranks      2\n", "| hosts      vm2\n", "| leader     rank 0, pid 6797 on vm\n", "|   rank 2      pid 6806     vm2\n",
    "| rank 2 is in compute_loss (mpi_hang.c:40), not in MPI.\n"},
   {"Ranks: 1 of 4", "Hosts: vm2", "Leader: rank 0, pid 6797 on vm"}, "rank 2 is in compute_loss", NULL, 0},
  {"crash_merged", "{'event':'crash','title':'SIGSEGV on 1 of 8 ranks (job t)','severity':'critical','signature':"
   "'6eaba5fc6989a89f','signal':'SIGSEGV','fault_address':'0x0','ranks':[3],'world_size':8,'election':'ok'," LEADER3 FRAMES
   "'rank_output':['rank 3 faults: segv'],'job':{'name':'t'," JOB_END(139, 5.836, 7) "},'reported_by':'rank',"
   "'application_error':null}",
   {"| ranks      3\n", "| hosts      vm\n", "| job hosts  vm, vm2\n", "| leader     rank 3, pid 30066 on vm\n",
    "| job end    failed with exit status 139 after 5.8 s; 7 other ranks", "|   #0  bad_fn", "|   rank 3 faults: segv\n"},
   {"Job end: failed with exit status 139 after 5.8 s; 7 other ranks ended after it without a failure of their own",
    "Signal: SIGSEGV", "Hosts: vm", "Job hosts: vm, vm2", "Leader: rank 3, pid 30066 on vm"}, "rank 3 faults: segv", "#0  bad_fn", 0},
  {"abort_merged", "{'event':'mpi_error','title':'MPI_Abort(5) on 1 of 8 ranks (job t): ERROR: mesh.dat has no cells',"
   "'severity':'critical','signature':'7f71bf7d182254ba','ranks':[3],'world_size':8,'election':'ok'," LEADER3 FRAMES
   "'rank_output':['ERROR: mesh.dat has no cells'],'job':{'name':'t'," JOB_END(5, 3.82, 7) "},'reported_by':'rank',"
   "'mpi_error':{'function':'MPI_Abort','error_code':5,'abort':true},'application_error':'ERROR: mesh.dat has no cells',"
   "'text':'The application said: ERROR: mesh.dat has no cells'}",
   {"| ranks      3\n", "| job hosts  vm, vm2\n", "| job end    failed with exit status 5 after 3.8 s",
    "| The application said: ERROR: mesh.dat has no cells\n===\n"},
   {"MPI error: MPI_Abort", "Hosts: vm", "Job hosts: vm, vm2", "Job end: failed with exit status 5 after 3.8 s; 7 other"},
   "The application said: ERROR: mesh.dat has no cells", "#0  bad_fn", 0},
  {"job_started", "{'event':'job','severity':'info','status':'started','hosts':['vm','vm2'],'ranks_armed':8,'world_size':8,"
   "'ranks':[0,1,2,3,4,5,6,7],'job':{'name':'t','command':'mpirun -np 8 ./t','duration_s':null},'reported_by':'launcher',"
   "'title':'Job t started: 8 of 8 ranks armed','text':'Command: mpirun -np 8 ./t\\nHosts: vm, vm2'}",
   {"| ranks      0-7\n", "| hosts      vm, vm2\n", "| Command: mpirun -np 8 ./t\n"},
   {"Ranks: 8 of 8", "Hosts: vm, vm2"}, "Command: mpirun -np 8 ./t", NULL, 0},
  {"job_completed", "{'event':'job','severity':'info','status':'completed','exit_status':0,'duration_s':3.043,'world_size':8,"
   "'hosts':['vm','vm2'],'job':{'name':'t','command':'mpirun -np 8 ./t','duration_s':3.043},'reported_by':'launcher',"
   "'ranks':[],'title':'Job t completed in 3.0 s','text':'Duration: 3.0 s\\nCommand: mpirun -np 8 ./t'}",
   {"| job end    completed with exit status 0 after 3.0 s\n", "| hosts      vm, vm2\n", "| Command: mpirun -np 8 ./t\n"},
   {"Job end: completed with exit status 0 after 3.0 s", "Hosts: vm, vm2"}, "Duration: 3.0 s", NULL, 0},
  {"job_failed", "{'event':'job','severity':'error','status':'failed','exit_status':1,'duration_s':4.108,'world_size':8,"
   "'hosts':['vm','vm2'],'job':{'name':'t','command':'mpirun -np 8 ./t'},'reported_by':'launcher','application_error':"
   "'ERROR: Unknown command: frobnicate','processes':[{'rank':0,'pid':32332,'hostname':'vm'},{'rank':1,'pid':32334,"
   "'hostname':'vm'}],'root_cause':{'event':'exit','ranks':[0,1],'exit_status':1,'reported_by':'launcher'},'ranks':[0,1],"
   "'victims':0,'title':'Job t failed: exit status 1 on ranks 0,1: ERROR: Unknown command: frobnicate','text':"
   "'The application said: ERROR: Unknown command: frobnicate\\nExit status 1.\\nRoot cause: 2 ranks exited with status 1.'}",
   {"| ranks      0-1\n", "| job end    failed with exit status 1 after 4.1 s\n", "| hosts      vm\n", "| job hosts  vm, vm2\n",
    "| The application said: ERROR: Unknown command: frobnicate\n"},
   {"Job end: failed with exit status 1 after 4.1 s", "Ranks: 2 of 8", "Hosts: vm", "Job hosts: vm, vm2"},
   "The application said: ERROR: Unknown command: frobnicate\nExit", NULL, 0},
  {"job_killed", "{'event':'job','severity':'error','status':'failed','exit_status':143,'duration_s':27.618,'world_size':4,"
   "'hosts':['vm'],'job':{'name':'train','slurm_job_id':'1','duration_s':27.618},'reported_by':'launcher','application_error':"
   "null,'root_cause':{'event':'time_limit','ranks':[],'hostname':'vm','time_limit':'1m00s','reported_by':'launcher'},"
   "'ranks':[],'victims':4,'title':'Job 1 (train) reached its time limit after 1m00s','text':'Job 1 (train) reached its "
   "time limit after 1m00s.\\nExit status 143.'}",
   {"| job end    failed with exit status 143 after 27.6 s; 4 other ranks ended after it without a failure of their own\n",
    "| hosts      vm\n", "| Job 1 (train) reached its time limit after 1m00s.\n"},
   {"Job end: failed with exit status 143 after 27.6 s; 4 other ranks ended after it without a failure of their own",
    "Hosts: vm"}, "reached its time limit", NULL, 0},
};

static mpn_message *kind_message(const char *json)
{
  char *doc = strdup(json);
  for (char *p = doc; p && *p; p++)
    if (*p == '\'')
      *p = '"';
  mpn_message *m = doc ? mpn__message_from_json(doc, NULL) : NULL;
  free(doc);
  return m;
}

/* The view has a fact "Label: value" (a value may be given by its start). */
static int has_fact(const mpn__view *v, const char *want)
{
  for (int i = 0; v && i < v->nfacts; i++) {
    size_t n = strlen(v->facts[i].label);
    if (!strncmp(want, v->facts[i].label, n) && !strncmp(want + n, ": ", 2) &&
        !strncmp(v->facts[i].value, want + n + 2, strlen(want + n + 2)))
      return 1;
  }
  return 0;
}

static int count(const char *s, const char *what)
{
  int n = 0;
  for (const char *p = s ? strstr(s, what) : NULL; p; p = strstr(p + 1, what))
    n++;
  return n;
}

TEST(every_kind_facts)
{
  for (size_t k = 0; k < sizeof kind_cases / sizeof kind_cases[0]; k++) {
    const kind_case *c = &kind_cases[k];
    mpn_message *m = kind_message(c->json);
    char *panel = m ? mpn__message_text(m, 0) : NULL;
    mpn__view *v = m ? mpn__view_new(m) : NULL;
    int ok = panel && v;
    for (int i = 0; ok && i < 8 && c->panel[i]; i++)
      if (!strstr(panel, c->panel[i]))
        ok = !fprintf(stderr, "%s: the panel lacks \"%s\"\n", c->name, c->panel[i]);
    for (int i = 0; ok && i < 8 && c->facts[i]; i++)
      if (!has_fact(v, c->facts[i]))
        ok = !fprintf(stderr, "%s: no fact \"%s\"\n", c->name, c->facts[i]);
    if (ok && c->text && !(v->text && strstr(v->text, c->text)))
      ok = !fprintf(stderr, "%s: the text lacks \"%s\"\n", c->name, c->text);
    if (ok && c->code && !(v->backtrace && strstr(v->backtrace, c->code)))
      ok = !fprintf(stderr, "%s: the backtrace lacks \"%s\"\n", c->name, c->code);
    if (ok && (has_fact(v, "Reported by: mpinotify-run") != c->by_launcher ||
               (strstr(panel, "| reported by mpinotify-run") != NULL) != c->by_launcher))
      ok = !fprintf(stderr, "%s: \"reported by\" %s\n", c->name, c->by_launcher ? "missing" : "where a rank reported");
    if (ok && (count(panel, "The application said:") > 1 || count(v->text, "The application said:") > 1))
      ok = !fprintf(stderr, "%s: the application's words twice\n", c->name);
    if (!ok && panel)
      fprintf(stderr, "%s", panel);
    CHECK(ok);
    free(panel);
    mpn__view_free(v);
    mpn_message_free(m);
  }
}
