/*
 * test_plugin.c - unit tests for host/plugins/plugin.c (opening a plugin from a
 * private copy and checking its table), against the test plugins of
 * tests/plugins/ built into WSH_TEST_PLUGIN_DIR (the registry has its own,
 * test_registry.c). Also checks that the recorder test plugin, which the
 * integration tests rely on, does what its head comment says.
 *
 * recorder.so calls websock_* functions that the websockd executable exports.
 * Here the test executable exports (-rdynamic, ENABLE_EXPORTS) the fakes
 * below instead, which record what the plugin asked for.
 */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <link.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "plugins/plugin.h"
#include "plugins/route.h"
#include "websock.h"

#define WSH_TEST_NAME "test_plugin"
#include "testutil.h"

#ifndef WSH_TEST_PLUGIN_DIR
#error "WSH_TEST_PLUGIN_DIR must name the directory of the built test plugins"
#endif

/* ------------------------------------------------------------------------ */
/* Fakes of the host API that recorder.so uses                               */
/* ------------------------------------------------------------------------ */

enum { FAKE_NONE, FAKE_NORMAL, FAKE_ERROR, FAKE_RESTART };

typedef struct fake_push {
  websock_opcode op;
  size_t len;
  char data[128];
} fake_push;

struct websock_conn {
  const char *route;
  const char *subprotocol;
  const websock_options *options;
  const websock_request *req; /* during init only, as the host does it */
  int push_rc;                /* what websock_push returns when not 0 */
  size_t npushed;
  fake_push pushed[8];
  int stop_kind; /* FAKE_* */
  unsigned close_code;
  char close_text[128];
};

struct websock_request {
  const char *path;
  const char *query;
  const char *const *headers; /* name, value, name, value, ..., NULL */
};

struct websock_response {
  const char *const *offered; /* subprotocols the client offered, NULL-ended */
  size_t nheaders;
  char header[4][2][64];
  char body[64];
  char subprotocol[64];
  int state_set;
  void *state;
};

static void copy_out(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

int websock_push(websock_conn *conn, websock_opcode opcode, const void *data,
                 size_t len) {
  if (conn->push_rc)
    return conn->push_rc;
  if (conn->npushed == sizeof(conn->pushed) / sizeof(conn->pushed[0]))
    return WEBSOCK_ENOMEM;
  fake_push *p = &conn->pushed[conn->npushed++];
  p->op = opcode;
  p->len = len;
  memset(p->data, 0, sizeof(p->data));
  if (len)
    memcpy(p->data, data,
           len < sizeof(p->data) - 1 ? len : sizeof(p->data) - 1);
  return 0;
}

/* recorder.so's export_state appends with it; nothing here hands off. */
int websock_buf_append(websock_buf *buf, const void *data, size_t len) {
  (void)buf;
  (void)data;
  (void)len;
  return WEBSOCK_EINVAL;
}

int websock_close(websock_conn *conn, uint16_t code, const char *text) {
  if (!((code >= 1000 && code <= 1003 && code != 1002) ||
        (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)))
    return WEBSOCK_EINVAL;
  conn->stop_kind = FAKE_NORMAL;
  conn->close_code = code;
  copy_out(conn->close_text, sizeof(conn->close_text), text);
  return 0;
}

int websock_close_error(websock_conn *conn, const char *detail) {
  conn->stop_kind = FAKE_ERROR;
  conn->close_code = 1011;
  copy_out(conn->close_text, sizeof(conn->close_text), detail);
  return 0;
}

int websock_close_restart(websock_conn *conn) {
  conn->stop_kind = FAKE_RESTART;
  conn->close_code = 1012;
  conn->close_text[0] = '\0';
  return 0;
}

const websock_request *websock_conn_request(const websock_conn *conn) {
  return conn->req;
}

const char *websock_conn_subprotocol(const websock_conn *conn) {
  return conn->subprotocol;
}

const char *websock_conn_option(const websock_conn *conn, const char *key) {
  return websock_option(conn->options, key);
}

const char *websock_conn_route(const websock_conn *conn) {
  return conn->route;
}

const char *websock_option(const websock_options *options, const char *key) {
  for (size_t i = 0; options && key && i < options->n; i++)
    if (strcmp(options->items[i].key, key) == 0)
      return options->items[i].value;
  return NULL;
}

const char *websock_request_path(const websock_request *req) {
  return req->path;
}

const char *websock_request_query(const websock_request *req) {
  return req->query;
}

const char *websock_request_header(const websock_request *req,
                                   const char *name) {
  for (size_t i = 0; req->headers && req->headers[i]; i += 2)
    if (strcasecmp(req->headers[i], name) == 0)
      return req->headers[i + 1];
  return NULL;
}

int websock_response_add_header(websock_response *resp, const char *name,
                                const char *value) {
  if (resp->nheaders == 4)
    return WEBSOCK_ENOMEM;
  copy_out(resp->header[resp->nheaders][0], 64, name);
  copy_out(resp->header[resp->nheaders][1], 64, value);
  resp->nheaders++;
  return 0;
}

int websock_response_set_subprotocol(websock_response *resp,
                                     const char *protocol) {
  for (size_t i = 0; resp->offered && resp->offered[i]; i++)
    if (strcmp(resp->offered[i], protocol) == 0) {
      copy_out(resp->subprotocol, sizeof(resp->subprotocol), protocol);
      return 0;
    }
  return WEBSOCK_EINVAL;
}

int websock_response_set_body(websock_response *resp, const char *body) {
  copy_out(resp->body, sizeof(resp->body), body);
  return 0;
}

void websock_response_set_state(websock_response *resp, void *state) {
  resp->state = state;
  resp->state_set = 1;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static void plugin_so(char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s.so", WSH_TEST_PLUGIN_DIR, name);
}

/* Opening `name`.so must fail: err names the .so (first) and each cause, and
 * no private copy is left behind. */
static void check_refused(const char *name, const char *cause1,
                          const char *cause2) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, name);
  tmp_path(copy, "copy.so");
  wsh_plugin *p = NULL;
  int rc = wsh_plugin_open(so, copy, &p, err, sizeof(err));
  ck_assert_int_lt(rc, 0);
  ck_assert_ptr_null(p);
  ck_assert_msg(strncmp(err, so, strlen(so)) == 0,
                "the error does not start with the .so path %s: \"%s\"", so,
                err);
  ck_assert_has(err, cause1);
  if (cause2)
    ck_assert_has(err, cause2);
  ck_assert_ptr_null(strchr(err, '\n'));
  ck_assert_msg(!exists(copy), "private copy %s left behind", copy);
}

