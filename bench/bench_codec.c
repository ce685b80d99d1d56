/*
 * bench_codec.c - throughput of the RFC 6455 codec's hot paths on a 16 MiB
 * buffer, best of 5 runs: unmasking, UTF-8 validation (ASCII and mixed
 * text), decoding one big frame (the zero-copy path) and a message of
 * 64 KiB fragments (the reassembly path), and framing 16 KiB messages.
 * memcpy of the same buffer is the yardstick. And copying it in 16 KiB
 * messages to 4 bytes past their source modulo 4 KiB, where a payload
 * staged behind a frame header often lands, with memcpy and with
 * wsh_copy (base/copy.h: glibc's `rep movsb` is slow there on some CPUs).
 * `--short` uses 1 MiB and one run, so that the test suite can check that it
 * still works.
 */
#include "base/copy.h"
#include "protocol/frame.h"
#include "protocol/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAG_SIZE (64 * 1024)
#define MSG_SIZE (16 * 1024)
#define FRAME_OVERHEAD 14 /* longest client header: 10 bytes and a key */

static const uint8_t bench_key[4] = {0x37, 0xfa, 0x21, 0x3d};

struct bench {
  size_t size; /* payload bytes per run */
  int runs;
  uint8_t *data;   /* scratch payload */
  uint8_t *text;   /* mixed UTF-8 text */
  uint8_t *stream; /* client frames, masked */
  uint8_t *work;   /* the stream as the decoder sees it (unmasked in place) */
  size_t stream_len;
  uint8_t *out;         /* framing output */
  volatile size_t sink; /* results, so that nothing is optimised away */
  int failed;
};

typedef void (*bench_fn)(struct bench *b);

static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best throughput of fn over b->runs runs, after one untimed warm-up run,
 * in GB/s of b->size bytes. `setup` (untimed) runs before each. */
static double measure(struct bench *b, bench_fn setup, bench_fn fn) {
  double best = 0;

  if (setup)
    setup(b);
  fn(b);
  for (int r = 0; r < b->runs; r++) {
    double t0, t;

    if (setup)
      setup(b);
    t0 = now();
    fn(b);
    t = now() - t0;
    if (best == 0 || t < best)
      best = t;
  }
  return best > 0 ? (double)b->size / best / 1e9 : 0;
}

static void run_memcpy(struct bench *b) {
  memcpy(b->out, b->data, b->size);
  b->sink += b->out[b->size - 1];
}

/* Copies the buffer in MSG_SIZE messages to out + near, where
 * out + near - data is 4 modulo 4 KiB. */
static size_t near_offset(const struct bench *b) {
  return (4 - (((uintptr_t)b->out - (uintptr_t)b->data) & 4095u)) & 4095u;
}

static void run_copy_near_memcpy(struct bench *b) {
  uint8_t *out = b->out + near_offset(b);
  for (size_t i = 0; i + MSG_SIZE <= b->size; i += MSG_SIZE)
    memcpy(out + i, b->data + i, MSG_SIZE);
  b->sink += out[MSG_SIZE - 1];
}

static void run_copy_near_wsh(struct bench *b) {
  uint8_t *out = b->out + near_offset(b);
  for (size_t i = 0; i + MSG_SIZE <= b->size; i += MSG_SIZE)
    wsh_copy(out + i, b->data + i, MSG_SIZE);
  b->sink += out[MSG_SIZE - 1];
  if (memcmp(out, b->data, b->size - b->size % MSG_SIZE) != 0)
    b->failed = 1;
}

static void run_unmask(struct bench *b) {
  wsh_mask(b->data, b->size, bench_key, 0);
  b->sink += b->data[b->size - 1];
}

static void check_utf8(struct bench *b, const uint8_t *s) {
  wsh_utf8 st = WSH_UTF8_INIT;

  if (wsh_utf8_feed(&st, s, b->size) != b->size || !wsh_utf8_complete(&st))
    b->failed = 1;
}

static void run_utf8_ascii(struct bench *b) {
  check_utf8(b, b->out);
}

static void run_utf8_mixed(struct bench *b) {
  check_utf8(b, b->text);
}

/* Builds b->stream: the payload b->data as client frames of `frag` bytes
 * (one frame if frag >= size). */
static void build_stream(struct bench *b, size_t frag) {
  size_t at = 0, len = 0;

  do {
    size_t n = b->size - at < frag ? b->size - at : frag;
    uint8_t op = at == 0 ? 0x2 : 0x0;
    size_t h = wsh_frame_header(b->stream + len, at + n == b->size, op, n);

    b->stream[len + 1] |= 0x80;
    memcpy(b->stream + len + h, bench_key, 4);
    memcpy(b->stream + len + h + 4, b->data + at, n);
    wsh_mask(b->stream + len + h + 4, n, bench_key, 0);
    len += h + 4 + n;
    at += n;
  } while (at < b->size);
  b->stream_len = len;
}

static void restore_stream(struct bench *b) {
  memcpy(b->work, b->stream, b->stream_len);
}

