/*
 * console.c - the browser pages: the dev console a plain GET of a route's
 * path gets with --devconsole, and /status. Both are static pages embedded
 * in the binary that load nothing from the network: the console talks to
 * the route over WebSocket, /status polls /metrics. They go only to the
 * addresses console_allow names (loopback by default), with a
 * Content-Security-Policy that lets each page run its own inline script and
 * style (by SHA-256) and connect back to this host, and nothing else.
 */
#include "ops/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ops/console/pages.h"
#include "protocol/realip.h"
#include "websock.h"

#define STATUS_PATH "/status"

struct wsh_console {
  int devconsole;
  int status_page;
  wsh_cidr_list allow;
};

int wsh_console_new(wsh_console **out, const wsh_config *cfg, char *err,
                    size_t errlen) {
  wsh_console *con = calloc(1, sizeof(*con));
  if (!con)
    return WEBSOCK_ENOMEM;
  con->devconsole = cfg->devconsole;
  con->status_page = cfg->status_page;
  const char *allow =
      cfg->console_allow ? cfg->console_allow : WSH_CONSOLE_ALLOW_DEFAULT;
  char why[200];
  int rc = wsh_cidr_list_parse(&con->allow, allow, why, sizeof(why));
  if (rc) {
    snprintf(err, errlen, "console_allow: %s", why);
    wsh_console_free(con);
    return rc;
  }
  *out = con;
  return 0;
}

void wsh_console_free(wsh_console *con) {
  if (!con)
    return;
  wsh_cidr_list_free(&con->allow);
  free(con);
}

/* 'sha256-BASE64' of the first <tag>...</tag> element's text, appended to
 * the CSP being built; nothing if the page has no such element. */
static void csp_hash(char *csp, size_t cap, const char *page, const char *tag) {
  char open[16], close[16];
  snprintf(open, sizeof(open), "<%s>", tag);
  snprintf(close, sizeof(close), "</%s>", tag);
  const char *start = strstr(page, open), *end;
  if (!start || !(end = strstr(start += strlen(open), close)))
    return;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  if (!EVP_Digest(start, (size_t)(end - start), md, &mdlen, EVP_sha256(), NULL))
    return;
  EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
  size_t used = strlen(csp);
  snprintf(csp + used, cap - used, " 'sha256-%s'", b64);
}

/* The policy for one page: its own script and style, connections (fetch,
 * WebSocket) to this host only, nothing else; no framing. */
static void page_csp(char *csp, size_t cap, const char *page) {
  snprintf(csp, cap, "default-src 'none'; script-src");
  csp_hash(csp, cap, page, "script");
  size_t used = strlen(csp);
  snprintf(csp + used, cap - used, "; style-src");
  csp_hash(csp, cap, page, "style");
  used = strlen(csp);
  snprintf(csp + used, cap - used,
           "; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'");
}

static int add_headers(websock_response *resp, const char *page) {
  char csp[512];
  page_csp(csp, sizeof(csp), page);
  static const char *const fixed[][2] = {
      {"Content-Type", "text/html; charset=utf-8"},
      {"Cache-Control", "no-store"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
  };
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    if (websock_response_add_header(resp, fixed[i][0], fixed[i][1]))
      return WEBSOCK_ENOMEM;
  return websock_response_add_header(resp, "Content-Security-Policy", csp);
}

/* A request relayed by a proxy (it says whom for) comes from the proxy's
 * address, often loopback: it is not taken as the proxy's own. */
static bool forwarded(const websock_request *req) {
  return websock_request_header(req, "Forwarded") ||
         websock_request_header(req, "X-Forwarded-For") ||
         websock_request_header(req, "X-Real-IP");
}

static bool allowed(const wsh_console *con, const websock_request *req) {
  struct sockaddr_storage ss;
  socklen_t len;
  return !forwarded(req) &&
         wsh_parse_listen(req->remote_addr, &ss, &len) == 0 &&
         wsh_cidr_list_match(&con->allow, (struct sockaddr *)&ss);
}

static bool get_or_head(const websock_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static int answer_page(websock_response *resp, const unsigned char *page) {
  resp->status = 200;
  if (add_headers(resp, (const char *)page) ||
      websock_response_set_body(resp, (const char *)page))
    return WEBSOCK_ENOMEM;
  return 1;
}

static int answer_status(const wsh_console *con, const websock_request *req,
                         websock_response *resp, const char **why) {
  if (!get_or_head(req)) {
    resp->status = 405;
    *why = "(method not allowed)";
    return websock_response_add_header(resp, "Allow", "GET, HEAD")
               ? WEBSOCK_ENOMEM
               : 1;
  }
  if (!allowed(con, req)) {
    resp->status = 403;
    *why = "(status page: address not in console_allow)";
    return websock_response_set_body(resp, "Forbidden.\n") ? WEBSOCK_ENOMEM : 1;
  }
  *why = "(status page)";
  return answer_page(resp, wsh_page_status);
}

int wsh_console_answer(void *console, const websock_request *req, bool route,
                       websock_response *resp, const char **why) {
  const wsh_console *con = console;
  bool status = (con->status_page || con->devconsole) &&
                strcmp(req->path, STATUS_PATH) == 0;
  bool page = route && con->devconsole && get_or_head(req) && allowed(con, req);
  *why = NULL;
  if (!status && !page)
    return 0;
  wsh_response_init(resp, req);
  int rc;
  if (status) {
    rc = answer_status(con, req, resp, why);
  } else {
    *why = "(dev console)";
    rc = answer_page(resp, wsh_page_console);
  }
  if (rc < 0)
    wsh_response_free(resp);
  return rc;
}