/* ------------------------------------------------------------------------ */
/* wsh_plugin_open: refusals                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(open_missing_file) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  tmp_path(so, "no_such_plugin.so");
  tmp_path(copy, "copy.so");
  wsh_plugin *p = NULL;
  ck_assert_int_eq(wsh_plugin_open(so, copy, &p, err, sizeof(err)),
                   WEBSOCK_ENOENT);
  ck_assert_ptr_null(p);
  ck_assert_msg(strncmp(err, so, strlen(so)) == 0, "\"%s\"", err);
  ck_assert_has(err, strerror(ENOENT));
  ck_assert(!exists(copy));
}
END_TEST

START_TEST(open_directory) {
  char copy[PATH_MAX], err[1024] = "";
  tmp_path(copy, "copy.so");
  wsh_plugin *p = NULL;
  ck_assert_int_lt(wsh_plugin_open(tmp_dir, copy, &p, err, sizeof(err)), 0);
  ck_assert_ptr_null(p);
  ck_assert_has(err, tmp_dir);
  ck_assert_has(err, "not a regular file");
  ck_assert(!exists(copy));
}
END_TEST

START_TEST(open_not_elf) {
  check_refused("not_elf", "not an ELF file", NULL);
}
END_TEST

START_TEST(open_no_symbol) {
  check_refused("no_symbol", "no websock_handler_v1 symbol", NULL);
}
END_TEST

START_TEST(open_bad_abi) {
  check_refused("bad_abi", "unknown ABI version 99", "knows version 1");
}
END_TEST

START_TEST(open_too_small) {
  check_refused("too_small", "too small", "struct_size 8");
}
END_TEST

START_TEST(open_null_handle_in) {
  check_refused("null_handle_in", "no handle_in", NULL);
}
END_TEST

START_TEST(open_missing_dep) {
  check_refused("missing_dep", "cannot load", "websock_no_such_function");
}
END_TEST

START_TEST(open_copy_not_writable) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  tmp_path(copy, "no_such_dir/copy.so");
  wsh_plugin *p = NULL;
  ck_assert_int_lt(wsh_plugin_open(so, copy, &p, err, sizeof(err)), 0);
  ck_assert_ptr_null(p);
  ck_assert_has(err, so);
  ck_assert_has(err, "cannot create private copy");
  ck_assert_has(err, copy);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* wsh_plugin_open: plugins that load                                        */
/* ------------------------------------------------------------------------ */

