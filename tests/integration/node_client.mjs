// node_client.mjs - talks to a running websockd with Node's own WebSocket
// client (global WebSocket: built in from Node 22, behind
// --experimental-websocket on Node 20; the npm "ws" package only if neither).
//
//   node [--experimental-websocket] node_client.mjs ws://127.0.0.1:PORT [RECORD_FILE]
//
// Expects the routes test_node.py sets up: /echo (echo.so), /sub (echo.so,
// subprotocols = a, b) and /rec (recorder.so, record = RECORD_FILE).
// Prints one line per check ("ok NAME" or "FAIL NAME: why"), then
// "done: N checks, M failed", and exits 0 only if every check passed.
// Everything is bounded by timeouts; the whole script by GLOBAL_TIMEOUT_MS.
import { readFileSync } from "node:fs";

const OP_TIMEOUT_MS = 10000;
const CHECK_TIMEOUT_MS = 30000;
const GLOBAL_TIMEOUT_MS = 90000;

const base = process.argv[2];
const recordFile = process.argv[3];
if (!base) {
  console.log("usage: node_client.mjs ws://HOST:PORT [RECORD_FILE]");
  process.exit(2);
}

let WS = globalThis.WebSocket;
let impl = "global WebSocket";
if (typeof WS !== "function") {
  try {
    WS = (await import("ws")).WebSocket;
    impl = "npm ws";
  } catch (e) {
    console.log("FAIL setup: no global WebSocket and no npm ws package: " + e.message);
    process.exit(2);
  }
}
console.log(`using ${impl} on node ${process.version}`);

const globalTimer = setTimeout(() => {
  console.log(`FAIL global timeout: ${GLOBAL_TIMEOUT_MS} ms`);
  process.exit(3);
}, GLOBAL_TIMEOUT_MS);

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A connection with a queue of received messages and its close event.
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.msgs = [];
    this.waiters = [];
    this.closeEvent = null;
    this.closeWaiters = [];
  }

  next(what = "message") {
    if (this.msgs.length) return Promise.resolve(this.msgs.shift());
    if (this.closeEvent)
      return Promise.reject(new Error(`closed (${this.closeEvent.code}) while waiting for ${what}`));
    return withTimeout(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })),
                       OP_TIMEOUT_MS, what);
  }

  closed() {
    if (this.closeEvent) return Promise.resolve(this.closeEvent);
    return withTimeout(new Promise((resolve) => this.closeWaiters.push(resolve)),
                       OP_TIMEOUT_MS, "close event");
  }
}

function connect(path, protocols) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = protocols === undefined ? new WS(base + path) : new WS(base + path, protocols);
    ws.binaryType = "arraybuffer";
    const c = new Conn(ws);
    ws.onmessage = (ev) => {
      const w = c.waiters.shift();
      if (w) w.resolve(ev.data);
      else c.msgs.push(ev.data);
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (ev) => {
      c.closeEvent = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
      for (const w of c.waiters.splice(0)) w.reject(new Error(`closed (${ev.code})`));
      for (const w of c.closeWaiters.splice(0)) w(c.closeEvent);
      reject(new Error(`closed before open (code ${ev.code})`));
    };
    ws.onopen = () => resolve(c);
  }), OP_TIMEOUT_MS, `open ${path}`);
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function closeAndWait(c, code = 1000, reason) {
  if (!c.closeEvent) c.ws.close(code, reason);
  return c.closed();
}