static void run_decode(struct bench *b) {
  wsh_decoder d;
  wsh_event ev;
  size_t n;

  wsh_decoder_init(&d, 0);
  n = wsh_decode(&d, b->work, b->stream_len, &ev);
  if (n != b->stream_len || ev.type != WSH_EV_MESSAGE || ev.len != b->size ||
      memcmp(ev.data + ev.len - 64, b->data + b->size - 64, 64))
    b->failed = 1;
  b->sink += ev.len;
  wsh_decoder_free(&d);
}

static void run_framing(struct bench *b) {
  uint8_t *o = b->out;

  for (size_t at = 0; at < b->size; at += MSG_SIZE) {
    size_t n = b->size - at < MSG_SIZE ? b->size - at : MSG_SIZE;

    o += wsh_frame_header(o, true, 0x2, n);
    memcpy(o, b->data + at, n);
    o += n;
  }
  b->sink += (size_t)(o - b->out);
}

/* Fills s[0..n) with ASCII prose, or with text mixing 1- to 4-byte code
 * points (padded with ASCII so that it ends on a code point). */
static void fill_text(uint8_t *s, size_t n, bool mixed) {
  static const char ascii[] = "The quick brown fox jumps over the lazy dog. ";
  static const char multi[] = "na\xC3\xAFve caf\xC3\xA9 \xE2\x82\xAC "
                              "\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 "
                              "\xD0\xBF\xD1\x80\xD0\xB8 ";
  const char *u = mixed ? multi : ascii;
  size_t ulen = strlen(u), i = 0;

  for (; i + ulen <= n; i += ulen)
    memcpy(s + i, u, ulen);
  memset(s + i, ' ', n - i);
}

static int setup(struct bench *b, size_t size, int runs) {
  memset(b, 0, sizeof *b);
  b->size = size;
  b->runs = runs;
  b->data = malloc(size);
  b->text = malloc(size);
  /* 4 KiB more: the room run_copy_near_* place their copies past */
  b->out = malloc(size + (size / MSG_SIZE + 1) * WSH_MAX_HEADER + 4096);
  b->stream = malloc(size + (size / FRAG_SIZE + 1) * FRAME_OVERHEAD);
  b->work = malloc(size + (size / FRAG_SIZE + 1) * FRAME_OVERHEAD);
  if (!b->data || !b->text || !b->out || !b->stream || !b->work)
    return -1;
  /* touch every page now, so that no run pays for first-use page faults */
  memset(b->out, 0, size + (size / MSG_SIZE + 1) * WSH_MAX_HEADER + 4096);
  memset(b->stream, 0, size + (size / FRAG_SIZE + 1) * FRAME_OVERHEAD);
  memset(b->work, 0, size + (size / FRAG_SIZE + 1) * FRAME_OVERHEAD);
  for (size_t i = 0; i < size; i++)
    b->data[i] = (uint8_t)(i * 2654435761u >> 13);
  fill_text(b->text, size, true);
  return 0;
}

static void teardown(struct bench *b) {
  free(b->data);
  free(b->text);
  free(b->out);
  free(b->stream);
  free(b->work);
}

static void report(const char *what, double gbps, double ref) {
  printf("%-22s %6.2f GB/s   (memcpy %.2f GB/s)\n", what, gbps, ref);
}

static void run_all(struct bench *b) {
  double ref = measure(b, NULL, run_memcpy);

  printf("%-22s %6.2f GB/s\n", "memcpy", ref);
  report("unmask", measure(b, NULL, run_unmask), ref);
  fill_text(b->out, b->size, false);
  report("utf8 ascii", measure(b, NULL, run_utf8_ascii), ref);
  report("utf8 mixed", measure(b, NULL, run_utf8_mixed), ref);
  build_stream(b, b->size);
  report("decode 1 frame", measure(b, restore_stream, run_decode), ref);
  build_stream(b, FRAG_SIZE);
  report("decode 64K fragments", measure(b, restore_stream, run_decode), ref);
  report("framing 16K messages", measure(b, NULL, run_framing), ref);
  report("16K copies at +4: memcpy", measure(b, NULL, run_copy_near_memcpy),
         ref);
  report("16K copies at +4: wsh_copy", measure(b, NULL, run_copy_near_wsh),
         ref);
}

int main(int argc, char **argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--short") == 0;
  size_t size = (quick ? 1u : 16u) << 20;
  struct bench b;

  if (argc > 1 && !quick) {
    fprintf(stderr, "usage: %s [--short]\n", argv[0]);
    return 2;
  }
  if (setup(&b, size, quick ? 1 : 5) < 0) {
    fprintf(stderr, "bench_codec: out of memory\n");
    return 1;
  }
  printf("buffer %zu MiB, best of %d run(s)\n", size >> 20, b.runs);
  run_all(&b);
  teardown(&b);
  if (b.failed)
    fprintf(stderr, "bench_codec: a codec result was wrong\n");
  return b.failed;
}