START_TEST(open_recorder) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  tmp_path(copy, "1-recorder.so");
  wsh_plugin *p = NULL;
  ck_assert_int_eq(wsh_plugin_open(so, copy, &p, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_nonnull(p->dl);
  ck_assert_str_eq(p->so_path, so);
  ck_assert_str_eq(p->copy_path, copy);
  struct stat a, b;
  ck_assert_int_eq(stat(so, &a), 0);
  ck_assert_int_eq(stat(copy, &b), 0);
  ck_assert(S_ISREG(b.st_mode));
  ck_assert_int_eq(a.st_size, b.st_size);
  ck_assert(a.st_ino != b.st_ino);
  ck_assert_uint_eq(p->h.abi_version, WEBSOCK_ABI_VERSION);
  ck_assert_uint_eq(p->h.struct_size, sizeof(struct websock_handler));
  ck_assert_str_eq(p->h.name, "recorder");
  ck_assert_str_eq(p->h.version, "1.0.0");
  ck_assert_ptr_nonnull(p->h.load);
  ck_assert_ptr_nonnull(p->h.unload);
  ck_assert_ptr_nonnull(p->h.upgrade);
  ck_assert_ptr_nonnull(p->h.init);
  ck_assert_ptr_nonnull(p->h.handle_in);
  ck_assert_ptr_nonnull(p->h.handle_control);
  ck_assert_ptr_nonnull(p->h.handle_info);
  ck_assert_ptr_nonnull(p->h.terminate);
  wsh_plugin_close(p);
  ck_assert_msg(!exists(copy), "private copy %s not deleted on close", copy);
  ck_assert(exists(so));
}
END_TEST

START_TEST(open_old_abi_small) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "old_abi_small");
  tmp_path(copy, "old.so");
  wsh_plugin *p = NULL;
  ck_assert_msg(wsh_plugin_open(so, copy, &p, err, sizeof(err)) == 0, "%s",
                err);
  ck_assert_uint_eq(p->h.struct_size, WSH_HANDLER_MIN_SIZE);
  ck_assert_str_eq(p->h.name, "old_abi_small");
  ck_assert_ptr_nonnull(p->h.handle_in);
  /* In the old table but NULL there. */
  ck_assert_ptr_null(p->h.load);
  ck_assert_ptr_null(p->h.init);
  /* Beyond its struct_size: absent, although non-NULL bytes follow it. */
  ck_assert_ptr_null(p->h.handle_control);
  ck_assert_ptr_null(p->h.handle_info);
  ck_assert_ptr_null(p->h.terminate);
  wsh_plugin_close(p);
  ck_assert(!exists(copy));
}
END_TEST

START_TEST(close_null) {
  wsh_plugin_close(NULL);
}
END_TEST

/* Loads recorder through p with [options] record = path. */
static void load_recording(wsh_plugin *p, const char *path) {
  websock_options o = {0};
  ck_assert_int_eq(wsh_options_add(&o, "record", path), 0);
  ck_assert_int_eq(p->h.load(&o), 0);
  wsh_options_free(&o);
}