let count = 0;
let failed = 0;
async function check(name, fn) {
  count++;
  try {
    const detail = await withTimeout(Promise.resolve().then(fn), CHECK_TIMEOUT_MS, name);
    console.log(`ok ${name}${detail ? ": " + detail : ""}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

async function echoCheck(send, verify) {
  const c = await connect("/echo");
  try {
    c.ws.send(send);
    const got = await c.next("echo");
    return verify(got);
  } finally {
    await closeAndWait(c);
  }
}

// Reads the recorder's file until a line matches (or the timeout).
async function waitRecord(regex, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let lines = [];
    try {
      lines = readFileSync(recordFile, "utf8").split("\n");
    } catch (e) {
      // not written yet
    }
    const hit = lines.find((l) => regex.test(l));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no record line matching ${regex}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

await check("text", () => echoCheck("h\u00e9llo w\u00f6rld \u2603 \u{1F600}", (got) => {
  assert(typeof got === "string", `got ${typeof got}`);
  assert(got === "h\u00e9llo w\u00f6rld \u2603 \u{1F600}", `got ${JSON.stringify(got)}`);
}));

await check("binary", () => {
  const sent = new Uint8Array(256 * 3);
  for (let i = 0; i < sent.length; i++) sent[i] = i & 0xff;
  return echoCheck(sent.buffer, (got) => {
    assert(got instanceof ArrayBuffer, `got ${Object.prototype.toString.call(got)}`);
    assert(bytesEqual(new Uint8Array(got), sent), "bytes differ");
  });
});

await check("empty", async () => {
  const c = await connect("/echo");
  try {
    c.ws.send("");
    const text = await c.next("empty text");
    assert(text === "", `text: got ${JSON.stringify(text)}`);
    c.ws.send(new ArrayBuffer(0));
    const bin = await c.next("empty binary");
    assert(bin instanceof ArrayBuffer && bin.byteLength === 0, "binary: not an empty ArrayBuffer");
  } finally {
    await closeAndWait(c);
  }
});

await check("1 MiB", async () => {
  const c = await connect("/echo");
  try {
    const text = "0123456789abcdef".repeat(65536);
    c.ws.send(text);
    const gotText = await c.next("1 MiB text");
    assert(gotText === text, `text: got ${gotText.length} chars`);
    const bin = new Uint8Array(1 << 20);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + (i >> 8)) & 0xff;
    c.ws.send(bin);
    const gotBin = await c.next("1 MiB binary");
    assert(gotBin instanceof ArrayBuffer && bytesEqual(new Uint8Array(gotBin), bin),
           "binary differs");
    return `${text.length} chars and ${bin.length} bytes`;
  } finally {
    await closeAndWait(c);
  }
});

await check("500 in order", async () => {
  const c = await connect("/echo");
  try {
    for (let i = 0; i < 500; i++) c.ws.send(`message ${i}`);
    for (let i = 0; i < 500; i++) {
      const got = await c.next(`message ${i}`);
      assert(got === `message ${i}`, `message ${i}: got ${JSON.stringify(got)}`);
    }
  } finally {
    await closeAndWait(c);
  }
});

await check("subprotocol", async () => {
  const c = await connect("/sub", ["b", "a"]);
  try {
    assert(c.ws.protocol === "a", `ws.protocol is ${JSON.stringify(c.ws.protocol)}, want "a"`);
    return `ws.protocol=${c.ws.protocol}`;
  } finally {
    await closeAndWait(c);
  }
});

await check("client close 4001", async () => {
  const c = await connect("/rec?node=client-close");
  const hello = await c.next("hello");
  assert(hello === "hello", `first message ${JSON.stringify(hello)}`);
  const ev = await closeAndWait(c, 4001, "node says bye");
  assert(ev.code === 4001, `close event code ${ev.code} (the server echoes 4001)`);
  if (recordFile) {
    const line = await waitRecord(/^terminate \d+ 1 4001 node says bye$/);
    return `recorder: ${line}`;
  }
});

await check("server close 4002", async () => {
  const c = await connect("/rec?node=server-close");
  const hello = await c.next("hello");
  assert(hello === "hello", `first message ${JSON.stringify(hello)}`);
  c.ws.send("close:4002:bye");
  const ev = await c.closed();
  assert(ev.code === 4002, `close code ${ev.code}`);
  assert(ev.reason === "bye", `close reason ${JSON.stringify(ev.reason)}`);
  assert(ev.wasClean, "not a clean close");
  return `code=${ev.code} reason=${ev.reason} wasClean=${ev.wasClean}`;
});

clearTimeout(globalTimer);
console.log(`done: ${count} checks, ${failed} failed`);
process.exit(failed ? 1 : 0);
