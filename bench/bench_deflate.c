/*
 * bench_deflate.c - the cost of permessage-deflate in the protocol layer
 * (host/protocol/deflate.c), no network: CPU time per message and per MB to
 * compress (as the server sends) and to inflate (as it receives; here what we
 * compressed, with the same takeover choice), and the
 * compression ratio, for JSON-like text of 256 B, 4 KiB and 64 KiB and for
 * incompressible binary, with `shared` (no context takeover, the worker's
 * streams) and `dedicated` (context takeover, the connection's own
 * streams) at the default level 6, memLevel 8 and 15-bit windows (a shared
 * message's deflater has the window and hash sized to it: deflate.h). Then the
 * zlib memory a dedicated connection holds per window size, live and after
 * wsh_pmd_trim, measured through the counting allocator. Compression is
 * not forced: binary comes back NOT_SMALLER and is sent as is (ratio 1),
 * which still costs the attempt. `--short` runs a few messages per row, so
 * that the test suite can check that it still works.
 */
#include "protocol/deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL (8 << 20) /* source text and binary to take messages from */

static double cpu_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Chat-like JSON: a few keys, words and numbers, repeated with variation. */
static void fill_json(uint8_t *p, size_t n) {
  static const char *words[] = {"hello", "room",   "general", "ok",   "typing",
                                "alice", "bob",    "message", "seen", "lunch?",
                                "yes",   "deploy", "done",    "ping", "later"};
  uint64_t seed = 42;
  size_t i = 0;

  while (i < n) {
    char item[160];
    int k = snprintf(
        item, sizeof item,
        "{\"type\":\"msg\",\"id\":%u,\"user\":\"%s\",\"room\":\"%s\","
        "\"ts\":17%08u,\"text\":\"%s %s %s\"}\n",
        (unsigned)(rng_next(&seed) % 1000000), words[rng_next(&seed) % 15],
        words[rng_next(&seed) % 15], (unsigned)(rng_next(&seed) % 100000000),
        words[rng_next(&seed) % 15], words[rng_next(&seed) % 15],
        words[rng_next(&seed) % 15]);

    for (int j = 0; j < k && i < n; j++)
      p[i++] = (uint8_t)item[j];
  }
}

static void fill_random(uint8_t *p, size_t n) {
  uint64_t seed = 7;

  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rng_next(&seed) >> 24);
}

struct row {
  double deflate_s, inflate_s; /* CPU seconds in all */
  size_t in_bytes, out_bytes, msgs, inflated;
  int failed;
};

/* Sends `count` messages of `size` bytes taken one after another from
 * pool: all compressed by a server-side state (timed as a whole), then all
 * inflated by a client-side one (the same code a server uses to inflate
 * what a client sends; timed as a whole), then checked. */
static struct row run_row(const uint8_t *pool, size_t size, size_t count,
                          bool dedicated) {
  wsh_pmd_params p = {!dedicated, !dedicated, 15, 15};
  wsh_pmd_config cfg;
  wsh_zmem mem;
  wsh_pmd_shared sh;
  wsh_pmd tx, rx;
  wsh_zbuf z = {0}, out = {0};
  struct row r = {0};
  uint8_t *all = malloc(count * size), *at = all;
  size_t *lens = calloc(count, sizeof *lens); /* 0: sent uncompressed */
  double t0;

  if (!all || !lens) {
    r.failed = 1;
    goto out_free;
  }
  wsh_pmd_config_default(&cfg);
  wsh_zmem_init(&mem);
  wsh_pmd_shared_init(&sh, &mem);
  wsh_pmd_init(&tx, &p, &cfg, dedicated ? NULL : &sh, &mem);
  wsh_pmd_init(&rx, &p, &cfg, NULL, &mem);
  t0 = cpu_now();
  for (size_t i = 0; i < count; i++) {
    const uint8_t *msg = pool + (i * size) % (POOL - size);
    wsh_pmd_result res = wsh_pmd_compress(&tx, msg, size, false, &z);

    if (res == WSH_PMD_OK) {
      memcpy(at, z.data, z.len);
      at += z.len;
      lens[i] = z.len;
    } else if (res != WSH_PMD_NOT_SMALLER) {
      r.failed = 1;
    }
  }
  r.deflate_s = cpu_now() - t0;
  r.msgs = count;
  r.in_bytes = count * size;
  at = all;
  t0 = cpu_now();
  for (size_t i = 0; i < count; i++) {
    if (!lens[i])
      continue;
    if (wsh_pmd_inflate(&rx, at, lens[i], size, &out) != WSH_PMD_OK ||
        out.len != size)
      r.failed = 1;
    at += lens[i];
    r.inflated++;
  }
  r.inflate_s = cpu_now() - t0;
  at = all;
  for (size_t i = 0; i < count; i++) /* compressed bytes, or sent as is */
    r.out_bytes += lens[i] ? lens[i] : size;
  wsh_zbuf_free(&z, &mem);
  wsh_zbuf_free(&out, &mem);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&rx);
  wsh_pmd_shared_free(&sh);
