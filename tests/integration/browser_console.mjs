// Drives Debian's Chromium (headless, through playwright-core) against a
// running websockd started with --devconsole, for test_console.py:
//
//   node browser_console.mjs PORT ARTIFACT_DIR
//
// The console page at /echo connects, sends a text and a binary message,
// shows both echoes, closes with 4001 and shows the code; /status lists the
// routes (a draining generation and the reload the test made included) and
// its graphs take new points after traffic. Screenshots go to
// ARTIFACT_DIR/console.png and status.png. Every request the pages make must
// go to 127.0.0.1:PORT, and no page may log an error (a CSP violation would).
// Prints one JSON line with what it saw; exits non-zero on the first failed
// check. Bounded: every wait has a timeout and the whole run 90 s.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [port, artifacts] = process.argv.slice(2);
assert.ok(port && artifacts, "usage: browser_console.mjs PORT ARTIFACT_DIR");
const origin = `http://127.0.0.1:${port}`;
const CHROMIUM = process.env.WSH_CHROMIUM || "/usr/bin/chromium";
const STEP = 15000;

const overall = setTimeout(() => {
  console.error("browser_console.mjs: over 90 s, giving up");
  process.exit(3);
}, 90000);

const seen = { requests: [], websockets: [], errors: [] };

function local(url) {
  const u = new URL(url);
  return u.hostname === "127.0.0.1" && u.port === String(port) &&
    ["http:", "ws:"].includes(u.protocol);
}

function watch(page) {
  page.on("request", (r) => seen.requests.push(r.url()));
  page.on("websocket", (ws) => seen.websockets.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error") seen.errors.push(m.text());
  });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
}

