"""RFC 6455 conformance of websockd, proved over real TCP connections.

Raw sockets only (no WebSocket library would send the violations). One
daemon per test class, started with --close-timeout-ms 1000: class
Conformance serves the shipped echo plugin on /echo (max_message_size 4 MiB)
and /small (max_message_size 65536); class ServerInitiatedClose serves the
recorder test plugin on /rec (skipped if tests/plugins/recorder.so is not
built).

Every violation case asserts that (1) the server sends a close frame with the
exact code, and no frame after it (the only frame that follows the violation
is the close), and (2) after the client answers with a masked close frame,
the server closes the TCP connection (EOF or reset) within 3 s while the
client still has its side open (the server closes first).

Every valid data case is replayed, on one connection, with the client's bytes
split in two at every offset (up to 300 bytes; for longer input: every offset
in each frame header and in the first and last 16 payload bytes of each frame,
plus the middle of long payloads; for 100-fragment messages all of this for
the first and last three frames and the header edges of the others), each
piece sent with TCP_NODELAY and a 1 ms pause so that it arrives separately,
and once byte by byte when every frame is at most ~300 bytes. The violation
cases in VIOLATION_SPLITS are replayed the same way (a fresh connection per
split, and once byte by byte) and must give the same close code.

Generated names: test_violation_NAME and test_split_violation_NAME come from
VIOLATIONS, test_data_NAME and test_split_NAME from DATA, and
test_close_valid_CODE from VALID_CLOSE_CODES. KNOWN_FAILURES lists websockd
bugs (each must still fail); it is empty: every case passes.

RFC 6455 rule, then the test methods proving it
-----------------------------------------------
§5.1, §5.3: a client frame must be masked; unmasked -> 1002.
    test_violation_unmasked_text, test_violation_unmasked_binary,
    test_violation_unmasked_empty_text, test_violation_unmasked_ping,
    test_violation_unmasked_close, test_violation_unmasked_continuation,
    test_violation_unmasked_then_valid, test_split_violation_unmasked_text,
    test_split_violation_unmasked_continuation
§5.2: RSV1-3 must be 0 when no extension is negotiated -> 1002.
    test_violation_rsv1_text, test_violation_rsv2_text,
    test_violation_rsv3_text, test_violation_rsvall_text,
    test_violation_rsv1_ping, test_violation_rsv2_ping,
    test_violation_rsv3_ping, test_violation_rsv1_binary,
    test_violation_rsv1_pong, test_violation_rsv1_close,
    test_violation_rsv1_first_fragment, test_violation_rsv1_continuation,
    test_violation_rsv1_text_then_valid, test_violation_valid_then_rsv1,
    test_split_violation_rsv1_text, test_split_violation_rsv1_ping,
    test_split_violation_valid_then_rsv1
§5.2: reserved opcodes 0x3-0x7 and 0xB-0xF -> 1002.
    test_violation_opcode_3 .. test_violation_opcode_7,
    test_violation_opcode_b .. test_violation_opcode_f,
    test_violation_opcode_3_fin0, test_violation_opcode_b_in_message,
    test_violation_big_valid_then_opcode_5, test_split_violation_opcode_3,
    test_split_violation_opcode_f, test_split_violation_opcode_b_in_message
§5.2: a 64-bit length must have its most significant bit clear -> 1002, on
the header alone (no payload awaited or allocated).
    test_violation_len64_msb, test_violation_len64_all_ones,
    test_split_violation_len64_msb
§5.5: control frames carry at most 125 bytes -> 1002.
    test_violation_ping_len126, test_violation_pong_len126,
    test_violation_close_len126, test_violation_ping_len64_encoding,
    test_split_violation_ping_len126, test_split_violation_close_len126
§5.5: control frames must not be fragmented -> 1002.
    test_violation_ping_fin0, test_violation_pong_fin0,
    test_violation_close_fin0, test_violation_ping_fin0_in_message,
    test_split_violation_ping_fin0
§5.4: a continuation needs an open message; a text or binary frame may not
start inside one -> 1002.
    test_violation_continuation_first, test_violation_continuation_fin0_first,
    test_violation_continuation_after_message, test_violation_text_in_text,
    test_violation_binary_in_text, test_violation_text_in_binary,
    test_violation_binary_in_binary, test_split_violation_continuation_first,
    test_split_violation_continuation_after_message,
    test_split_violation_text_in_text, test_split_violation_binary_in_text
§5.4, §5.5: control frames between fragments are handled at once (a ping is
answered before the message completes; an unsolicited pong is ignored).
    test_data_ping_between_fragments, test_data_controls_between_fragments,
    test_data_ping_inside_split_code_point,
    test_data_pings_between_large_binary_fragments,
    test_data_small_exact_limit_with_pings (each also as test_split_*)
§5.4, §5.6: fragments are reassembled exactly, with 1, 2, 10 and 100
fragments, empty first, middle and last fragments, text and binary; an empty
message comes back as an empty text frame.
    test_data_text_hello, test_data_text_empty, test_data_binary_empty,
    test_data_binary_all_bytes, test_data_frag_text_1_plus_empty_final,
    test_data_frag_text_2, test_data_frag_binary_2, test_data_frag_text_2_empty,
    test_data_frag_binary_2_empty,
    test_data_frag_text_10_empty_first_middle_last,
    test_data_frag_binary_10_empty_first_middle_last,
    test_data_frag_binary_100, test_data_frag_text_100_code_points_cut,
    test_data_frag_binary_3_large, test_data_fragmented_single_fragmented,
    test_data_pipelined_messages (each also as test_split_*)
§5.2: 7-, 16- and 64-bit payload lengths are read exactly.
    test_data_text_len125, test_data_text_len126, test_data_text_len127,
    test_data_text_len65535, test_data_text_len65536,
    test_data_text_len200000, and the same for test_data_binary_len*
    (each also as test_split_*)
§7.4.1 (1009), §10.4: a message over the route's limit is closed with 1009
as soon as a frame header shows it, before any payload is sent; exactly the
limit is accepted; control frames do not count; each message counts anew.
    test_violation_small_len_2p63_minus_1, test_violation_small_len_65537,
    test_violation_small_len_65537_binary, test_violation_echo_len_2p62,
    test_violation_small_first_fragment_over,
    test_violation_small_fragment_over, test_violation_small_one_byte_over,
    test_too_big_when_crossing_fragment_header_arrives,
    test_split_violation_small_len_2p63_minus_1,
    test_split_violation_small_len_65537,
    test_split_violation_small_first_fragment_over,
    test_data_small_exact_limit_single, test_data_small_exact_limit_fragmented,
    test_data_small_exact_limit_with_pings,
    test_data_small_two_fragmented_messages_over_limit_together
§5.6, §8.1: text must be valid UTF-8, checked across fragments and failing
fast at the first bad byte -> 1007.
    test_violation_utf8_* (overlong C0 AF, C1 BF, E0 80 AF, E0 9F BF,
    F0 80 80 AF, F0 8F BF BF; surrogates ED A0 80, ED BF BF and a pair;
    above U+10FFFF F4 90 80 80, F7; lead bytes F5..FF (lead_f5 .. lead_ff),
    FE, FF; stray continuation bytes; 2-, 3- and 4-byte sequences cut at the
    end of the message, also after fragments and before an empty final
    fragment; a code point split across fragments and invalid),
    test_fail_fast_bad_byte_in_first_fragment,
    test_fail_fast_bad_byte_in_third_of_ten_fragments,
    test_fail_fast_split_code_point_invalid,
    test_fail_fast_single_frame_partial_payload,
    test_fail_fast_1mib_fragmented, test_fail_fast_1mib_single_frame,
    test_split_violation_utf8_split_invalid,
    test_split_violation_utf8_overlong_e0, test_split_violation_utf8_surrogate,
    test_split_violation_utf8_cut_4_byte_at_end,
    test_split_violation_utf8_above_10ffff,
    test_split_violation_utf8_cut_at_end_empty_final.
Valid code points split across fragments are accepted:
    test_data_utf8_split_2byte_at_1, test_data_utf8_split_3byte_at_1,
    test_data_utf8_split_3byte_at_2, test_data_utf8_split_4byte_at_1,
    test_data_utf8_split_4byte_at_2, test_data_utf8_split_4byte_at_3,
    test_data_utf8_split_4byte_over_4_fragments (each also as test_split_*)
§5.5.1, §7.4: a close payload of one byte -> 1002; an invalid code (0, 999,
1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535) -> 1002; a
reason that is not UTF-8 -> 1007.
    test_violation_close_len1, test_violation_close_code_0 ..
    test_violation_close_code_65535, test_violation_close_code_1005_with_reason,
    test_violation_close_bad_code_in_message,
    test_violation_close_reason_bad_utf8, test_violation_close_reason_overlong,
    test_violation_close_reason_cut, test_violation_close_reason_surrogate,
    test_split_violation_close_len1, test_split_violation_close_code_0,
    test_split_violation_close_code_1005,
    test_split_violation_close_reason_bad_utf8
§5.5.1, §7.4.1: a valid close is answered with the same code (an empty close
with an empty close, or 1000), then the server closes TCP first.
    test_close_valid_1000 .. test_close_valid_4999 (1000-1003, 1007-1014,
    3000, 3999, 4000, 4999), test_close_valid_reason,
    test_close_max_length_reason, test_close_empty,
    test_close_during_fragmented_message, test_ping_then_close_same_segment,
    test_close_split_every_offset
§5.5.1: after a close nothing but the close handshake is sent: client data
after its close is ignored, and nothing follows the server's close.
    test_close_then_data_ignored_same_segment,
    test_close_then_data_ignored_later, test_nothing_after_close,
    test_violation_rsv1_text_then_valid, test_violation_unmasked_then_valid,
    test_violation_utf8_invalid_then_valid, and every test_violation_*
§5.5.2, §5.5.3: a ping is answered with a pong carrying the same payload; an
unsolicited pong is ignored.
    test_data_ping_0, test_data_ping_1, test_data_ping_125,
    test_data_ping_binary, test_data_unsolicited_pong_then_echo,
    test_data_unsolicited_empty_pong_then_echo (each also as test_split_*)
§5.5.1, §7.1.1: a close started by the server (recorder "stop",
"close:CODE:TEXT") carries its code and reason; the server then waits for the
peer's close and closes TCP as soon as it comes, or cuts a silent peer off
after the close timeout (asserted within 1 s + 2 s); it answers nothing after
its close.
    ServerInitiatedClose.test_client_answers_gets_eof_promptly,
    ServerInitiatedClose.test_client_never_answers_is_cut_off,
    ServerInitiatedClose.test_custom_code_and_reason,
    ServerInitiatedClose.test_data_after_server_close_gets_nothing

The client reader sets TCP_QUICKACK before each recv: websockd does not set
TCP_NODELAY and libevent writes at most 16 KiB per call, so without it the
tail of every echo over 16 KiB waits ~40 ms for the client's delayed ACK.
"""