START_TEST(open_same_path_twice) {
  char so[PATH_MAX], c1[PATH_MAX], c2[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  tmp_path(c1, "1-recorder.so");
  tmp_path(c2, "2-recorder.so");
  wsh_plugin *p1 = NULL, *p2 = NULL;
  ck_assert_msg(wsh_plugin_open(so, c1, &p1, err, sizeof(err)) == 0, "%s", err);
  ck_assert_msg(wsh_plugin_open(so, c2, &p2, err, sizeof(err)) == 0, "%s", err);
  ck_assert_str_ne(p1->copy_path, p2->copy_path);
  ck_assert_ptr_ne(p1->dl, p2->dl);
  ck_assert_ptr_ne(p1->h.handle_in, p2->h.handle_in);
  ck_assert(exists(c1) && exists(c2));

  /* Independent statics: each copy records to its own file. */
  char r1[PATH_MAX], r2[PATH_MAX];
  tmp_path(r1, "r1.log");
  tmp_path(r2, "r2.log");
  load_recording(p1, r1);
  load_recording(p2, r2);
  p1->h.unload();
  wsh_plugin_close(p1);
  ck_assert(!exists(c1));
  ck_assert(exists(c2));
  ck_assert_str_eq(read_file(r1), "load\nunload\n");
  ck_assert_str_eq(read_file(r2), "load\n");
  /* p2's code is still mapped after p1 is gone. */
  ck_assert_str_eq(p2->h.name, "recorder");
  p2->h.unload();
  ck_assert_str_eq(read_file(r2), "load\nunload\n");
  wsh_plugin_close(p2);
  ck_assert(!exists(c2));
}
END_TEST

START_TEST(reopen_same_copy_path) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  tmp_path(copy, "copy.so");
  for (int i = 0; i < 3; i++) {
    wsh_plugin *p = NULL;
    ck_assert_msg(wsh_plugin_open(so, copy, &p, err, sizeof(err)) == 0, "%s",
                  err);
    wsh_plugin_close(p);
    ck_assert(!exists(copy));
  }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The recorder test plugin, driven through the fakes                        */
/* ------------------------------------------------------------------------ */

static wsh_plugin *rec_plugin;
static websock_options rec_options;
static char rec_log[PATH_MAX];

static void recorder_setup(void) {
  tmp_setup();
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  tmp_path(copy, "recorder-copy.so");
  tmp_path(rec_log, "rec.log");
  ck_assert_msg(wsh_plugin_open(so, copy, &rec_plugin, err, sizeof(err)) == 0,
                "%s", err);
  memset(&rec_options, 0, sizeof(rec_options));
  ck_assert_int_eq(wsh_options_add(&rec_options, "record", rec_log), 0);
  ck_assert_int_eq(wsh_options_add(&rec_options, "colour", "blue"), 0);
  ck_assert_int_eq(rec_plugin->h.load(&rec_options), 0);
}

static void recorder_teardown(void) {
  rec_plugin->h.unload();
  wsh_plugin_close(rec_plugin);
  wsh_options_free(&rec_options);
  tmp_teardown();
}

/* The n-th line of the record (from 0), without its newline. */
static const char *record_line(int n) {
  static char line[4096];
  const char *s = read_file(rec_log);
  for (int i = 0; i < n && s; i++)
    if ((s = strchr(s, '\n')))
      s++;
  if (!s || !*s)
    return "";
  size_t len = strcspn(s, "\n");
  snprintf(line, sizeof(line), "%.*s", (int)len, s);
  return line;
}

/* upgrade() then init() on conn; returns init's result. */
static int rec_open(websock_conn *conn, const char *path, const char *query,
                    void **state) {
  static const char *const no_headers[] = {NULL};
  websock_request req = {.path = path, .query = query, .headers = no_headers};
  websock_response resp = {0};
  ck_assert_int_eq(rec_plugin->h.upgrade(&req, &resp), 0);
  ck_assert(resp.state_set);
  *state = resp.state;
  conn->req = &req;
  int rc = rec_plugin->h.init(conn, state);
  conn->req = NULL;
  return rc;
}

static int rec_text(websock_conn *conn, void **state, const char *msg) {
  conn->npushed = 0;
  return rec_plugin->h.handle_in(conn, state, WEBSOCK_OP_TEXT,
                                 (const uint8_t *)msg, strlen(msg));
}

static void rec_close(websock_conn *conn, void *state, websock_reason_kind kind,
                      uint16_t code, const char *text) {
  websock_reason reason = {.kind = kind, .code = code, .text = text};
  rec_plugin->h.terminate(conn, state, &reason);
}

#define ck_assert_pushed(conn, i, opcode, str)                                 \
  do {                                                                         \
    ck_assert_uint_gt((conn)->npushed, (i));                                   \
    ck_assert_int_eq((conn)->pushed[(i)].op, (opcode));                        \
    ck_assert_uint_eq((conn)->pushed[(i)].len, strlen(str));                   \
    ck_assert_str_eq((conn)->pushed[(i)].data, (str));                         \
  } while (0)

START_TEST(recorder_load_refuse) {
  char path[PATH_MAX];
  tmp_path(path, "refuse.log");
  websock_options o = {0};
  ck_assert_int_eq(wsh_options_add(&o, "refuse", "yes"), 0);
  ck_assert_int_eq(wsh_options_add(&o, "record", path), 0);
  /* A second generation of the plugin: its own copy, its own statics. */
  char so[PATH_MAX], copy[PATH_MAX], err[1024];
  plugin_so(so, "recorder");
  tmp_path(copy, "second.so");
  wsh_plugin *p = NULL;
  ck_assert_msg(wsh_plugin_open(so, copy, &p, err, sizeof(err)) == 0, "%s",
                err);
  ck_assert_int_ne(p->h.load(&o), 0);
  ck_assert_str_eq(read_file(path), "load refused\n");
  wsh_plugin_close(p);
  wsh_options_free(&o);
}
END_TEST

START_TEST(recorder_upgrade_refuse) {
  static const char *const headers[] = {"x-test-refuse", "1", NULL};
  websock_request req = {.path = "/r", .query = "", .headers = headers};
  websock_response resp = {0};
  ck_assert_int_eq(rec_plugin->h.upgrade(&req, &resp), 401);
  ck_assert_uint_eq(resp.nheaders, 1);
  ck_assert_str_eq(resp.header[0][0], "WWW-Authenticate");
  ck_assert_str_eq(resp.header[0][1], "Bearer realm=\"test\"");
  ck_assert_str_eq(resp.body, "go away\n");
  ck_assert(!resp.state_set);
  ck_assert_str_eq(record_line(1), "upgrade /r");
}
END_TEST

START_TEST(recorder_upgrade_subprotocol) {
  static const char *const no_headers[] = {NULL};
  static const char *const offered[] = {"v1.chat", "v2.chat", NULL};
  websock_request req = {
      .path = "/r", .query = "a=1&proto=v2.chat&b", .headers = no_headers};
  websock_response resp = {.offered = offered};
  ck_assert_int_eq(rec_plugin->h.upgrade(&req, &resp), 0);
  ck_assert_str_eq(resp.subprotocol, "v2.chat");
  ck_assert_uint_eq(resp.nheaders, 1);
  ck_assert_str_eq(resp.header[0][0], "X-Recorder");
  ck_assert_str_eq(resp.header[0][1], "yes");
  ck_assert(resp.state_set && resp.state);
  free(resp.state);
  ck_assert_str_eq(record_line(1), "upgrade /r?a=1&proto=v2.chat&b");

  websock_response resp2 = {.offered = offered};
  req.query = "proto=v3.chat";
  ck_assert_int_eq(rec_plugin->h.upgrade(&req, &resp2), 400);
  ck_assert(!resp2.state_set);
}
END_TEST

START_TEST(recorder_init_and_terminate) {
  websock_conn conn = {.route = "/r", .options = &rec_options};
  void *state = NULL;
  ck_assert_int_eq(rec_open(&conn, "/r", "x=1", &state), WEBSOCK_OK);
  ck_assert_ptr_nonnull(state);
  ck_assert_uint_eq(conn.npushed, 1);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "hello");
  uint8_t ping[3] = {1, 2, 3};
  ck_assert_int_eq(
      rec_plugin->h.handle_control(&conn, &state, WEBSOCK_OP_PING, ping, 3),
      WEBSOCK_OK);
  ck_assert_int_eq(
      rec_plugin->h.handle_control(&conn, &state, WEBSOCK_OP_PONG, NULL, 0),
      WEBSOCK_OK);
  conn.npushed = 0;
  ck_assert_int_eq(rec_plugin->h.handle_info(&conn, &state, ping, 3),
                   WEBSOCK_OK);
  ck_assert_uint_eq(conn.npushed, 1);
  ck_assert_int_eq(conn.pushed[0].op, WEBSOCK_OP_BINARY);
  rec_close(&conn, state, WEBSOCK_REASON_REMOTE, 4001, "bye\nnow");

  /* A second connection gets the next id; an empty text keeps its space. */
  websock_conn conn2 = {.route = "/r", .options = &rec_options};
  void *state2 = NULL;
  ck_assert_int_eq(rec_open(&conn2, "/r", "", &state2), WEBSOCK_OK);
  rec_close(&conn2, state2, WEBSOCK_REASON_NORMAL, 1000, "");

  ck_assert_str_eq(read_file(rec_log), "load\n"
                                       "upgrade /r?x=1\n"
                                       "init 1\n"
                                       "control 1 ping 3\n"
                                       "control 1 pong 0\n"
                                       "handle_info 1 3\n"
                                       "terminate 1 1 4001 bye?now\n"
                                       "upgrade /r\n"
                                       "init 2\n"
                                       "terminate 2 0 1000 \n");
}
END_TEST