async function consolePage(context) {
  const page = await context.newPage();
  watch(page);
  const resp = await page.goto(`${origin}/echo`, { timeout: STEP });
  assert.equal(resp.status(), 200, "GET /echo with --devconsole");
  const h = resp.headers();
  assert.match(h["content-type"], /^text\/html/);
  assert.match(h["content-security-policy"], /default-src 'none'/);
  assert.match(h["content-security-policy"], /script-src 'sha256-/);
  assert.equal(h["x-content-type-options"], "nosniff");
  assert.equal(h["cache-control"], "no-store");

  await page.click("#connect");
  await page.waitForSelector("#state.state-open", { timeout: STEP });
  const connectTime = await page.textContent("#connect-time");
  assert.match(connectTime, /^\d+(\.\d+)? ms$/);

  const text = "hello from chromium \u00e9\u2713";
  await page.fill("#payload", text);
  await page.click("#send");
  const textRow = page.locator("#log tr.in[data-kind=text] td.data");
  await textRow.first().waitFor({ timeout: STEP });
  assert.equal(await textRow.first().textContent(), text);
  const size = await page.locator("#log tr.in[data-kind=text] td.n").first()
    .textContent();
  assert.equal(Number(size), Buffer.byteLength(text));
  assert.match(await page.textContent("#rtt"), /^\d+(\.\d+)? ms$/);

  await page.selectOption("#mode", "hex");
  await page.fill("#payload", "00 01 fe ff 7f");
  await page.click("#send");
  const binRow = page.locator("#log tr.in[data-kind=binary] td.data");
  await binRow.first().waitFor({ timeout: STEP });
  assert.equal(await binRow.first().textContent(), "00 01 fe ff 7f");

  await page.selectOption("#mode", "base64");
  await page.fill("#payload", "AQL/");
  await page.click("#send");
  await page.locator("#log tr.in[data-kind=binary]").nth(1)
    .waitFor({ timeout: STEP });
  assert.equal(await binRow.nth(1).textContent(), "01 02 ff");

  await page.selectOption("#mode", "hex");
  await page.fill("#payload", "0g");
  await page.click("#send");
  assert.match(await page.textContent("#error"), /hex/);

  await page.fill("#close-code", "4001");
  await page.fill("#close-reason", "done here");
  await page.click("#disconnect");
  await page.waitForSelector("#closed[data-code]", { timeout: STEP });
  const closed = await page.textContent("#closed");
  assert.equal(await page.getAttribute("#closed", "data-code"), "4001");
  assert.match(closed, /^4001 done here$/);
  const rows = await page.locator("#log tr").count();
  await page.screenshot({ path: path.join(artifacts, "console.png"),
                          fullPage: true });
  await page.close();
  return { connectTime, closed, rows };
}

async function points(page, id) {
  return page.getAttribute(id, "data-points");
}

async function statusPage(context) {
  const page = await context.newPage();
  watch(page);
  const resp = await page.goto(`${origin}/status`, { timeout: STEP });
  assert.equal(resp.status(), 200, "GET /status");
  assert.equal(resp.headers()["cache-control"], "no-store");
  await page.waitForSelector('#routes tr[data-route="/echo"]',
                             { timeout: STEP });
  const routes = await page.$$eval("#routes tr[data-route]",
    (trs) => trs.map((tr) => [tr.dataset.route, tr.dataset.state]));
  // two samples, so that a rate has been plotted
  await page.waitForFunction(() =>
    Number(document.getElementById("graph-messages").dataset.samples) >= 2,
    null, { timeout: STEP });
  const before = await points(page, "#graph-messages");
  const connsBefore = await points(page, "#graph-connections");
  const reloads = await page.$$eval("#reload-history tr[data-result]",
    (trs) => trs.map((tr) => tr.dataset.result));

  // traffic from another tab: the console page, 30 echoes, left open
  const other = await context.newPage();
  watch(other);
  await other.goto(`${origin}/echo`, { timeout: STEP });
  await other.click("#connect");
  await other.waitForSelector("#state.state-open", { timeout: STEP });
  await other.evaluate(async () => {
    for (let i = 0; i < 30; i++)
      document.getElementById("send").click();
  });
  await other.waitForFunction(() =>
    document.querySelectorAll("#log tr.in").length >= 30, null,
    { timeout: STEP });

  // the graphs take the traffic and the one more open connection
  const base = Number(connsBefore.split(",").pop());
  await page.waitForFunction((b) => {
    const m = document.getElementById("graph-messages").dataset.points;
    const c = document.getElementById("graph-connections").dataset.points;
    const max = (s) => Math.max(...s.split(/[;,]/).filter(Boolean).map(Number));
    return max(m) > 0 && Number(c.split(",").pop()) === b + 1;
  }, base, { timeout: STEP });
  const after = await points(page, "#graph-messages");
  const connsAfter = await points(page, "#graph-connections");
  assert.notEqual(after, before, "the messages graph did not change");
  assert.notEqual(connsAfter, connsBefore,
                  "the connections graph did not change");
  const rateIn = await page.textContent("#rate-in");
  await page.screenshot({ path: path.join(artifacts, "status.png"),
                          fullPage: true });
  await other.close();
  await page.close();
  return { routes, reloads, before, after, connsBefore, connsAfter, rateIn };
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "websockd-chromium-"));
  let context;
  try {
    // a persistent context is how Playwright takes a --user-data-dir: a
    // fresh one per run
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      viewport: { width: 1200, height: 800 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             // no name resolves: nothing can leave loopback even by mistake
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    });
    // every request the pages make is checked, and one elsewhere refused
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (local(url)) return route.continue();
      seen.requests.push(url);
      return route.abort();
    });
    const console_ = await consolePage(context);
    const status = await statusPage(context);
    const outside = [...seen.requests, ...seen.websockets]
      .filter((u) => !local(u));
    assert.deepEqual(outside, [], "requests outside the server");
    assert.deepEqual(seen.errors, [], "errors in the pages' consoles");
    assert.ok(seen.websockets.length >= 2, "the pages opened WebSockets");
    console.log(JSON.stringify({ console: console_, status,
      requests: [...new Set(seen.requests)], websockets: seen.websockets }));
  } finally {
    if (context) await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(overall);
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  console.error("seen:", JSON.stringify(seen));
  process.exit(1);
});