import os
import socket
import time
import unittest

import harness
from harness import mask_frame

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

CLOSE_TIMEOUT_MS = 1000
DAEMON_ARGS = ["--close-timeout-ms", str(CLOSE_TIMEOUT_MS)]
READ_TIMEOUT = 5.0       # any expected frame
EOF_TIMEOUT = 3.0        # server closes TCP after the closing handshake
FAIL_FAST_TIMEOUT = 3.0  # a close that must come before the rest is sent
PAUSE = 0.001            # between the pieces of a split replay
BYTE_PAUSE = 0.0003      # between bytes of a byte-by-byte replay
FULL_SPLIT_LIMIT = 300   # replay every offset up to this many bytes
BYTEWISE_FRAME_LIMIT = 300

ECHO_MAX = 4 * 1024 * 1024
SMALL_MAX = 65536

# Known websockd bugs: test name -> what goes wrong. Each one is decorated
# with unittest.expectedFailure, so it must still fail (an unexpected success
# fails the run, and the entry has to go).
KNOWN_FAILURES = {}

# -- building client frames --------------------------------------------------

_KEYS = [b"\x37\xfa\x21\x3d", b"\x00\x00\x00\x00", b"\xff\x80\x01\x7f",
         b"\xa5\x5a\xc3\x3c"]
_key_i = [0]


def _next_key():
    _key_i[0] += 1
    return _KEYS[_key_i[0] % len(_KEYS)]


def F(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame (masked with a rotating key unless mask=False)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return mask_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask,
                      key=_next_key(), length=length)


def header_only(opcode, length, fin=True):
    """The header (with masking key) of a frame announcing `length` bytes."""
    return mask_frame(opcode, b"", fin=fin, key=_next_key(), length=length)


def frame64(opcode, payload, fin=True):
    """A frame whose length uses the 64-bit form whatever its size."""
    key = _next_key()
    head = bytes([(0x80 if fin else 0) | opcode, 0x80 | 127])
    head += len(payload).to_bytes(8, "big") + key
    return head + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return code.to_bytes(2, "big") + reason


def C(code, reason=b""):
    """A masked close frame."""
    return F(OP_CLOSE, close_payload(code, reason))


def fragments(opcode, parts):
    """A message as one frame per part: the first with `opcode`, the rest
    continuations, FIN on the last."""
    out = []
    for i, part in enumerate(parts):
        out.append(F(opcode if i == 0 else OP_CONT, part, fin=i == len(parts) - 1))
    return out