START_TEST(recorder_initstop) {
  websock_conn conn = {.route = "/r", .options = &rec_options};
  void *state = NULL;
  ck_assert_int_eq(rec_open(&conn, "/r", "initstop", &state), WEBSOCK_STOP);
  ck_assert_ptr_null(state); /* freed by init (LeakSanitizer would tell) */
  ck_assert_uint_eq(conn.npushed, 0);
  ck_assert_str_eq(record_line(2), "init 1");
}
END_TEST

START_TEST(recorder_commands) {
  websock_conn conn = {
      .route = "/rec", .subprotocol = NULL, .options = &rec_options};
  void *state = NULL;
  ck_assert_int_eq(rec_open(&conn, "/rec", "", &state), WEBSOCK_OK);

  ck_assert_int_eq(rec_text(&conn, &state, "echo:abc"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "abc");
  ck_assert_int_eq(rec_text(&conn, &state, "echo:"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "");
  ck_assert_int_eq(rec_text(&conn, &state, "push3"), WEBSOCK_OK);
  ck_assert_uint_eq(conn.npushed, 3);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "one");
  ck_assert_pushed(&conn, 1, WEBSOCK_OP_TEXT, "two");
  ck_assert_pushed(&conn, 2, WEBSOCK_OP_TEXT, "three");
  ck_assert_int_eq(rec_text(&conn, &state, "subprotocol"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "none");
  conn.subprotocol = "v1.chat";
  ck_assert_int_eq(rec_text(&conn, &state, "subprotocol"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "v1.chat");
  ck_assert_int_eq(rec_text(&conn, &state, "option:colour"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "blue");
  ck_assert_int_eq(rec_text(&conn, &state, "option:size"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "none");
  ck_assert_int_eq(rec_text(&conn, &state, "info"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "/rec");
  ck_assert_int_eq(rec_text(&conn, &state, "hello there"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "hello there");
  ck_assert_int_eq(rec_text(&conn, &state, "stopping"), WEBSOCK_OK);
  ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, "stopping");
  ck_assert_int_eq(rec_text(&conn, &state, "bad-result"), 42);
  ck_assert_int_eq(conn.stop_kind, FAKE_NONE);

  conn.npushed = 0;
  const uint8_t bin[4] = {0, 0xff, 'a', 0};
  ck_assert_int_eq(
      rec_plugin->h.handle_in(&conn, &state, WEBSOCK_OP_BINARY, bin, 4),
      WEBSOCK_OK);
  ck_assert_uint_eq(conn.npushed, 1);
  ck_assert_int_eq(conn.pushed[0].op, WEBSOCK_OP_BINARY);
  ck_assert_uint_eq(conn.pushed[0].len, 4);
  ck_assert_mem_eq(conn.pushed[0].data, bin, 4);

  /* A failed push is recorded, and the connection stays up. */
  conn.push_rc = WEBSOCK_EFULL;
  ck_assert_int_eq(rec_text(&conn, &state, "echo:x"), WEBSOCK_OK);
  conn.push_rc = 0;

  ck_assert_str_eq(record_line(3), "in 1 text 8");
  ck_assert_str_eq(record_line(14), "in 1 binary 4");
  ck_assert_str_eq(record_line(15), "in 1 text 6");
  ck_assert_str_eq(record_line(16), "pushfail 1 -5");
  rec_close(&conn, state, WEBSOCK_REASON_SHUTDOWN, 1001, "");
}
END_TEST

/* Each stopping command on a fresh connection. */
START_TEST(recorder_stops) {
  static const struct {
    const char *msg;
    int kind;
    unsigned code;
    const char *text;
    const char *pushed;
  } cases[] = {
      {"stop", FAKE_NONE, 0, "", NULL},
      {"close:4001:see you", FAKE_NORMAL, 4001, "see you", NULL},
      {"close:1000:", FAKE_NORMAL, 1000, "", NULL},
      {"close:3000", FAKE_NORMAL, 3000, "", NULL},
      {"close:1005:not sendable", FAKE_NONE, 0, "", NULL},
      {"error:it broke", FAKE_ERROR, 1011, "it broke", NULL},
      {"restart", FAKE_RESTART, 1012, "", NULL},
      {"pushstop", FAKE_NORMAL, 4000, "done", "bye"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    websock_conn conn = {.route = "/r", .options = &rec_options};
    void *state = NULL;
    ck_assert_int_eq(rec_open(&conn, "/r", "", &state), WEBSOCK_OK);
    ck_assert_msg(rec_text(&conn, &state, cases[i].msg) == WEBSOCK_STOP, "%s",
                  cases[i].msg);
    ck_assert_msg(conn.stop_kind == cases[i].kind, "%s: kind %d", cases[i].msg,
                  conn.stop_kind);
    ck_assert_uint_eq(conn.close_code, cases[i].code);
    ck_assert_str_eq(conn.close_text, cases[i].text);
    if (cases[i].pushed) {
      ck_assert_uint_eq(conn.npushed, 1);
      ck_assert_pushed(&conn, 0, WEBSOCK_OP_TEXT, cases[i].pushed);
    } else {
      ck_assert_uint_eq(conn.npushed, 0);
    }
    rec_close(&conn, state, WEBSOCK_REASON_NORMAL, 1000, "");
  }
  ck_assert_has(read_file(rec_log), "\nin 5 text 23\nclosefail 5 -1\n");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The ELF check: a broken file is refused before it is mapped               */
/* ------------------------------------------------------------------------ */

/* The whole of `from` into buf (at most cap bytes); returns its size. */
static size_t slurp(const char *from, unsigned char *buf, size_t cap) {
  FILE *f = fopen(from, "rb");
  ck_assert_msg(f != NULL, "%s: %s", from, strerror(errno));
  size_t n = fread(buf, 1, cap, f);
  ck_assert(feof(f));
  fclose(f);
  return n;
}

static void spill(const char *to, const unsigned char *buf, size_t len) {
  FILE *f = fopen(to, "wb");
  ck_assert_msg(f != NULL, "%s: %s", to, strerror(errno));
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

/* Opening buf[0..len) as a plugin is refused with `cause` (this process,
 * which would die of SIGBUS if the file were mapped, lives). */
static void check_bytes_refused(const unsigned char *buf, size_t len,
                                const char *cause) {
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  tmp_path(so, "cut.so");
  tmp_path(copy, "cut-copy.so");
  spill(so, buf, len);
  wsh_plugin *p = NULL;
  ck_assert_msg(wsh_plugin_open(so, copy, &p, err, sizeof(err)) < 0,
                "%zu bytes were opened", len);
  ck_assert_ptr_null(p);
  ck_assert_msg(strncmp(err, so, strlen(so)) == 0, "\"%s\"", err);
  ck_assert_msg(strstr(err, cause), "%zu bytes: \"%s\" lacks \"%s\"", len, err,
                cause);
  ck_assert_ptr_null(strchr(err, '\n'));
  ck_assert(!exists(copy));
}

static unsigned char elf_buf[4 << 20];

START_TEST(elf_whole_file_passes) {
  char so[PATH_MAX], err[1024] = "";
  plugin_so(so, "recorder");
  int fd = open(so, O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_msg(wsh_plugin_check_elf(so, fd, err, sizeof(err)) == 0, "%s", err);
  close(fd);
}
END_TEST

START_TEST(elf_truncated_everywhere) {
  char so[PATH_MAX];
  plugin_so(so, "recorder");
  size_t size = slurp(so, elf_buf, sizeof(elf_buf));
  const ElfW(Ehdr) *e = (const ElfW(Ehdr) *)elf_buf;
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(elf_buf + e->e_phoff);
  /* Cuts: inside the header, inside the program headers, at the start, the
   * middle and just before the end of each loadable segment, and one byte
   * short of the whole file. */
  size_t cuts[64], n = 0;
  size_t fixed[] = {0,
                    3,
                    4,
                    20,
                    sizeof(*e) - 1,
                    sizeof(*e),
                    e->e_phoff + sizeof(*ph) + 1,
                    size - 1};
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    cuts[n++] = fixed[i];
  unsigned nload = 0;
  for (unsigned i = 0; i < e->e_phnum && n + 3 <= 64; i++) {
    if (ph[i].p_type != PT_LOAD || ph[i].p_filesz == 0)
      continue;
    nload++;
    cuts[n++] = ph[i].p_offset + 1;
    cuts[n++] = ph[i].p_offset + ph[i].p_filesz / 2;
    cuts[n++] = ph[i].p_offset + ph[i].p_filesz - 1;
  }
  ck_assert_uint_ge(nload, 2);
  for (size_t i = 0; i < n; i++) {
    size_t cut = cuts[i];
    check_bytes_refused(elf_buf, cut,
                        cut < SELFMAG ? "not an ELF file" : "truncated: ");
  }
  /* The message of a cut inside a segment names it and both sizes. */
  for (unsigned i = 0, k = 0; i < e->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD || !ph[i].p_filesz || ++k != 2)
      continue;
    size_t cut = ph[i].p_offset + 1;
    char want[128];
    snprintf(want, sizeof(want),
             "truncated: loadable segment 2 ends at byte %zu but the file has "
             "%zu bytes",
             (size_t)(ph[i].p_offset + ph[i].p_filesz), cut);
    check_bytes_refused(elf_buf, cut, want);
  }
}
END_TEST

START_TEST(elf_wrong_class_machine_type) {
  char so[PATH_MAX];
  plugin_so(so, "recorder");
  size_t size = slurp(so, elf_buf, sizeof(elf_buf));
  ElfW(Ehdr) *e = (ElfW(Ehdr) *)elf_buf;
  ElfW(Ehdr) saved = *e;
  e->e_ident[EI_CLASS] = ELFCLASS32;
  check_bytes_refused(elf_buf, size, "a 32-bit ELF file");
  *e = saved;
  e->e_ident[EI_DATA] =
      e->e_ident[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
  check_bytes_refused(elf_buf, size, "the other byte order");
  *e = saved;
  e->e_machine = e->e_machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
  check_bytes_refused(elf_buf, size, "built for ELF machine");
  *e = saved;
  e->e_type = ET_EXEC;
  check_bytes_refused(elf_buf, size, "not a shared object (ELF type 2)");
  *e = saved;
  e->e_phoff = size - 8; /* the program headers run past the end */
  check_bytes_refused(elf_buf, size, "truncated: the program header table");
  *e = saved;
  check_bytes_refused(elf_buf, 2, "not an ELF file (2 bytes");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The probe: a child opens the plugin first                                 */
/* ------------------------------------------------------------------------ */

#ifdef WSH_WEBSOCKD
/* Probes plugin `name` with the built websockd; returns the result, err set.
 * Every child is reaped. */
static int probe(const char *name, unsigned timeout_ms, char *err,
                 size_t errlen) {
  char so[PATH_MAX], copy[PATH_MAX];
  plugin_so(so, name);
  tmp_path(copy, "probe-copy.so");
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", so, copy);
  ck_assert_int_eq(system(cmd), 0);
  wsh_probe pr = {.exe = WSH_WEBSOCKD, .timeout_ms = timeout_ms};
  err[0] = '\0';
  int rc = wsh_plugin_probe(&pr, so, copy, err, errlen);
  ck_assert_int_lt(waitpid(-1, NULL, WNOHANG), 0); /* no child, no zombie */
  ck_assert_int_eq(errno, ECHILD);
  if (rc)
    ck_assert_msg(strncmp(err, so, strlen(so)) == 0 && !strchr(err, '\n'),
                  "\"%s\"", err);
  return rc;
}

START_TEST(probe_good_plugin) {
  char err[1024];
  ck_assert_msg(probe("recorder", 30000, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(probe_reports_the_childs_error) {
  char err[1024];
  ck_assert_int_lt(probe("bad_abi", 30000, err, sizeof(err)), 0);
  ck_assert_has(err, "unknown ABI version 99");
  ck_assert_int_lt(probe("missing_dep", 30000, err, sizeof(err)), 0);
  ck_assert_has(err, "websock_no_such_function");
}
END_TEST

START_TEST(probe_crash_in_constructor) {
  char err[1024];
  ck_assert_int_lt(probe("ctor_crash", 30000, err, sizeof(err)), 0);
  ck_assert_has(err, "crashed while being probed: signal 7 (Bus error)");
}
END_TEST

START_TEST(probe_hang_in_constructor) {
  char err[1024];
  ck_assert_int_lt(probe("ctor_hang", 300, err, sizeof(err)), 0);
  ck_assert_has(err, "hung while being probed (no answer within 300 ms");
}
END_TEST

START_TEST(probe_through_the_registry) {
  /* wsh_plugin_open_probed refuses a crashing plugin before this process
   * maps it (without the probe, this test process would die). */
  char so[PATH_MAX], copy[PATH_MAX], err[1024] = "";
  plugin_so(so, "ctor_crash");
  tmp_path(copy, "copy.so");
  wsh_probe pr = {.exe = WSH_WEBSOCKD, .timeout_ms = 30000};
  wsh_plugin *p = NULL;
  ck_assert_int_lt(wsh_plugin_open_probed(so, copy, &pr, &p, err, sizeof(err)),
                   0);
  ck_assert_ptr_null(p);
  ck_assert_has(err, "crashed while being probed");
  ck_assert(!exists(copy));
  plugin_so(so, "recorder");
  ck_assert_msg(wsh_plugin_open_probed(so, copy, &pr, &p, err, sizeof(err)) ==
                    0,
                "%s", err);
  wsh_plugin_close(p);
}
END_TEST
#endif

/* ------------------------------------------------------------------------ */

static Suite *plugin_suite(void) {
  Suite *s = suite_create("plugin");

  TCase *tc = tcase_create("open");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, open_missing_file);
  tcase_add_test(tc, open_directory);
  tcase_add_test(tc, open_not_elf);
  tcase_add_test(tc, open_no_symbol);
  tcase_add_test(tc, open_bad_abi);
  tcase_add_test(tc, open_too_small);
  tcase_add_test(tc, open_null_handle_in);
  tcase_add_test(tc, open_missing_dep);
  tcase_add_test(tc, open_copy_not_writable);
  tcase_add_test(tc, open_recorder);
  tcase_add_test(tc, open_old_abi_small);
  tcase_add_test(tc, close_null);
  tcase_add_test(tc, open_same_path_twice);
  tcase_add_test(tc, reopen_same_copy_path);
  suite_add_tcase(s, tc);

  tc = tcase_create("elf");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, elf_whole_file_passes);
  tcase_add_test(tc, elf_truncated_everywhere);
  tcase_add_test(tc, elf_wrong_class_machine_type);
  suite_add_tcase(s, tc);

#ifdef WSH_WEBSOCKD
  tc = tcase_create("probe");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, probe_good_plugin);
  tcase_add_test(tc, probe_reports_the_childs_error);
  tcase_add_test(tc, probe_crash_in_constructor);
  tcase_add_test(tc, probe_hang_in_constructor);
  tcase_add_test(tc, probe_through_the_registry);
  suite_add_tcase(s, tc);
#endif

  tc = tcase_create("recorder");
  tcase_add_checked_fixture(tc, recorder_setup, recorder_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, recorder_load_refuse);
  tcase_add_test(tc, recorder_upgrade_refuse);
  tcase_add_test(tc, recorder_upgrade_subprotocol);
  tcase_add_test(tc, recorder_init_and_terminate);
  tcase_add_test(tc, recorder_initstop);
  tcase_add_test(tc, recorder_commands);
  tcase_add_test(tc, recorder_stops);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  /* The registry logs each refused route; errors are enough here. */
  wsh_log_set_level(WSH_LOG_ERROR);
  SRunner *sr = srunner_create(plugin_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
