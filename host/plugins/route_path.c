/*
 * route_path.c - route paths with parameters (see route_path.h): parsing
 * "/chat/:room" and "/files/" + "*", matching a request path, ordering two
 * patterns by specificity, finding a path two patterns share, and
 * percent-decoding what a match captured.
 */
#include "plugins/route_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wsh_path_pattern_free(wsh_path_pattern *p) {
  if (!p)
    return;
  for (size_t i = 0; i < p->nsegs; i++)
    free(p->segs[i].text);
  free(p->segs);
  memset(p, 0, sizeof(*p));
}

static bool name_ok(const char *s, size_t len) {
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_'))
      return false;
  }
  return true;
}

/* One segment s[0..len) of the path, the last one if `last`. */
static int parse_seg(wsh_path_pattern *p, const char *s, size_t len, bool last,
                     char *err, size_t errlen) {
  wsh_path_seg seg = {WSH_SEG_LITERAL, NULL};
  if (len == 1 && s[0] == '*' && last) {
    seg.kind = WSH_SEG_STAR;
    s = "*";
  } else if (memchr(s, '*', len)) {
    snprintf(err, errlen, "'*' is allowed only as the whole last segment");
    return -1;
  } else if (len && s[0] == ':') {
    seg.kind = WSH_SEG_PARAM;
    s++;
    len--;
    if (!name_ok(s, len)) {
      snprintf(err, errlen,
               "a parameter needs a name of letters, digits and '_' "
               "(\":%.*s\")",
               (int)len, s);
      return -1;
    }
    for (size_t i = 0; i < p->nsegs; i++)
      if (p->segs[i].kind == WSH_SEG_PARAM && strlen(p->segs[i].text) == len &&
          memcmp(p->segs[i].text, s, len) == 0) {
        snprintf(err, errlen, "parameter \":%.*s\" given twice", (int)len, s);
        return -1;
      }
    if (p->nparam == WSH_PATH_MAX_PARAMS) {
      snprintf(err, errlen, "more than %d parameters", WSH_PATH_MAX_PARAMS);
      return -1;
    }
  }
  if (seg.kind == WSH_SEG_STAR)
    len = 1;
  if (!(seg.text = malloc(len + 1))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  memcpy(seg.text, s, len);
  seg.text[len] = '\0';
  p->segs[p->nsegs++] = seg;
  if (seg.kind == WSH_SEG_LITERAL)
    p->nliteral++;
  else if (seg.kind == WSH_SEG_PARAM)
    p->nparam++;
  else
    p->star = true;
  return 0;
}

int wsh_path_pattern_parse(const char *path, wsh_path_pattern *out, char *err,
                           size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (path[0] != '/') {
    snprintf(err, errlen, "path must start with '/'");
    return -1;
  }
  size_t n = 0;
  for (const char *s = path; *s; s++)
    n += *s == '/';
  if (!(out->segs = calloc(n, sizeof(*out->segs)))) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (const char *s = path + 1;; s++) {
    const char *end = strchr(s, '/');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (parse_seg(out, s, len, !end, err, errlen) != 0) {
      wsh_path_pattern_free(out);
      return -1;
    }
    if (!end)
      break;
    s = end;
  }
  out->is_pattern = out->nparam || out->star;
  if (!out->is_pattern)
    wsh_path_pattern_free(out); /* matched as a string */
  return 0;
}

int wsh_path_match(const wsh_path_pattern *p, const char *path,
                   wsh_path_capture *caps) {
  const char *s = path;
  int n = 0;
  for (size_t i = 0; i < p->nsegs; i++) {
    const wsh_path_seg *seg = &p->segs[i];
    if (seg->kind == WSH_SEG_STAR) {
      const char *rest = *s == '/' ? s + 1 : s;
      caps[n++] = (wsh_path_capture){seg->text, rest, strlen(rest)};
      return n;
    }
    if (*s != '/')
      return -1;
    s++;
    const char *end = strchr(s, '/');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (seg->kind == WSH_SEG_LITERAL) {
      if (strlen(seg->text) != len || memcmp(seg->text, s, len) != 0)
        return -1;
    } else {
      if (len == 0)
        return -1;
      caps[n++] = (wsh_path_capture){seg->text, s, len};
    }
    s += len;
  }
  return *s == '\0' ? n : -1;
}

int wsh_path_compare(const wsh_path_pattern *a, const wsh_path_pattern *b) {
  if (a->nliteral != b->nliteral)
    return a->nliteral > b->nliteral ? 1 : -1;
  if (a->nparam != b->nparam)
    return a->nparam > b->nparam ? 1 : -1;
  if (a->star != b->star)
    return a->star ? -1 : 1;
  return 0;
}

/* Appends "/text" to example[0..len) (cut if it does not fit). */
static void put_seg(char *example, size_t len, size_t *used, const char *text) {
  if (!example || *used >= len)
    return;
  int n = snprintf(example + *used, len - *used, "/%s", text);
  if (n > 0)
    *used += (size_t)n;
}

/* A segment that matches seg: its literal, or a sample value. */
static const char *sample(const wsh_path_seg *seg) {
  return seg->kind == WSH_SEG_LITERAL ? seg->text : "x";
}

bool wsh_path_overlap(const wsh_path_pattern *a, const wsh_path_pattern *b,
                      char *example, size_t len) {
  size_t used = 0;
  if (example && len)
    example[0] = '\0';
  for (size_t i = 0;; i++) {
    const wsh_path_seg *sa = i < a->nsegs ? &a->segs[i] : NULL;
    const wsh_path_seg *sb = i < b->nsegs ? &b->segs[i] : NULL;
    if ((sa && sa->kind == WSH_SEG_STAR) || (sb && sb->kind == WSH_SEG_STAR)) {
      /* The star takes whatever the other one still needs. */
      const wsh_path_pattern *other = sa && sa->kind == WSH_SEG_STAR ? b : a;
      for (size_t j = i; j < other->nsegs; j++)
        if (other->segs[j].kind != WSH_SEG_STAR)
          put_seg(example, len, &used, sample(&other->segs[j]));
      if (example && len && used == 0)
        snprintf(example, len, "/");
      return true;
    }
    if (!sa || !sb) {
      if (example && len && !sa && !sb && used == 0)
        snprintf(example, len, "/");
      return !sa && !sb;
    }
    if (sa->kind == WSH_SEG_LITERAL && sb->kind == WSH_SEG_LITERAL) {
      if (strcmp(sa->text, sb->text) != 0)
        return false;
    } else if (sa->kind == WSH_SEG_LITERAL || sb->kind == WSH_SEG_LITERAL) {
      const wsh_path_seg *lit = sa->kind == WSH_SEG_LITERAL ? sa : sb;
      if (!*lit->text)
        return false; /* a parameter never matches an empty segment */
    }
    put_seg(example, len, &used,
            sa->kind == WSH_SEG_LITERAL ? sa->text : sample(sb));
  }
}

static int hex(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

long wsh_path_decode(const char *raw, size_t len, bool segment, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = raw[i];
    if (ch == '%') {
      if (len - i < 3)
        return -1;
      int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      ch = (char)(hi * 16 + lo);
      i += 2;
    }
    if (ch == '\0' || (segment && ch == '/'))
      return -1;
    out[o++] = ch;
  }
  out[o] = '\0';
  return (long)o;
}