def text_bytes(n, seed=0):
    """Exactly n bytes of valid UTF-8 text with 1- to 4-byte code points."""
    unit = ("Grüße, €uro 😀 κόσμε %d; " % seed).encode()
    data = (unit * (n // len(unit) + 1))[:n]
    # Cut back to a code point boundary, then pad with ASCII.
    cut = n
    while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
        cut -= 1
    if cut > 0 and data[cut - 1] >= 0xC0:
        cut -= 1
    data = data[:cut] + b"x" * (n - cut)
    data.decode("utf-8")
    return data


def binary_bytes(n, seed=0):
    return bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(n))


def frame_header_len(frame):
    n = frame[1] & 0x7F
    ext = 2 if n == 126 else 8 if n == 127 else 0
    return 2 + ext + (4 if frame[1] & 0x80 else 0)


def split_offsets(frames):
    """Offsets at which to split the concatenation of `frames` in two."""
    total = sum(len(f) for f in frames)
    if total <= FULL_SPLIT_LIMIT:
        return list(range(1, total))
    offs = set()
    pos = 0
    many = len(frames) > 10
    for i, f in enumerate(frames):
        hl = frame_header_len(f)
        plen = len(f) - hl
        if not many or i < 3 or i >= len(frames) - 3:
            offs.update(range(pos, pos + hl + min(16, plen) + 1))
            offs.update(range(pos + len(f) - min(16, plen), pos + len(f) + 1))
            if plen > 64:
                offs.add(pos + hl + plen // 2)
        else:
            offs.update((pos, pos + 1, pos + hl - 1, pos + hl, pos + hl + 1))
        pos += len(f)
    return sorted(o for o in offs if 0 < o < total)


def describe(events):
    """A short description of a list of (opcode, payload) events."""
    out = []
    for op, payload in events:
        if len(payload) <= 40:
            out.append("(0x%X, %r)" % (op, payload))
        else:
            out.append("(0x%X, %d bytes %r...%r)" % (op, len(payload), payload[:12],
                                                     payload[-12:]))
    return "[" + ", ".join(out) + "]"


def close_code(payload):
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


# -- reading server frames -----------------------------------------------------

def _check_utf8(data, what):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError("%s is not UTF-8 (%s): %r" % (what, e, data[:64]))


class Reader(harness.FrameReader):
    """FrameReader that checks what a server may send and reassembles
    fragmented server messages; events are (opcode, payload)."""

    def __init__(self, sock, initial=b""):
        super().__init__(sock, initial)
        self._msg = None

    def _need(self, n):
        # websockd does not set TCP_NODELAY and libevent writes at most 16 KiB
        # at a time, so the tail of a large message waits (Nagle) for our
        # delayed ACK, about 40 ms. Acknowledge at once to keep the suite fast.
        while len(self.buf) < n:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %d of %d bytes"
                               % (len(self.buf), n))
            self.buf += chunk

    def event(self):
        while True:
            self._need(2)
            if self.buf[0] & 0x70:
                raise AssertionError("server frame with RSV bits set: %r" % self.buf[:2])
            fin, op, payload = self.frame()
            if op & 0x8:
                if op not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise AssertionError("server sent reserved opcode 0x%X" % op)
                if not fin or len(payload) > 125:
                    raise AssertionError("server sent a bad control frame")
                if op == OP_CLOSE:
                    if len(payload) == 1:
                        raise AssertionError("server close payload of one byte")
                    _check_utf8(payload[2:], "server close reason")
                return op, payload
            if op == OP_CONT:
                if self._msg is None:
                    raise AssertionError("server continuation without a message")
                self._msg[1].append(payload)
            elif op in (OP_TEXT, OP_BINARY):
                if self._msg is not None:
                    raise AssertionError("server started a message inside another")
                self._msg = (op, [payload])
            else:
                raise AssertionError("server sent reserved opcode 0x%X" % op)
            if fin:
                m_op, parts = self._msg
                self._msg = None
                data = b"".join(parts)
                if m_op == OP_TEXT:
                    _check_utf8(data, "server text message")
                return m_op, data


# -- the checks ------------------------------------------------------------------

class ConformanceCase(unittest.TestCase):
    """Starts one daemon per class; helpers for raw connections."""

    ROUTES = {}
    daemon = None

    @classmethod
    def setUpClass(cls):
        d = harness.Daemon(cls.ROUTES, args=DAEMON_ARGS)
        try:
            d.start()
        except BaseException:
            d.__exit__(None, None, None)
            raise
        cls.daemon = d

    @classmethod
    def tearDownClass(cls):
        if cls.daemon is not None:
            cls.daemon.__exit__(None, None, None)
            cls.daemon = None

    # -- connections -------------------------------------------------------------
    def open(self, path="/echo"):
        s, r = harness.open_raw(self.daemon, path)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(READ_TIMEOUT)
        return s, Reader(s, r.buf)

    @staticmethod
    def send_split(sock, wire, offsets=(), pause=PAUSE, tolerate_close=False):
        """Sends wire in pieces cut at `offsets`, pausing between them. With
        tolerate_close, stops quietly if the server has closed."""
        prev = 0
        try:
            for off in list(offsets) + [len(wire)]:
                if off > prev:
                    sock.sendall(wire[prev:off])
                    if off < len(wire) and pause:
                        time.sleep(pause)
                    prev = off
        except (BrokenPipeError, ConnectionResetError):
            if not tolerate_close:
                raise

    def events(self, reader, count, context, timeout=READ_TIMEOUT):
        got = []
        reader.sock.settimeout(timeout)
        try:
            while len(got) < count:
                got.append(reader.event())
        except (socket.timeout, EOFError, ConnectionResetError) as e:
            self.fail("%s: after %s, waiting for %d more event(s): %s: %s"
                      % (context, describe(got), count - len(got),
                         type(e).__name__, e))
        return got

    def until_close(self, reader, context, timeout=READ_TIMEOUT, limit=0):
        """Events up to and including the first close frame, which must come
        after at most `limit` other events."""
        got = []
        reader.sock.settimeout(timeout)
        try:
            while len(got) <= limit:
                ev = reader.event()
                got.append(ev)
                if ev[0] == OP_CLOSE:
                    return got
        except (socket.timeout, EOFError, ConnectionResetError) as e:
            self.fail("%s: no close frame; got %s, then %s: %s"
                      % (context, describe(got), type(e).__name__, e))
        self.fail("%s: expected a close frame after at most %d other frame(s), "
                  "got %s" % (context, limit, describe(got)))

    def assert_events(self, got, expected, context):
        if got == list(expected):
            return
        self.fail("%s:\n  expected %s\n  got      %s"
                  % (context, describe(expected), describe(got)))

    def expect_server_eof(self, sock, reader, context, answer=None):
        """Optionally sends our close answer; then the server must close the
        TCP connection within EOF_TIMEOUT, sending nothing more."""
        if answer is not None:
            try:
                sock.sendall(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass
        t0 = time.monotonic()
        eof = reader.at_eof(EOF_TIMEOUT)
        self.assertTrue(eof, "%s: server did not close the TCP connection within "
                        "%.0f s of the closing handshake" % (context, EOF_TIMEOUT))
        self.assertEqual(reader.buf, b"", "%s: server sent bytes after its close "
                         "frame: %r" % (context, reader.buf[:64]))
        return time.monotonic() - t0

    def check_violation(self, wire, code, path="/echo", before=(), offsets=(),
                        pause=PAUSE, context="violation"):
        """Sends wire; the server must send `before`, then a close with
        `code` and nothing else, and close first once we answer."""
        s, r = self.open(path)
        with s:
            self.send_split(s, wire, offsets, pause, tolerate_close=True)
            got = self.until_close(r, context, limit=len(before))
            self.assert_events(got[:-1], before, context + ": frames before the close")
            payload = got[-1][1]
            self.assertEqual(close_code(payload), code,
                             "%s: close payload %r, expected code %d"
                             % (context, payload, code))
            self.expect_server_eof(s, r, context, answer=C(code))

    def check_data(self, path, frames, expected, splits, context="data"):
        """On one connection, sends the frames once per split (a list of
        offsets); each time the server must answer exactly `expected`."""
        wire = b"".join(frames)
        s, r = self.open(path)
        with s:
            for offsets, pause in splits:
                what = "%s, split at %s" % (context, _short(offsets))
                self.send_split(s, wire, offsets, pause)
                got = self.events(r, len(expected), what)
                self.assert_events(got, expected, what)
            s.sendall(C(1000))
            got = self.until_close(r, context + ": closing")
            self.assert_events(got, [(OP_CLOSE, close_payload(1000))],
                               context + ": closing (nothing else may come back)")
            self.expect_server_eof(s, r, context)


def _short(offsets):
    offsets = list(offsets)
    if len(offsets) > 6:
        return "%d offsets (%s..%s)" % (len(offsets), offsets[0], offsets[-1])
    return str(offsets) if offsets else "nothing (one piece)"


# -- the tables --------------------------------------------------------------------

# name -> (path, list of frames, close code, events expected before the close)
VIOLATIONS = {}


def V(name, frames, code, path="/echo", before=()):
    if isinstance(frames, bytes):
        frames = [frames]
    assert name not in VIOLATIONS, name
    VIOLATIONS[name] = (path, b"".join(frames), code, list(before))


# §5.1/§5.3 masking
V("unmasked_text", F(OP_TEXT, "hello", mask=False), 1002)
V("unmasked_binary", F(OP_BINARY, b"\x00\x01", mask=False), 1002)
V("unmasked_empty_text", F(OP_TEXT, b"", mask=False), 1002)
V("unmasked_ping", F(OP_PING, b"p", mask=False), 1002)
V("unmasked_close", F(OP_CLOSE, close_payload(1000), mask=False), 1002)
V("unmasked_continuation", [F(OP_TEXT, "a", fin=False), F(OP_CONT, "b", mask=False)], 1002)
# §5.2 reserved bits
V("rsv1_text", F(OP_TEXT, "hello", rsv=4), 1002)
V("rsv2_text", F(OP_TEXT, "hello", rsv=2), 1002)
V("rsv3_text", F(OP_TEXT, "hello", rsv=1), 1002)
V("rsvall_text", F(OP_TEXT, "hello", rsv=7), 1002)
V("rsv1_ping", F(OP_PING, "p", rsv=4), 1002)
V("rsv2_ping", F(OP_PING, "p", rsv=2), 1002)
V("rsv3_ping", F(OP_PING, "p", rsv=1), 1002)
V("rsv1_binary", F(OP_BINARY, b"\x01", rsv=4), 1002)
V("rsv1_pong", F(OP_PONG, b"", rsv=4), 1002)
V("rsv1_close", F(OP_CLOSE, close_payload(1000), rsv=4), 1002)
V("rsv1_first_fragment", [F(OP_TEXT, "a", fin=False, rsv=4), F(OP_CONT, "b")], 1002)
V("rsv1_continuation", [F(OP_TEXT, "a", fin=False), F(OP_CONT, "b", rsv=4)], 1002)
# §5.2 reserved opcodes
for _op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    V("opcode_%x" % _op, F(_op, b"xy"), 1002)
V("opcode_3_fin0", [F(3, b"x", fin=False), F(OP_CONT, b"y")], 1002)
V("opcode_b_in_message", [F(OP_TEXT, "a", fin=False), F(0xB, b""), F(OP_CONT, "b")], 1002)
# §5.5 control frames: at most 125 bytes, never fragmented
V("ping_len126", F(OP_PING, b"p" * 126), 1002)
V("pong_len126", F(OP_PONG, b"p" * 126), 1002)
V("close_len126", F(OP_CLOSE, close_payload(1000, b"r" * 124)), 1002)
V("ping_len64_encoding", frame64(OP_PING, b"hello"), 1002)
V("ping_fin0", [F(OP_PING, b"p", fin=False), F(OP_CONT, b"q")], 1002)
V("pong_fin0", F(OP_PONG, b"p", fin=False), 1002)
V("close_fin0", F(OP_CLOSE, close_payload(1000), fin=False), 1002)
V("ping_fin0_in_message", [F(OP_TEXT, "a", fin=False), F(OP_PING, b"p", fin=False),
                           F(OP_CONT, "b")], 1002)
# §5.4 fragmentation
V("continuation_first", F(OP_CONT, "abc"), 1002)
V("continuation_fin0_first", [F(OP_CONT, "abc", fin=False), F(OP_CONT, "d")], 1002)
V("continuation_after_message", [F(OP_TEXT, "a"), F(OP_CONT, "b")], 1002,
  before=[(OP_TEXT, b"a")])
V("text_in_text", [F(OP_TEXT, "a", fin=False), F(OP_TEXT, "b")], 1002)
V("binary_in_text", [F(OP_TEXT, "a", fin=False), F(OP_BINARY, b"b")], 1002)
V("text_in_binary", [F(OP_BINARY, b"a", fin=False), F(OP_TEXT, "b")], 1002)
V("binary_in_binary", [F(OP_BINARY, b"a", fin=False), F(OP_CONT, b"b", fin=False),
                       F(OP_BINARY, b"c")], 1002)
# §5.2 64-bit length with the most significant bit set (header only: the
# server must not wait for, or allocate, the payload)
V("len64_msb", header_only(OP_BINARY, 1 << 63), 1002)
V("len64_all_ones", header_only(OP_TEXT, (1 << 64) - 1), 1002)
# §10.4 limits: 1009 as soon as a header shows the message is too big (only
# the header is sent, so the close must come before any payload)
V("small_len_2p63_minus_1", header_only(OP_BINARY, (1 << 63) - 1), 1009, path="/small")
V("small_len_65537", header_only(OP_TEXT, SMALL_MAX + 1), 1009, path="/small")
V("small_len_65537_binary", header_only(OP_BINARY, SMALL_MAX + 1), 1009, path="/small")
V("echo_len_2p62", header_only(OP_BINARY, 1 << 62), 1009)
V("small_fragment_over", [F(OP_BINARY, binary_bytes(30000), fin=False),
                          F(OP_CONT, binary_bytes(30000, 1), fin=False),
                          header_only(OP_CONT, 30000)], 1009, path="/small")
V("small_first_fragment_over", header_only(OP_TEXT, SMALL_MAX + 1, fin=False), 1009,
  path="/small")
V("small_one_byte_over", [F(OP_TEXT, text_bytes(SMALL_MAX), fin=False),
                          header_only(OP_CONT, 1)], 1009, path="/small")
# §5.6/§8.1 UTF-8 in text messages
_BAD_UTF8 = {
    "ff": b"\xff", "fe": b"\xfe",
    "overlong_c0": b"\xc0\xaf", "overlong_c1": b"\xc1\xbf",
    "overlong_e0": b"\xe0\x80\xaf", "overlong_e0_9f": b"\xe0\x9f\xbf",
    "overlong_f0": b"\xf0\x80\x80\xaf", "overlong_f0_8f": b"\xf0\x8f\xbf\xbf",
    "surrogate": b"\xed\xa0\x80", "surrogate_high": b"\xed\xbf\xbf",
    "surrogate_pair": b"\xed\xa0\xbd\xed\xb8\x80",
    "above_10ffff": b"\xf4\x90\x80\x80", "f7": b"\xf7\xbf\xbf\xbf",
    "lone_continuation_80": b"\x80", "lone_continuation_bf": b"\xbf",
    "two_byte_bad_continuation": b"\xc3\x28",
    "cut_2_byte_at_end": b"ok\xc3", "cut_3_byte_at_end": b"ok\xe2\x82",
    "cut_4_byte_at_end": b"ok\xf0\x9f\x98",
    "bad_in_ascii": b"hello\xffworld",
    "bad_after_valid": "κόσμε".encode() + b"\xed\xa0\x80edited",
}
for _b in range(0xF5, 0x100):
    _BAD_UTF8["lead_%x" % _b] = b"a" + bytes([_b]) + b"\x80\x80\x80"
for _name, _bytes in _BAD_UTF8.items():
    V("utf8_" + _name, F(OP_TEXT, _bytes), 1007)
V("utf8_split_invalid", [F(OP_TEXT, b"a\xe2\x82", fin=False), F(OP_CONT, b"\x28b")], 1007)
V("utf8_split_invalid_4byte", [F(OP_TEXT, b"\xf0\x9f", fin=False),
                               F(OP_CONT, b"\x98", fin=False), F(OP_CONT, b"A")], 1007)
V("utf8_cut_4_byte_at_end_fragmented", [F(OP_TEXT, b"\xf0\x9f", fin=False),
                                        F(OP_CONT, b"\x98")], 1007)
V("utf8_cut_at_end_empty_final", [F(OP_TEXT, b"ab\xf0\x9f\x98", fin=False),
                                  F(OP_CONT, b"")], 1007)
V("utf8_bad_in_second_fragment", [F(OP_TEXT, "fine", fin=False),
                                  F(OP_CONT, b"\xed\xbf\xbf", fin=False),
                                  F(OP_CONT, "end")], 1007)
# §5.5.1/§7.4 close payloads
V("close_len1", F(OP_CLOSE, b"\x03"), 1002)
for _code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
    V("close_code_%d" % _code, C(_code), 1002)
V("close_code_1005_with_reason", C(1005, "why"), 1002)
V("close_reason_bad_utf8", C(1000, b"\xff"), 1007)
V("close_reason_overlong", C(1000, b"bye \xc0\xaf"), 1007)
V("close_reason_cut", C(1001, b"bye \xe2\x82"), 1007)
V("close_reason_surrogate", C(3000, b"\xed\xa0\x80"), 1007)
V("close_bad_code_in_message", [F(OP_TEXT, "a", fin=False), C(1004)], 1002)
# order: valid traffic is answered up to the violation, nothing after it
V("rsv1_text_then_valid", [F(OP_TEXT, "x", rsv=4), F(OP_TEXT, "after"),
                           F(OP_PING, b"p")], 1002)
V("unmasked_then_valid", [F(OP_TEXT, "x", mask=False), F(OP_TEXT, "after")], 1002)
V("valid_then_rsv1", [F(OP_TEXT, "before"), F(OP_PING, b"p"), F(OP_TEXT, "x", rsv=4)],
  1002, before=[(OP_TEXT, b"before"), (OP_PONG, b"p")])
V("big_valid_then_opcode_5", [F(OP_BINARY, binary_bytes(200000)), F(5, b"")], 1002,
  before=[(OP_BINARY, binary_bytes(200000))])
V("utf8_invalid_then_valid", [F(OP_TEXT, b"\xff"), F(OP_TEXT, "after")], 1007)

# Violation cases also replayed split at every offset (and byte by byte).
VIOLATION_SPLITS = [
    "unmasked_text", "rsv1_text", "opcode_3", "opcode_f", "len64_msb",
    "ping_len126", "ping_fin0", "continuation_first", "text_in_text",
    "small_len_2p63_minus_1", "utf8_split_invalid", "utf8_overlong_e0",
    "utf8_surrogate", "close_len1", "close_code_1005", "close_reason_bad_utf8",
    "valid_then_rsv1", "rsv1_ping", "unmasked_continuation", "binary_in_text",
    "continuation_after_message", "opcode_b_in_message", "close_len126",
    "small_len_65537", "small_first_fragment_over", "utf8_cut_4_byte_at_end",
    "utf8_above_10ffff", "utf8_cut_at_end_empty_final", "close_code_0",
]

# name -> (path, list of frames, expected events)
DATA = {}


def D(name, frames, expected, path="/echo"):
    if isinstance(frames, bytes):
        frames = [frames]
    assert name not in DATA, name
    DATA[name] = (path, frames, [(op, p.encode() if isinstance(p, str) else p)
                                 for op, p in expected])


_HELLO = "Hello, wörld € 𝄞".encode()
D("text_hello", F(OP_TEXT, _HELLO), [(OP_TEXT, _HELLO)])
D("text_empty", F(OP_TEXT, b""), [(OP_TEXT, b"")])
D("binary_empty", F(OP_BINARY, b""), [(OP_BINARY, b"")])
D("binary_all_bytes", F(OP_BINARY, bytes(range(256))), [(OP_BINARY, bytes(range(256)))])
for _n in (125, 126, 127, 65535, 65536, 200000):
    D("text_len%d" % _n, F(OP_TEXT, text_bytes(_n, _n)), [(OP_TEXT, text_bytes(_n, _n))])
    D("binary_len%d" % _n, F(OP_BINARY, binary_bytes(_n, _n)),
      [(OP_BINARY, binary_bytes(_n, _n))])
D("small_exact_limit_single", F(OP_BINARY, binary_bytes(SMALL_MAX)),
  [(OP_BINARY, binary_bytes(SMALL_MAX))], path="/small")
_parts = [text_bytes(30000, 1), text_bytes(30000, 2), text_bytes(SMALL_MAX - 60000, 3)]
D("small_exact_limit_fragmented", fragments(OP_TEXT, _parts),
  [(OP_TEXT, b"".join(_parts))], path="/small")
D("small_exact_limit_with_pings",
  [F(OP_TEXT, _parts[0], fin=False), F(OP_PING, b"a"), F(OP_CONT, _parts[1], fin=False),
   F(OP_PING, b"b" * 125), F(OP_CONT, _parts[2])],
  [(OP_PONG, b"a"), (OP_PONG, b"b" * 125), (OP_TEXT, b"".join(_parts))], path="/small")
_m36 = [binary_bytes(12000, i) for i in range(3)]
D("small_two_fragmented_messages_over_limit_together",
  fragments(OP_BINARY, _m36) + fragments(OP_BINARY, _m36[::-1]),
  [(OP_BINARY, b"".join(_m36)), (OP_BINARY, b"".join(_m36[::-1]))], path="/small")
# fragmentation: 1, 2, 10 and 100 fragments, empty first/middle/last
D("frag_text_1_plus_empty_final", fragments(OP_TEXT, [b"abc", b""]), [(OP_TEXT, b"abc")])
D("frag_text_2", fragments(OP_TEXT, [b"Hel", b"lo"]), [(OP_TEXT, b"Hello")])
D("frag_binary_2", fragments(OP_BINARY, [b"\x00\xff", b"\x80"]),
  [(OP_BINARY, b"\x00\xff\x80")])
D("frag_text_2_empty", fragments(OP_TEXT, [b"", b""]), [(OP_TEXT, b"")])
D("frag_binary_2_empty", fragments(OP_BINARY, [b"", b""]), [(OP_BINARY, b"")])
_p10 = [b"", b"a", b"bc", b"", b"def", "ghé".encode(), b"", b"k", b"l", b""]
D("frag_text_10_empty_first_middle_last", fragments(OP_TEXT, _p10),
  [(OP_TEXT, b"".join(_p10))])
D("frag_binary_10_empty_first_middle_last", fragments(OP_BINARY, _p10),
  [(OP_BINARY, b"".join(_p10))])
_b100 = [binary_bytes(i % 6, i) for i in range(100)]
_b100[0] = _b100[50] = _b100[99] = b""
D("frag_binary_100", fragments(OP_BINARY, _b100), [(OP_BINARY, b"".join(_b100))])
_t100src = text_bytes(300, 9)
_t100 = [b""] + [_t100src[i * 3:i * 3 + 3] for i in range(98)] + [_t100src[294:]]
D("frag_text_100_code_points_cut", fragments(OP_TEXT, _t100),
  [(OP_TEXT, _t100src)])
_big = [binary_bytes(70000, 1), binary_bytes(70000, 2), binary_bytes(60000, 3)]
D("frag_binary_3_large", fragments(OP_BINARY, _big), [(OP_BINARY, b"".join(_big))])
# UTF-8 code points split across fragments (valid)
for _ch in ("é", "€", "😀"):
    _enc = _ch.encode()
    for _at in range(1, len(_enc)):
        D("utf8_split_%dbyte_at_%d" % (len(_enc), _at),
          fragments(OP_TEXT, [b"<" + _enc[:_at], _enc[_at:] + b">"]),
          [(OP_TEXT, b"<" + _enc + b">")])
D("utf8_split_4byte_over_4_fragments", fragments(OP_TEXT, [b"\xf0", b"\x9f", b"\x98", b"\x80"]),
  [(OP_TEXT, "😀".encode())])
# control frames between fragments
D("ping_between_fragments", [F(OP_TEXT, "Hel", fin=False), F(OP_PING, b"p"),
                             F(OP_CONT, "lo")],
  [(OP_PONG, b"p"), (OP_TEXT, b"Hello")])
D("controls_between_fragments",
  [F(OP_TEXT, "a", fin=False), F(OP_PING, b"1"), F(OP_PONG, b"unsolicited"),
   F(OP_CONT, "b", fin=False), F(OP_PING, b""), F(OP_CONT, b"", fin=False),
   F(OP_PING, bytes(range(125))), F(OP_CONT, "c")],
  [(OP_PONG, b"1"), (OP_PONG, b""), (OP_PONG, bytes(range(125))), (OP_TEXT, b"abc")])
D("ping_inside_split_code_point", [F(OP_TEXT, b"\xe2\x82", fin=False), F(OP_PING, b"x"),
                                   F(OP_CONT, b"\xac")],
  [(OP_PONG, b"x"), (OP_TEXT, "€".encode())])
D("pings_between_large_binary_fragments",
  [F(OP_BINARY, _big[0], fin=False), F(OP_PING, b"one"), F(OP_CONT, _big[1], fin=False),
   F(OP_PING, b"two"), F(OP_CONT, _big[2])],
  [(OP_PONG, b"one"), (OP_PONG, b"two"), (OP_BINARY, b"".join(_big))])
# pings and pongs
D("ping_0", F(OP_PING, b""), [(OP_PONG, b"")])
D("ping_1", F(OP_PING, b"x"), [(OP_PONG, b"x")])
D("ping_125", F(OP_PING, text_bytes(125)), [(OP_PONG, text_bytes(125))])
D("ping_binary", F(OP_PING, b"\x00\xff\x80\x7f" * 31), [(OP_PONG, b"\x00\xff\x80\x7f" * 31)])
D("unsolicited_pong_then_echo", [F(OP_PONG, b"hi"), F(OP_TEXT, "after")],
  [(OP_TEXT, b"after")])
D("unsolicited_empty_pong_then_echo", [F(OP_PONG, b""), F(OP_BINARY, b"\x01")],
  [(OP_BINARY, b"\x01")])
D("fragmented_single_fragmented", fragments(OP_TEXT, [b"t1", b"t2"]) + [F(OP_BINARY, b"b")]
  + fragments(OP_BINARY, [b"\x00", b"", b"\x01"]),
  [(OP_TEXT, b"t1t2"), (OP_BINARY, b"b"), (OP_BINARY, b"\x00\x01")])
D("pipelined_messages", [F(OP_TEXT, "a"), F(OP_BINARY, b"b"), F(OP_PING, b"c"),
                         F(OP_TEXT, "d")],
  [(OP_TEXT, b"a"), (OP_BINARY, b"b"), (OP_PONG, b"c"), (OP_TEXT, b"d")])

VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                     1013, 1014, 3000, 3999, 4000, 4999)


class Conformance(ConformanceCase):
    """Violations, data, close and ping cases against the echo plugin."""

    ROUTES = {
        "echo": {"path": "/echo", "plugin": harness.ECHO_SO,
                 "max_message_size": ECHO_MAX},
        "small": {"path": "/small", "plugin": harness.ECHO_SO,
                  "max_message_size": SMALL_MAX},
    }

    # -- the closing handshake started by the client -----------------------------
    def check_close_answer(self, frame, accept, context, extra=b""):
        """Sends a close (and `extra` after it); the server must answer with
        one close whose payload satisfies accept(payload), send nothing else
        and close the TCP connection first."""
        s, r = self.open()
        with s:
            s.sendall(frame + extra)
            got = self.until_close(r, context)
            self.assert_events(got[:-1], [], context + ": frames before the close")
            payload = got[-1][1]
            self.assertTrue(accept(payload), "%s: server answered with close payload %r"
                            % (context, payload))
            self.expect_server_eof(s, r, context)

    def test_close_done_socket_released_without_peer_fin(self):
        """§7.1.1: once both closes are exchanged the server closes the TCP
        connection at once: it does not hold the socket until the client's
        FIN (this client never sends one) or the close timeout."""
        d = self.daemon
        count = lambda: len(os.listdir("/proc/%d/fd" % d.proc.pid))
        s, r = self.open()
        with s:
            with_ours = count()
            s.sendall(C(1000))
            got = self.until_close(r, "close, then the client holds its socket")
            self.assertEqual(close_code(got[-1][1]), 1000)
            self.assertTrue(r.at_eof(EOF_TIMEOUT), "no EOF after the close")
            deadline = time.monotonic() + CLOSE_TIMEOUT_MS / 1000 * 0.5
            while count() >= with_ours and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertLess(count(), with_ours, "websockd still holds the socket "
                            "%.1f s after the closing handshake"
                            % (CLOSE_TIMEOUT_MS / 1000 * 0.5))

    def test_close_valid_reason(self):
        self.check_close_answer(C(1000, "bye ✓ 😀"), lambda p: close_code(p) == 1000,
                                "close 1000 with a UTF-8 reason")

    def test_close_max_length_reason(self):
        reason = text_bytes(123, 5)
        self.check_close_answer(C(4000, reason), lambda p: close_code(p) == 4000,
                                "close 4000 with a 123-byte reason")

    def test_close_empty(self):
        # §5.5.1: no status code received -> an empty close (or 1000) answers.
        self.check_close_answer(F(OP_CLOSE, b""), lambda p: p == b"" or p[:2] == b"\x03\xe8",
                                "empty close")

    def test_close_during_fragmented_message(self):
        self.check_close_answer(F(OP_TEXT, "abc", fin=False) + C(1001),
                                lambda p: close_code(p) == 1001,
                                "close while a fragmented message is open")

    def test_close_then_data_ignored_same_segment(self):
        self.check_close_answer(C(1000), lambda p: close_code(p) == 1000,
                                "close, then text and ping in the same segment",
                                extra=F(OP_TEXT, "ignored") + F(OP_PING, b"ignored"))

    def test_ping_then_close_same_segment(self):
        s, r = self.open()
        with s:
            s.sendall(F(OP_PING, b"last") + C(1000, "done"))
            got = self.until_close(r, "ping, then close", limit=1)
            self.assert_events(got[:-1], [(OP_PONG, b"last")], "ping, then close")
            self.assertEqual(close_code(got[-1][1]), 1000)
            self.expect_server_eof(s, r, "ping, then close")

    def test_close_then_data_ignored_later(self):
        s, r = self.open()
        with s:
            s.sendall(C(1000))
            time.sleep(0.05)
            try:
                s.sendall(F(OP_TEXT, "ignored") + F(OP_PING, b"p"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            got = self.until_close(r, "close, then data 50 ms later")
            self.assert_events(got, [(OP_CLOSE, close_payload(1000))],
                               "close, then data 50 ms later")
            self.expect_server_eof(s, r, "close, then data 50 ms later")

    def test_close_split_every_offset(self):
        wire = C(1001, "going away")
        for off in list(range(1, len(wire))) + [None]:
            pieces = range(1, len(wire)) if off is None else [off]
            s, r = self.open()
            with s:
                self.send_split(s, wire, pieces, BYTE_PAUSE if off is None else PAUSE)
                ctx = "close split at %s" % _short(pieces)
                got = self.until_close(r, ctx)
                self.assert_events(got[:-1], [], ctx)
                self.assertEqual(close_code(got[-1][1]), 1001, ctx)
                self.expect_server_eof(s, r, ctx)

    def test_nothing_after_close(self):
        """After a violation the server's close is the only frame, even if
        valid frames keep coming after it."""
        s, r = self.open()
        with s:
            s.sendall(F(OP_TEXT, b"\xc0\xaf"))
            got = self.until_close(r, "invalid UTF-8")
            self.assertEqual(close_code(got[-1][1]), 1007)
            for _ in range(3):
                time.sleep(0.05)
                try:
                    s.sendall(F(OP_TEXT, "more") + F(OP_PING, b"p"))
                except (BrokenPipeError, ConnectionResetError):
                    break
            self.assert_events(got[:-1], [], "frames before the close")
            self.expect_server_eof(s, r, "data after the server's close",
                                   answer=C(1007))

    # -- limits ---------------------------------------------------------------------
    def test_too_big_when_crossing_fragment_header_arrives(self):
        s, r = self.open("/small")
        with s:
            s.sendall(F(OP_BINARY, binary_bytes(30000), fin=False)
                      + F(OP_CONT, binary_bytes(30000, 1), fin=False))
            s.settimeout(0.3)
            try:
                early = s.recv(1)
            except socket.timeout:
                early = None
            self.assertIsNone(early, "server answered 60000 bytes of a 65536 limit: %r"
                              % early)
            s.sendall(header_only(OP_CONT, 30000, fin=True))
            got = self.until_close(r, "header of the fragment crossing the limit",
                                   timeout=FAIL_FAST_TIMEOUT)
            self.assert_events(got[:-1], [], "frames before the close")
            self.assertEqual(close_code(got[-1][1]), 1009)
            self.expect_server_eof(s, r, "1009", answer=C(1009))

    # -- UTF-8: fail fast ----------------------------------------------------------
    def check_fail_fast(self, wire, context):
        """Sends wire (only part of a message); the 1007 close must arrive
        without anything more being sent."""
        s, r = self.open()
        with s:
            s.sendall(wire)
            got = self.until_close(r, context + ": no 1007 before the rest was sent",
                                   timeout=FAIL_FAST_TIMEOUT)
            self.assert_events(got[:-1], [], context)
            self.assertEqual(close_code(got[-1][1]), 1007, context)
            self.expect_server_eof(s, r, context, answer=C(1007))

    def test_fail_fast_bad_byte_in_first_fragment(self):
        first = bytearray(text_bytes(1000))
        first[500] = 0xFF
        self.check_fail_fast(F(OP_TEXT, bytes(first), fin=False),
                             "bad byte in fragment 1 of 10")

    def test_fail_fast_bad_byte_in_third_of_ten_fragments(self):
        parts = [text_bytes(1000, i) for i in range(10)]
        bad = bytearray(parts[2])
        bad[10:13] = b"\xed\xa0\x80"
        parts[2] = bytes(bad)
        frames = fragments(OP_TEXT, parts)
        self.check_fail_fast(b"".join(frames[:3]), "bad bytes in fragment 3 of 10")

    def test_fail_fast_split_code_point_invalid(self):
        self.check_fail_fast(F(OP_TEXT, b"abc\xf0\x9f", fin=False)
                             + F(OP_CONT, b"A", fin=False),
                             "code point cut across fragments, then ASCII")

    def test_fail_fast_single_frame_partial_payload(self):
        payload = bytearray(text_bytes(1000))
        payload[5] = 0xC0
        frame = F(OP_TEXT, bytes(payload))
        self.check_fail_fast(frame[:frame_header_len(frame) + 10],
                             "header and 10 bytes of a 1000-byte frame")

    def test_fail_fast_1mib_fragmented(self):
        size, frag = 1024 * 1024, 65536
        payload = bytearray(text_bytes(size, 4))
        payload[100] = 0xF8
        frames = fragments(OP_TEXT, [bytes(payload[i:i + frag])
                                     for i in range(0, size, frag)])
        self.assertEqual(len(frames), 16)
        self.check_fail_fast(frames[0][:frame_header_len(frames[0]) + 4096],
                             "first 4 KiB of a 1 MiB message in 16 fragments")

    def test_fail_fast_1mib_single_frame(self):
        size = 1024 * 1024
        payload = bytearray(text_bytes(size, 5))
        payload[200:202] = b"\xc0\xaf"
        frame = F(OP_TEXT, bytes(payload))
        self.check_fail_fast(frame[:frame_header_len(frame) + 4096],
                             "first 4 KiB of a 1 MiB frame")


class ServerInitiatedClose(ConformanceCase):
    """The closing handshake started by the server (the recorder plugin)."""

    ROUTES = {"rec": {"path": "/rec", "plugin": harness.RECORDER_SO}}

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(harness.RECORDER_SO):
            raise unittest.SkipTest("recorder test plugin not built: %s"
                                    % harness.RECORDER_SO)
        super().setUpClass()

    def server_close(self, text, code, reason=None):
        """Sends the command `text`; the recorder's init() greeting, then a
        close with `code`, must come back."""
        s, r = self.open("/rec")
        try:
            s.sendall(F(OP_TEXT, text))
            got = self.until_close(r, "server close after %r" % text, limit=1)
            self.assert_events(got[:-1], [(OP_TEXT, b"hello")],
                               "frames before the server's close")
            payload = got[-1][1]
            self.assertEqual(close_code(payload), code, "close payload %r" % payload)
            if reason is not None:
                self.assertEqual(payload[2:], reason.encode())
        except BaseException:
            s.close()
            raise
        return s, r

    def test_client_never_answers_is_cut_off(self):
        s, r = self.server_close("stop", 1000)
        with s:
            t0 = time.monotonic()
            eof = r.at_eof(CLOSE_TIMEOUT_MS / 1000 + 2)
            elapsed = time.monotonic() - t0
            self.assertTrue(eof, "server kept a silent peer longer than close "
                            "timeout + 2 s")
            self.assertEqual(r.buf, b"", "bytes after the server's close")
            # It waited for our close (§7.1.1) rather than cutting at once.
            self.assertGreater(elapsed, CLOSE_TIMEOUT_MS / 1000 / 2,
                               "server closed TCP %.3f s after its close frame "
                               "without waiting for the peer's" % elapsed)

    def test_client_answers_gets_eof_promptly(self):
        s, r = self.server_close("stop", 1000)
        with s:
            elapsed = self.expect_server_eof(s, r, "answered server close",
                                             answer=C(1000))
            self.assertLess(elapsed, CLOSE_TIMEOUT_MS / 1000 * 0.6,
                            "EOF %.3f s after our answer: the server waited for "
                            "its close timeout" % elapsed)

    def test_custom_code_and_reason(self):
        s, r = self.server_close("close:4001:bye", 4001, "bye")
        with s:
            self.expect_server_eof(s, r, "server close 4001", answer=C(4001))

    def test_data_after_server_close_gets_nothing(self):
        s, r = self.server_close("stop", 1000)
        with s:
            s.sendall(F(OP_TEXT, "late") + F(OP_PING, b"late"))
            self.expect_server_eof(s, r, "data after the server's close",
                                   answer=C(1000))


# -- generated tests ------------------------------------------------------------------

def _bytewise_ok(frames):
    return all(len(f) <= BYTEWISE_FRAME_LIMIT + 14 for f in frames) and \
        sum(len(f) for f in frames) <= 4096


def _make_violation(name, split):
    path, wire, code, before = VIOLATIONS[name]

    def test(self):
        if not split:
            self.check_violation(wire, code, path, before, context=name)
            return
        for off in range(1, len(wire)):
            self.check_violation(wire, code, path, before, offsets=[off],
                                 context="%s split at %d" % (name, off))
        self.check_violation(wire, code, path, before, offsets=range(1, len(wire)),
                             pause=BYTE_PAUSE, context=name + " byte by byte")
    test.__doc__ = "%s -> close %d" % (name, code)
    return test


def _make_data(name, split):
    path, frames, expected = DATA[name]

    def test(self):
        if not split:
            self.check_data(path, frames, expected, [((), 0)], context=name)
            return
        splits = [([off], PAUSE) for off in split_offsets(frames)]
        if _bytewise_ok(frames):
            total = sum(len(f) for f in frames)
            splits.append((range(1, total), BYTE_PAUSE))
        self.check_data(path, frames, expected, splits, context=name)
    test.__doc__ = "%s (%s)" % (name, "split replay" if split else "one piece")
    return test


def _make_valid_close(code):
    def test(self):
        self.check_close_answer(C(code), lambda p: close_code(p) == code,
                                "close %d" % code)
    test.__doc__ = "close %d is answered with %d" % (code, code)
    return test


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


for _name in VIOLATIONS:
    _add(Conformance, "test_violation_" + _name, _make_violation(_name, False))
for _name in VIOLATION_SPLITS:
    _add(Conformance, "test_split_violation_" + _name, _make_violation(_name, True))
for _name in DATA:
    _add(Conformance, "test_data_" + _name, _make_data(_name, False))
    _add(Conformance, "test_split_" + _name, _make_data(_name, True))
for _code in VALID_CLOSE_CODES:
    _add(Conformance, "test_close_valid_%d" % _code, _make_valid_close(_code))
for _name in KNOWN_FAILURES:
    for _cls in (Conformance, ServerInitiatedClose):
        if _name in vars(_cls):
            setattr(_cls, _name, unittest.expectedFailure(vars(_cls)[_name]))
            break
    else:
        raise AssertionError("KNOWN_FAILURES names no test: " + _name)

if __name__ == "__main__":
    unittest.main()