out_free:
  free(all);
  free(lens);
  return r;
}

static void print_row(const char *kind, size_t size, bool dedicated,
                      const struct row *r) {
  size_t inflated = r->inflated;
  double mb = (double)r->in_bytes / 1e6;

  printf("| %s | %zu | %s | %.2f | %.2f | %s%.2f | %.3f |\n", kind, size,
         dedicated ? "dedicated" : "shared",
         r->deflate_s / (double)r->msgs * 1e6, r->deflate_s / mb * 1e3,
         inflated ? "" : "(none) ",
         inflated ? r->inflate_s / (double)inflated * 1e6 : 0.0,
         (double)r->out_bytes / (double)r->in_bytes);
}

/* zlib memory of a dedicated connection, both streams used, then trimmed. */
static void memory_table(void) {
  static uint8_t msg[65536]; /* fills the largest window */
  wsh_pmd_config cfg;

  fill_json(msg, sizeof msg);
  wsh_pmd_config_default(&cfg);
  printf("\n| window bits | dedicated, live (B) | zlib formula (B) | after "
         "trim (B) | shared (B) |\n| ---: | ---: | ---: | ---: | ---: |\n");
  for (int bits = 9; bits <= 15; bits++) {
    wsh_pmd_params p = {false, false, (uint8_t)bits, (uint8_t)bits};
    wsh_zmem mem;
    wsh_pmd c;
    wsh_zbuf z = {0}, out = {0};
    size_t live;

    wsh_zmem_init(&mem);
    wsh_pmd_init(&c, &p, &cfg, NULL, &mem);
    if (wsh_pmd_compress(&c, msg, sizeof msg, false, &z) != WSH_PMD_OK ||
        wsh_pmd_inflate(&c, z.data, z.len, sizeof msg, &out) != WSH_PMD_OK) {
      fprintf(stderr, "bench_deflate: memory row %d failed\n", bits);
      exit(1);
    }
    live = wsh_pmd_conn_bytes(&c);
    wsh_pmd_trim(&c);
    printf("| %d | %zu | %zu | %zu | 0 |\n", bits, live,
           wsh_pmd_formula_bytes(bits, bits, cfg.mem_level),
           wsh_pmd_conn_bytes(&c));
    wsh_zbuf_free(&z, &mem);
    wsh_zbuf_free(&out, &mem);
    wsh_pmd_free(&c);
  }
}

int main(int argc, char **argv) {
  static const size_t text_sizes[] = {256, 4096, 65536};
  static const size_t bin_sizes[] = {4096, 65536};
  bool shrt = argc > 1 && !strcmp(argv[1], "--short");
  size_t budget = shrt ? (1u << 20) : (64u << 20); /* bytes per row */
  uint8_t *text = malloc(POOL), *bin = malloc(POOL);
  int failed = 0;

  if (argc > 1 && !shrt) {
    fprintf(stderr, "usage: %s [--short]\n", argv[0]);
    return 2;
  }
  if (!text || !bin) {
    fprintf(stderr, "bench_deflate: out of memory\n");
    return 1;
  }
  fill_json(text, POOL);
  fill_random(bin, POOL);
  printf("permessage-deflate, level 6, memLevel 8, 15-bit windows; %zu MiB "
         "per row; CPU time\n\n",
         budget >> 20);
  printf("| data | bytes | mode | deflate µs/msg | deflate ms/MB | inflate "
         "µs/msg | compressed ÷ original |\n| --- | ---: | --- | ---: | ---: "
         "| ---: | ---: |\n");
  for (int ded = 0; ded < 2; ded++)
    for (size_t i = 0; i < 3; i++) {
      size_t n = budget / text_sizes[i];
      struct row r = run_row(text, text_sizes[i], n, ded);

      failed |= r.failed;
      print_row("JSON text", text_sizes[i], ded, &r);
    }
  for (int ded = 0; ded < 2; ded++)
    for (size_t i = 0; i < 2; i++) {
      size_t n = budget / bin_sizes[i];
      struct row r = run_row(bin, bin_sizes[i], n, ded);

      failed |= r.failed;
      print_row("random binary", bin_sizes[i], ded, &r);
    }
  memory_table();
  free(text);
  free(bin);
  if (failed) {
    fprintf(stderr, "bench_deflate: a round trip was wrong\n");
    return 1;
  }
  return 0;
}
