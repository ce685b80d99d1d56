/*
 * route_path.h - a route's `path`: an exact path ("/echo") or a pattern with
 * parameters ("/chat/:room", "/files/" then "*"), how a request path matches
 * it, which of two patterns is the more specific, whether two patterns could
 * match the same path (a conflict when neither is more specific), and the
 * percent-decoding of captured values. Pure: no I/O, no locks; compiled
 * into websockd and into the SDK's test library.
 */
#ifndef WSH_ROUTE_PATH_H
#define WSH_ROUTE_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* The most parameters one pattern may have. */
#define WSH_PATH_MAX_PARAMS 16

enum { WSH_SEG_LITERAL = 0, WSH_SEG_PARAM = 1, WSH_SEG_STAR = 2 };

typedef struct wsh_path_seg {
  int kind;   /* WSH_SEG_* */
  char *text; /* the literal, or the parameter's name ("*" for a star) */
} wsh_path_seg;

typedef struct wsh_path_pattern {
  bool is_pattern; /* false: an exact path, matched by string */
  wsh_path_seg *segs;
  size_t nsegs;
  unsigned nliteral; /* literal segments */
  unsigned nparam;   /* `:name` segments */
  bool star;         /* ends with `*` */
} wsh_path_pattern;

/* One value a match captured: the parameter's name (owned by the pattern)
 * and the raw bytes of the request path (not decoded). */
typedef struct wsh_path_capture {
  const char *name;
  const char *at;
  size_t len;
} wsh_path_capture;

/* Parses a route's path (it starts with '/'). A segment `:name` (name of
 * letters, digits and '_') is a parameter; a last segment `*` takes the
 * rest. Returns 0, or -1 with the cause in err: '*' anywhere else, an empty
 * or bad parameter name, a name given twice, more than WSH_PATH_MAX_PARAMS.
 * On success free the pattern with wsh_path_pattern_free (an exact path
 * holds nothing, but freeing it is harmless). */
int wsh_path_pattern_parse(const char *path, wsh_path_pattern *out, char *err,
                           size_t errlen);
void wsh_path_pattern_free(wsh_path_pattern *p);

/* Matches a request path (raw, without the query) against a pattern (not an
 * exact path). Returns the number of captures written to caps (room for
 * WSH_PATH_MAX_PARAMS + 1), or -1 if it does not match. Literal segments
 * compare byte for byte; `:name` takes one non-empty segment; `*` takes the
 * rest after the preceding '/' (possibly empty; "/files" matches the pattern
 * of "/files/" and "*"
 * with an empty rest, as "/files/" does). */
int wsh_path_match(const wsh_path_pattern *p, const char *path,
                   wsh_path_capture *caps);

/* Orders two patterns by specificity: > 0 if a wins over b, < 0 if b wins,
 * 0 if neither does (then they must not overlap). More literal segments
 * win; then more parameters; then the one without `*`. */
int wsh_path_compare(const wsh_path_pattern *a, const wsh_path_pattern *b);

/* True if some request path matches both patterns; if so, writes one such
 * path to example (when given). */
bool wsh_path_overlap(const wsh_path_pattern *a, const wsh_path_pattern *b,
                      char *example, size_t len);

/* Percent-decodes raw[0..len) into out (room for len + 1 bytes, NUL
 * added). Returns the decoded length, or -1 for a '%' not followed by two
 * hex digits, a decoded NUL, or (segment true: a `:name` value) a decoded
 * '/'. */
long wsh_path_decode(const char *raw, size_t len, bool segment, char *out);

#endif
