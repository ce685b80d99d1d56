/*
 * peer_lws.c - a peer in websockd's benchmarks: the smallest echo server on
 * Debian's libwebsockets, one thread, answering on any path. A message comes
 * back as it came (text as text, binary as binary) once lws has delivered all
 * of it; a per-session queue holds the echoes that wait for their writeable
 * callback, so that several messages may be in flight. Text is checked as
 * UTF-8 (LWS_SERVER_OPTION_VALIDATE_UTF8), as websockd checks it.
 *
 *   peer_lws PORT [--deflate] | PORT CERT KEY
 *                              listens on 127.0.0.1:PORT until SIGTERM or
 *                              SIGINT; --deflate: with lws's own
 *                              permessage-deflate (RFC 7692) extension, at
 *                              its defaults; with CERT and KEY (PEM) over
 *                              TLS (lws's OpenSSL build, its defaults)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

/* One echo waiting to be written; buf has LWS_PRE bytes of headroom. */
struct msg {
  struct msg *next;
  size_t len;
  int binary;
  unsigned char buf[];
};

/* Per session: the echo queue, and the message being received. */
struct session {
  struct msg *head, *tail;
  unsigned char *rx;
  size_t rx_len, rx_cap;
  int rx_binary, in_msg;
};

static struct lws_context *g_ctx; /* for the signal handler only */
static volatile sig_atomic_t g_stop;
static int g_deflate; /* --deflate: permessage-deflate offered */

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
  if (g_ctx)
    lws_cancel_service(g_ctx);
}

static int enqueue(struct session *s, const void *data, size_t len,
                   int binary) {
  struct msg *m = malloc(sizeof(*m) + LWS_PRE + len);
  if (!m)
    return -1;
  m->next = NULL;
  m->len = len;
  m->binary = binary;
  if (len)
    memcpy(m->buf + LWS_PRE, data, len);
  if (s->tail)
    s->tail->next = m;
  else
    s->head = m;
  s->tail = m;
  return 0;
}

/* Collects the pieces lws hands over until the message is complete. */
static int receive(struct lws *wsi, struct session *s, const void *in,
                   size_t len) {
  /* With permessage-deflate the frame's payload may be all read while its
   * inflated bytes still come in later callbacks: only lws's final flag
   * says the message is whole then. */
  int done = lws_is_final_fragment(wsi) &&
             (g_deflate || !lws_remaining_packet_payload(wsi));
  if (!s->in_msg && done) /* the usual case: the whole message at once */
    return enqueue(s, in, len, lws_frame_is_binary(wsi));
  if (!s->in_msg) {
    s->in_msg = 1;
    s->rx_len = 0;
    s->rx_binary = lws_frame_is_binary(wsi);
  }
  if (s->rx_len + len > s->rx_cap) {
    size_t cap = (s->rx_len + len) * 2;
    unsigned char *p = realloc(s->rx, cap);
    if (!p)
      return -1;
    s->rx = p;
    s->rx_cap = cap;
  }
  memcpy(s->rx + s->rx_len, in, len);
  s->rx_len += len;
  if (!done)
    return 0;
  s->in_msg = 0;
  return enqueue(s, s->rx, s->rx_len, s->rx_binary);
}

/* One lws_write per writeable callback, as lws asks (a second one could
 * collide with a partial write); the next echo waits for the next callback.
 * (Looping while !lws_send_pipe_choked() measured no faster here.) */
static int write_one(struct lws *wsi, struct session *s) {
  struct msg *m = s->head;
  if (!m)
    return 0;
  int n = lws_write(wsi, m->buf + LWS_PRE, m->len,
                    m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
  if (n < (int)m->len)
    return -1;
  s->head = m->next;
  if (!s->head)
    s->tail = NULL;
  free(m);
  if (s->head)
    lws_callback_on_writable(wsi);
  return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len) {
  struct session *s = user;
  if (!s)
    return 0; /* not a WebSocket session: nothing of ours */
  switch (reason) {
  case LWS_CALLBACK_ESTABLISHED:
    memset(s, 0, sizeof(*s));
    /* lws inflates into a 1 KiB buffer by default; bigger messages came
     * back cut or tripped an assertion in lws 4.1.6: 64 KiB (2^16) */
    if (g_deflate)
      lws_set_extension_option(wsi, "permessage-deflate", "rx_buf_size", "16");
    break;
  case LWS_CALLBACK_RECEIVE: {
    int was_empty = s->head == NULL;
    if (receive(wsi, s, in, len) != 0)
      return -1;
    if (was_empty && s->head)
      lws_callback_on_writable(wsi);
    break;
  }
  case LWS_CALLBACK_SERVER_WRITEABLE:
    return write_one(wsi, s);
  case LWS_CALLBACK_CLOSED:
    while (s->head) {
      struct msg *m = s->head;
      s->head = m->next;
      free(m);
    }
    free(s->rx);
    s->rx = NULL;
    break;
  default:
    break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {
    /* rx_buffer_size 64 KiB: lws hands a message over in pieces of at most
     * this (its default, 4 KiB, made a 16 MiB echo take a second); receive()
     * reassembles messages of any size (no limit: 16 MiB echoes work) */
    {"echo", callback, sizeof(struct session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws's built-in permessage-deflate, offered as lws's own examples do. */
static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL}};

int main(int argc, char **argv) {
  int deflate = argc == 3 && strcmp(argv[2], "--deflate") == 0;
  if ((argc != 2 && argc != 4 && !deflate) || atoi(argv[1]) <= 0 ||
      atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: peer_lws PORT [--deflate] | PORT CERT KEY\n");
    return 2;
  }
  lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.port = atoi(argv[1]);
  info.iface = "127.0.0.1";
  info.protocols = protocols;
  info.options =
      LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
  info.pt_serv_buf_size = 65536; /* the service buffer, for big messages */
  if (deflate)
    info.extensions = extensions;
  g_deflate = deflate;
  info.gid = -1;
  info.uid = -1;
  if (argc == 4) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = argv[2];
    info.ssl_private_key_filepath = argv[3];
  }
  g_ctx = lws_create_context(&info);
  if (!g_ctx) {
    fprintf(stderr, "peer_lws: cannot create the lws context\n");
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  printf("peer_lws: listening on 127.0.0.1:%s%s (libwebsockets %s)\n",
         argv[1], argc == 4 ? " (TLS)" : "", lws_get_library_version());
  fflush(stdout);
  while (!g_stop && lws_service(g_ctx, 0) >= 0)
    ;
  lws_context_destroy(g_ctx);
  return 0;
}
