"""Big messages through the shipped /echo route (plugins.d/echo.conf:
max_message_size 16 MiB; max_unsent at its 4 MiB default): each message of
4, 8 or 16 MiB must come back byte for byte, whole or fragmented, text or
binary. Before issue 11 every echo of 4 MiB or more was refused with 1008
"send queue full": the backpressure check counted the new message itself
against max_unsent. Now only what is already unsent counts.

Two clients that are not ours: Debian's python3-websockets (send() of an
iterable sends one fragment per item) and raw sockets (masked frames built
here, payloads masked with a random key).

The matrix (kept short for ASan; say 20-40 s in all):
  python3-websockets  4, 8, 16 MiB whole, text and binary; 4 MiB in
                      fragments of 256 B, 1 KiB, 4 KiB, 64 KiB and 1 MiB;
                      16 MiB in fragments of 64 KiB and 1 MiB
  raw sockets         4, 8, 16 MiB whole, text and binary; 4 MiB in
                      fragments of 64 B (65,536 frames), 256 B, 1 KiB,
                      4 KiB, 64 KiB and 1 MiB; 16 MiB in fragments of
                      64 KiB and 1 MiB
  half-close          a 4 MiB echo, then the client's FIN: the whole echo
                      arrives before websockd closes (issue 11, section 5)
  written through     echoes of 256 KiB or more leave from the message
                      itself when nothing is queued before them: big and
                      small messages in one burst to a slow reader, and a
                      pong queued before a big echo, come back in order
"""

import asyncio
import os
import random
import socket
import struct
import time
import unittest

import websockets

import harness
from harness import ECHO_SO, read_http_head, upgrade_request

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE = 0, 1, 2, 8
KIB = 1024
MIB = 1024 * 1024
SIZES = (4 * MIB, 8 * MIB, 16 * MIB)
TIMEOUT = 60.0  # one echo of 16 MiB under ASan, with room to spare


def shipped_echo_route():
    """The route as shipped: plugins.d/echo.conf, read from the source
    tree, with the built echo.so."""
    src = os.path.join(os.environ.get("WSH_SOURCE_DIR", "../.."), "plugins.d",
                       "echo.conf")
    route = {}
    with open(src) as f:
        for line in f:
            line = line.split(";", 1)[0].strip()
            if "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                route[k] = v
    route["plugin"] = ECHO_SO
    return route


