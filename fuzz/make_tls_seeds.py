#!/usr/bin/python3
"""Writes the seed corpus of fuzz_tls_hello (fuzz/corpus/tls_hello/seed-*):
ClientHellos as Python's ssl module (OpenSSL) writes them, with and without
SNI and ALPN, TLS 1.2 only and older versions; then broken ones: plain
HTTP, cut short, a wrong record type, an SSLv2-style hello, garbage.
Run from anywhere; rewrites the seeds it owns."""
import os
import ssl

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                   "tls_hello")


def hello(minv=None, maxv=None, sni=None, alpn=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def main():
    os.makedirs(OUT, exist_ok=True)
    v = ssl.TLSVersion
    seeds = {
        "tls13-sni-alpn": hello(sni="a.test", alpn=["h2", "http/1.1"]),
        "tls13-no-sni": hello(),
        "tls12-only": hello(maxv=v.TLSv1_2, sni="b.test"),
        "alpn-h2-only": hello(sni="a.test", alpn=["h2"]),
        "plain-http-get": b"GET /chat HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "plain-http-connect": b"CONNECT a.test:443 HTTP/1.1\r\n\r\n",
        "wrong-record-type": b"\x17\x03\x03\x00\x05hello",
        "server-hello-type": b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
        "sslv2-hello": bytes.fromhex("802e0103010015000000100700c0030080"
                                     "0100800600400400800200800000390000"
                                     "38") + bytes(16),
        "garbage": bytes((i * 37 + 11) & 0xFF for i in range(300)),
        "empty": b"",
    }
    try:
        seeds["tls10"] = hello(minv=v.TLSv1, maxv=v.TLSv1,
                               ciphers="DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    full = seeds["tls13-sni-alpn"]
    seeds["truncated-half"] = full[:len(full) // 2]
    seeds["truncated-header"] = full[:3]
    seeds["length-too-long"] = full[:3] + b"\x48\x01" + full[5:]
    seeds["hello-twice"] = full + full
    for name, data in seeds.items():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {OUT}")


if __name__ == "__main__":
    main()
