/*
 * fuzz_negotiate.c - the permessage-deflate negotiation
 * (host/protocol/deflate.c, wsh_pmd_negotiate). The input is one control byte,
 * then header values separated by '\n' (at most 8):
 *
 *   byte 0  bits 0-1: mode (0 off, 1 shared, 2 and 3 dedicated); bits 2-4:
 *           the server window (9 + n % 7); bits 5-7: the client window (8 + n)
 *
 * Each value is copied into a block of exactly its size. Oracles: off
 * declines everything; the answer is that of the first value that is
 * accepted alone (values are independent), and within a value without
 * quotes, that of the first comma-separated element accepted alone; with
 * no quote or backslash anywhere, joining the values with commas changes
 * nothing. An accepted offer gives params in range (windows at most the
 * configured ones, 9 or more for the server; shared means no takeover
 * either way) and a response that is a permessage-deflate element of
 * tokens, reads back as an offer that is accepted, and says exactly what
 * the params say.
 */
#include <stdbool.h>

#include "protocol/deflate.h"
#include "fuzz.h"

#define MAX_VALUES 8

typedef struct answer {
  bool ok;
  wsh_pmd_params p;
  char resp[WSH_PMD_RESPONSE_MAX];
} answer;

/* A NUL-terminated copy of p[0..n), in a block of exactly n + 1 bytes. */
static char *dup_str(const char *p, size_t n) {
  char *c = malloc(n + 1);

  FUZZ_CHECK(c != NULL, "out of memory");
  memcpy(c, p, n);
  c[n] = '\0';
  return c;
}

static answer negotiate(const wsh_pmd_config *cfg, const char *const *v,
                        size_t n) {
  answer a;

  memset(&a, 0, sizeof a);
  a.ok = wsh_pmd_negotiate(cfg, v, n, &a.p, a.resp);
  FUZZ_CHECK(a.ok || a.resp[0] == '\0', "a response when declined");
  return a;
}

static bool same(const answer *a, const answer *b) {
  return a->ok == b->ok && (!a->ok || (!memcmp(&a->p, &b->p, sizeof a->p) &&
                                       !strcmp(a->resp, b->resp)));
}

static bool has(const char *resp, const char *param) {
  return strstr(resp, param) != NULL;
}

/* What an accepted answer must look like. */
static void check_accepted(const wsh_pmd_config *cfg, const answer *a) {
  char want[WSH_PMD_RESPONSE_MAX];
  const char *again[1] = {a->resp};
  wsh_pmd_config ded = *cfg;
  answer b;

  FUZZ_CHECK(cfg->mode != WSH_PMD_OFF, "accepted while off");
  FUZZ_CHECK(a->p.server_window_bits >= 9 &&
                 a->p.server_window_bits <= cfg->server_window_bits,
             "server window");
  FUZZ_CHECK(a->p.client_window_bits >= 8 && a->p.client_window_bits <= 15,
             "client window");
  FUZZ_CHECK(a->p.client_window_bits == 15 ||
                 a->p.client_window_bits <= cfg->client_window_bits,
             "client window over the configured one");
  if (cfg->mode == WSH_PMD_SHARED)
    FUZZ_CHECK(a->p.server_no_context_takeover &&
                   a->p.client_no_context_takeover,
               "shared with takeover");
  FUZZ_CHECK(!strncmp(a->resp, WSH_PMD_TOKEN, strlen(WSH_PMD_TOKEN)),
             "response names the extension");
  for (const char *p = a->resp; *p; p++)
    FUZZ_CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                   strchr("-_;= ", *p),
               "response character");
  FUZZ_CHECK(has(a->resp, "server_no_context_takeover") ==
                 a->p.server_no_context_takeover,
             "response: server_no_context_takeover");
  FUZZ_CHECK(has(a->resp, "client_no_context_takeover") ==
                 a->p.client_no_context_takeover,
             "response: client_no_context_takeover");
  if (has(a->resp, "server_max_window_bits")) {
    snprintf(want, sizeof want, "server_max_window_bits=%d",
             a->p.server_window_bits);
    FUZZ_CHECK(has(a->resp, want), "response: server window");
  } else {
    FUZZ_CHECK(a->p.server_window_bits == 15, "server window not said");
  }
  if (has(a->resp, "client_max_window_bits")) {
    snprintf(want, sizeof want, "client_max_window_bits=%d",
             a->p.client_window_bits);
    FUZZ_CHECK(has(a->resp, want), "response: client window");
  } else {
    FUZZ_CHECK(a->p.client_window_bits == 15, "client window not said");
  }
  /* the response is itself a well-formed offer */
  ded.mode = WSH_PMD_DEDICATED;
  ded.server_window_bits = 15;
  ded.client_window_bits = 15;
  b = negotiate(&ded, again, 1);
  FUZZ_CHECK(b.ok, "the response does not read back");
  FUZZ_CHECK(
      b.p.server_window_bits == a->p.server_window_bits &&
          b.p.server_no_context_takeover == a->p.server_no_context_takeover &&
          b.p.client_no_context_takeover == a->p.client_no_context_takeover,
      "the response reads back differently");
}

