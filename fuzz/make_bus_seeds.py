#!/usr/bin/env python3
"""make_bus_seeds.py - writes the hand-made seeds of fuzz/corpus/bus_msg/seed-*
(the bus's wire format, reference strings and Redis addresses; see
host/bus_msg.h). Kept apart from make_seeds.py while the bus is not wired
into the host; run python3 fuzz/make_bus_seeds.py to change them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    d = os.path.join(HERE, "corpus", "bus_msg")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def msg(kind, opcode, topic, payload, origin=0x0102030405060708, seq=1,
        to=(0, 0, 0, 0), version=1, tlen=None, plen=None):
    tlen = len(topic) if tlen is None else tlen
    plen = len(payload) if plen is None else plen
    return (struct.pack(">BBBBQQQIIII", version, kind, opcode, tlen, origin,
                        seq, to[0], to[1], to[2], to[3], plen)
            + topic + payload)


PUBLISH, BROADCAST, SEND = 1, 2, 3
seeds = {
    "publish-room": msg(PUBLISH, 0, b"room", b"hello"),
    "publish-empty-payload": msg(PUBLISH, 0, b"r", b""),
    "broadcast-text": msg(BROADCAST, 1, b"news", b"headline"),
    "broadcast-binary-1k": msg(BROADCAST, 2, b"bin", bytes(range(256)) * 4),
    "topic-255": msg(PUBLISH, 0, b"t" * 255, b"x"),
    "send": msg(SEND, 0, b"", b"direct", to=(0xfeed, 1, 42, 7)),
    "send-max-target": msg(SEND, 0, b"", b"", to=(2**64 - 1, 2**32 - 1,
                                                 2**32 - 1, 2**32 - 1)),
    "bad-version": msg(PUBLISH, 0, b"room", b"x", version=2),
    "bad-kind": msg(9, 0, b"room", b"x"),
    "bad-opcode-close": msg(BROADCAST, 8, b"room", b"x"),
    "bad-send-with-topic": msg(SEND, 0, b"room", b"x", to=(1, 0, 0, 0)),
    "bad-zero-origin": msg(PUBLISH, 0, b"room", b"x", origin=0),
    "bad-nul-in-topic": msg(PUBLISH, 0, b"ro\0m", b"x"),
    "bad-short-payload": msg(PUBLISH, 0, b"room", b"xy", plen=3),
    "bad-huge-payload": msg(PUBLISH, 0, b"room", b"", plen=0xFFFFFFFF),
    "bad-trailing-byte": msg(PUBLISH, 0, b"room", b"x") + b"!",
    "bad-header-only": msg(PUBLISH, 0, b"room", b"x")[:44],
    "ref": b"00c0ffee12345678.1.42.7",
    "ref-max": b"ffffffffffffffff.4294967295.4294967295.4294967295",
    "ref-upper": b"00C0FFEE12345678.0.0.0",
    "ref-bad-leading-zero": b"00c0ffee12345678.01.42.7",
    "ref-bad-overflow": b"00c0ffee12345678.1.42.4294967296",
    "addr-host-port": b"127.0.0.1:6379",
    "addr-ipv6": b"[::1]:6380",
    "addr-unix": b"/run/redis/redis.sock",
    "addr-bad-port": b"redis:65536",
}
for name, data in seeds.items():
    write(name, data)