def payload_of(size, text, seed):
    """size bytes: printable ASCII for text (valid UTF-8), any bytes for
    binary; different for every case."""
    rng = random.Random(repr(seed))
    if text:
        block = bytes(rng.randrange(32, 127) for _ in range(4096))
        return (block * (size // 4096 + 1))[:size]
    return rng.randbytes(size)


def mask(data, key):
    """data XOR the repeated 4-byte key (whole-buffer integer XOR: fast)."""
    n = len(data)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^
            int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame_head(fin, opcode, n, key):
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + key


def client_frames(opcode, data, frag, rng):
    """The message as masked client frames, fragments of `frag` bytes (None:
    one frame)."""
    if frag is None:
        key = rng.randbytes(4)
        return frame_head(True, opcode, len(data), key) + mask(data, key)
    # small fragments: one key for all (masking 65,536 pieces one by one is
    # slow in Python), still a masked frame each
    key = rng.randbytes(4) if frag >= 4 * KIB else b"\x5a\xa5\x3c\xc3"
    out = bytearray()
    masked = mask(data, key) if frag < 4 * KIB else None
    for off in range(0, len(data), frag):
        piece = data[off:off + frag]
        last = off + frag >= len(data)
        op = opcode if off == 0 else OP_CONT
        if masked is not None:
            # each fragment's payload starts at key offset 0: frag % 4 == 0
            out += frame_head(last, op, len(piece), key) + masked[off:off + frag]
        else:
            k = rng.randbytes(4)
            out += frame_head(last, op, len(piece), k) + mask(piece, k)
    return bytes(out)


class RawReader:
    """Server frames from a raw socket (bytearray: 16 MiB without
    quadratic copying)."""

    def __init__(self, sock, initial=b"", slow=False):
        self.sock = sock
        self.buf = bytearray(initial)
        self.pos = 0
        self.slow = slow  # 16 KiB a read, 2 ms apart: a slow reader

    def _need(self, n):
        while len(self.buf) - self.pos < n:
            if self.slow:
                time.sleep(0.002)
            chunk = self.sock.recv(16384 if self.slow else 1 << 20)
            if not chunk:
                raise EOFError("closed with %d of %d bytes"
                               % (len(self.buf) - self.pos, n))
            self.buf += chunk

    def frame(self):
        self._need(2)
        b0, b1 = self.buf[self.pos], self.buf[self.pos + 1]
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = int.from_bytes(self.buf[self.pos + 2:self.pos + 4], "big"), 4
        elif n == 127:
            self._need(10)
            n, off = int.from_bytes(self.buf[self.pos + 2:self.pos + 10], "big"), 10
        self._need(off + n)
        start = self.pos + off
        payload = bytes(self.buf[start:start + n])
        self.pos = start + n
        if self.pos > (8 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def message(self):
        """(opcode, payload) of the next data message, reassembled."""
        fin, op, payload = self.frame()
        if op == OP_CLOSE:
            raise AssertionError("close frame %r instead of a message" % payload[:40])
        parts = [payload]
        while not fin:
            fin, cop, more = self.frame()
            if cop != OP_CONT:
                raise AssertionError("opcode %d inside a message" % cop)
            parts.append(more)
        return op, b"".join(parts)

    def at_eof(self, timeout):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def raw_open(d):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
    s.sendall(upgrade_request("/echo"))
    status, _, rest = read_http_head(s)
    if status != 101:
        s.close()
        raise AssertionError("upgrade got %d" % status)
    return s, RawReader(s, rest)


def send_all_and_read(s, r, wire, count=1):
    """Sends wire while reading `count` messages (a 16 MiB echo cannot wait
    for the whole send: websockd pauses reading us while our echo is
    unsent); returns the echoed messages."""
    import threading
    err = {}

    def sender():
        try:
            s.sendall(wire)
        except Exception as e:  # reported below
            err["send"] = repr(e)
    t = threading.Thread(target=sender)
    t.start()
    try:
        return [r.message() for _ in range(count)]
    finally:
        t.join(TIMEOUT)
        if err:
            raise AssertionError(err["send"])


class BigMessageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.route = shipped_echo_route()
        cls.d = harness.Daemon({"echo": cls.route})
        try:
            cls.d.start()
        except BaseException:
            cls.d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_shipped_route_allows_16_mib(self):
        self.assertEqual(self.route["path"], "/echo")
        self.assertGreaterEqual(int(self.route["max_message_size"]), 16 * MIB)
        self.assertNotIn("max_unsent", self.route)  # the 4 MiB default

    # -- python3-websockets -------------------------------------------------
    def ws_echo(self, size, text, frag):
        data = payload_of(size, text, ("ws", size, text, frag))
        msg = data.decode("ascii") if text else data

        async def go():
            async with websockets.connect(self.d.url("/echo"), max_size=None,
                                          open_timeout=TIMEOUT,
                                          close_timeout=TIMEOUT) as ws:
                t0 = time.monotonic()
                if frag is None:
                    await ws.send(msg)
                else:
                    await ws.send([msg[i:i + frag]
                                   for i in range(0, len(msg), frag)])
                answer = await asyncio.wait_for(ws.recv(), TIMEOUT)
                return answer, time.monotonic() - t0
        answer, took = asyncio.run(asyncio.wait_for(go(), TIMEOUT * 2))
        self.assertEqual(type(answer), type(msg))
        self.assertEqual(len(answer), len(msg))
        self.assertTrue(answer == msg, "echo differs")
        return took

    def test_websockets_whole(self):
        for size in SIZES:
            for text in (False, True):
                with self.subTest(size=size, text=text):
                    self.ws_echo(size, text, None)

    def test_websockets_fragmented(self):
        cases = [(4 * MIB, f, i % 2 == 0) for i, f in
                 enumerate((256, KIB, 4 * KIB, 64 * KIB, MIB))]
        cases += [(16 * MIB, 64 * KIB, False), (16 * MIB, MIB, True)]
        for size, frag, text in cases:
            with self.subTest(size=size, frag=frag, text=text):
                self.ws_echo(size, text, frag)

    # -- raw sockets --------------------------------------------------------
    def raw_echo(self, size, text, frag):
        seed = ("raw", size, text, frag)
        data = payload_of(size, text, seed)
        op = OP_TEXT if text else OP_BINARY
        wire = client_frames(op, data, frag, random.Random(repr(seed)))
        s, r = raw_open(self.d)
        try:
            (got_op, got), = send_all_and_read(s, r, wire)
            self.assertEqual(got_op, op)
            self.assertEqual(len(got), len(data))
            self.assertTrue(got == data, "echo differs")
            s.sendall(frame_head(True, OP_CLOSE, 2, b"\0\0\0\0") +
                      struct.pack("!H", 1000))
            fin, cop, payload = r.frame()
            self.assertEqual((cop, payload[:2]), (OP_CLOSE, b"\x03\xe8"))
            self.assertTrue(r.at_eof(5))
        finally:
            s.close()

    def test_raw_whole(self):
        for size in SIZES:
            for text in (False, True):
                with self.subTest(size=size, text=text):
                    self.raw_echo(size, text, None)

    def test_raw_fragmented(self):
        cases = [(4 * MIB, f, i % 2 == 1) for i, f in
                 enumerate((64, 256, KIB, 4 * KIB, 64 * KIB, MIB))]
        cases += [(16 * MIB, 64 * KIB, True), (16 * MIB, MIB, False)]
        for size, frag, text in cases:
            with self.subTest(size=size, frag=frag, text=text):
                self.raw_echo(size, text, frag)

    def test_several_big_messages_in_a_row(self):
        """Three 8 MiB messages sent back to back on one connection: each
        comes back whole and in order (the second is pushed while the first
        may still be unsent: reading pauses, nothing is refused)."""
        msgs = [payload_of(8 * MIB, False, ("row", i)) for i in range(3)]
        rng = random.Random(7)
        wire = b"".join(client_frames(OP_BINARY, m, None, rng) for m in msgs)
        s, r = raw_open(self.d)
        try:
            got = send_all_and_read(s, r, wire, 3)
            for i, (op, payload) in enumerate(got):
                self.assertEqual(op, OP_BINARY)
                self.assertTrue(payload == msgs[i], "message %d differs" % i)
        finally:
            s.close()


    def test_big_and_small_to_a_slow_reader(self):
        """Big echoes are written from the message itself when nothing is
        queued before them (256 KiB or more), and only what the socket does
        not take is queued: sent in one burst to a reader that takes 16 KiB
        every 2 ms, big and small messages, text and binary, some just
        under and at the size that is written through, come back whole and
        in order."""
        sizes = [256 * KIB, 10, 256 * KIB - 1, 1 * MIB, 125, 300 * KIB, 2,
                 2 * MIB, 64 * KIB, 256 * KIB + 1, 0, 1 * MIB]
        rng = random.Random(11)
        msgs = [(OP_TEXT if i % 3 == 1 else OP_BINARY,
                 payload_of(n, i % 3 == 1, ("slow", i))) for i, n in enumerate(sizes)]
        wire = b"".join(client_frames(op, m, None, rng) for op, m in msgs)
        s, r = raw_open(self.d)
        r.slow = True
        try:
            got = send_all_and_read(s, r, wire, len(msgs))
            for i, ((op, m), (got_op, payload)) in enumerate(zip(msgs, got)):
                self.assertEqual(got_op, op, "message %d" % i)
                self.assertEqual(len(payload), len(m), "message %d" % i)
                self.assertTrue(payload == m, "message %d differs" % i)
        finally:
            s.close()

    def test_bad_utf8_deep_in_a_big_text_message(self):
        """The rest of a big frame is read straight into the message (no
        copy) and checked there: a 1 MiB text message with one bad byte at
        700,000, whole or in two fragments, is closed with 1007, and the
        daemon echoes the next client's message."""
        for frag in (None, 512 * KIB):
            with self.subTest(frag=frag):
                data = bytearray(payload_of(MIB, True, ("bad", frag)))
                data[700000] = 0xFF
                wire = client_frames(OP_TEXT, bytes(data), frag,
                                     random.Random(3))
                s, r = raw_open(self.d)
                try:
                    try:
                        s.sendall(wire)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # closed while we sent: the close frame came
                    fin, op, payload = r.frame()
                    self.assertEqual(op, OP_CLOSE)
                    self.assertEqual(payload[:2], struct.pack("!H", 1007))
                finally:
                    s.close()
        self.raw_echo(2 * MIB, True, None)

    def test_pong_queued_before_a_big_echo_goes_first(self):
        """A ping between the fragments of a big message: its pong is
        queued in the turn the message ends in, so the echo, which is
        written through only when nothing is queued, must follow it."""
        OP_PING, OP_PONG = 9, 10
        data = payload_of(512 * KIB + 100, False, ("pong-first",))
        rng = random.Random(5)
        keys = [rng.randbytes(4) for _ in range(3)]
        head, tail = data[:512 * KIB], data[512 * KIB:]
        wire = (frame_head(False, OP_BINARY, len(head), keys[0]) +
                mask(head, keys[0]) +
                frame_head(True, OP_PING, 2, keys[1]) + mask(b"p1", keys[1]) +
                frame_head(True, OP_CONT, len(tail), keys[2]) +
                mask(tail, keys[2]))
        for _ in range(3):
            s, r = raw_open(self.d)
            try:
                s.sendall(wire)
                fin, op, payload = r.frame()
                self.assertEqual((fin, op, payload), (True, OP_PONG, b"p1"))
                got_op, got = r.message()
                self.assertEqual(got_op, OP_BINARY)
                self.assertTrue(got == data, "echo differs")
            finally:
                s.close()


class HalfCloseTest(unittest.TestCase):
    """A client sends a message whose echo is too big to be written at once,
    then shuts its side (FIN) without a close frame, and reads it slowly:
    websockd must still write the whole echo, then close (before issue 11 the queued output was
    dropped with the connection)."""

    @classmethod
    def setUpClass(cls):
        cls.d = harness.Daemon({"echo": shipped_echo_route()},
                               args=["--close-timeout-ms", "5000"])
        try:
            cls.d.start()
        except BaseException:
            cls.d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_queued_echo_goes_out_after_fin(self):
        for size in (2 * MIB, 8 * MIB):
            with self.subTest(size=size):
                data = payload_of(size, False, ("fin", size))
                s = socket.create_connection(("127.0.0.1", self.d.port),
                                             timeout=TIMEOUT)
                # a small receive buffer: the echo cannot all be written
                # before websockd sees our FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                try:
                    s.sendall(upgrade_request("/echo"))
                    status, _, rest = read_http_head(s)
                    self.assertEqual(status, 101)
                    r = RawReader(s, rest, slow=True)
                    s.sendall(client_frames(OP_BINARY, data, None,
                                            random.Random(size)))
                    s.shutdown(socket.SHUT_WR)
                    time.sleep(0.5)  # websockd sees the FIN, the echo queued
                    op, got = r.message()
                    self.assertEqual(op, OP_BINARY)
                    self.assertEqual(len(got), len(data))
                    self.assertTrue(got == data, "echo differs")
                    self.assertTrue(r.at_eof(10), "not closed after the echo")
                finally:
                    s.close()
        self.assertTrue(self.d.proc.poll() is None)


if __name__ == "__main__":
    unittest.main()