/* Within one value without quotes: the first element accepted alone. */
static void check_elements(const wsh_pmd_config *cfg, const char *v,
                           const answer *whole) {
  size_t len = strlen(v);
  answer first = {0};

  if (strchr(v, '"'))
    return;
  for (size_t start = 0; start <= len && !first.ok;) {
    size_t end = start;
    char *elem;
    const char *one[1];

    while (end < len && v[end] != ',')
      end++;
    elem = dup_str(v + start, end - start);
    one[0] = elem;
    first = negotiate(cfg, one, 1);
    free(elem);
    start = end + 1;
  }
  FUZZ_CHECK(same(&first, whole), "elements are not independent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t b0 = size ? data[0] : 0;
  const char *s = (const char *)data + (size ? 1 : 0);
  size_t len = size ? size - 1 : 0, n = 0;
  char *vals[MAX_VALUES];
  const char *cv[MAX_VALUES];
  bool plain = true;
  wsh_pmd_config cfg;
  answer whole, first = {0};

  wsh_pmd_config_default(&cfg);
  cfg.mode = (b0 & 3) == 0   ? WSH_PMD_OFF
             : (b0 & 3) == 1 ? WSH_PMD_SHARED
                             : WSH_PMD_DEDICATED;
  cfg.server_window_bits = (uint8_t)(9 + ((b0 >> 2) & 7) % 7);
  cfg.client_window_bits = (uint8_t)(8 + (b0 >> 5));
  FUZZ_CHECK(wsh_pmd_config_check(&cfg) == NULL, "config");
  for (size_t start = 0; start <= len && n < MAX_VALUES;) {
    const char *nl = memchr(s + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - s) : len;

    vals[n] = dup_str(s + start, end - start);
    cv[n] = vals[n];
    n++;
    start = end + 1;
  }
  for (size_t i = 0; i < len; i++)
    if (s[i] == '"' || s[i] == '\\' || s[i] == '\0')
      plain = false;

  whole = negotiate(&cfg, cv, n);
  if (whole.ok)
    check_accepted(&cfg, &whole);
  for (size_t i = 0; i < n && !first.ok; i++) {
    first = negotiate(&cfg, &cv[i], 1);
    if (cfg.mode != WSH_PMD_OFF)
      check_elements(&cfg, cv[i], &first);
  }
  FUZZ_CHECK(same(&first, &whole), "values are not independent");
  if (plain && n > 1) {
    size_t total = 0;
    char *joined;
    const char *one[1];
    answer j;

    for (size_t i = 0; i < n; i++)
      total += strlen(cv[i]) + 1;
    joined = calloc(1, total + 1);
    FUZZ_CHECK(joined != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
      strcat(joined, cv[i]);
      if (i + 1 < n)
        strcat(joined, ",");
    }
    one[0] = joined;
    j = negotiate(&cfg, one, 1);
    FUZZ_CHECK(same(&j, &whole), "joined values answer differently");
    free(joined);
  }
  for (size_t i = 0; i < n; i++)
    free(vals[i]);
  return 0;
}
