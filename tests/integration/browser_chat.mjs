// Drives Debian's Chromium (headless, through playwright-core) on the chat
// plugin's browser client (plugins/chat/chat.html, opened as a file) across
// a restart of websockd, for test_chat_client.py:
//
//   node browser_chat.mjs CHAT_HTML PORT
//
// Two pages (alice, bob) join room "rr" on ws://127.0.0.1:PORT/chat and
// exchange a line; a third asks for a room the plugin refuses (1008). Prints
// {"step":"up"} and waits for one line on stdin: the test has restarted
// websockd on the same port meanwhile. Then both pages must be connected
// again by themselves and exchange another line. Prints one JSON line with
// what each page saw (close codes, waits before reconnecting); exits
// non-zero on the first failed check. Bounded: every wait has a timeout and
// the whole run 90 s.
import assert from "node:assert/strict";
import readline from "node:readline";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [chatHtml, port] = process.argv.slice(2);
assert.ok(chatHtml && port, "usage: browser_chat.mjs CHAT_HTML PORT");
const CHROMIUM = process.env.WSH_CHROMIUM || "/usr/bin/chromium";
const STEP = 20000;

const overall = setTimeout(() => {
  console.error("browser_chat.mjs: over 90 s, giving up");
  process.exit(3);
}, 90000);

const errors = [];

async function open(context, room, name) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  const u = pathToFileURL(chatHtml);
  u.searchParams.set("server", `ws://127.0.0.1:${port}/chat`);
  u.searchParams.set("room", room);
  u.searchParams.set("name", name);
  await page.goto(u.href, { timeout: STEP });
  return page;
}

const state = (page) => page.evaluate(() => ({ ...window.chat }));

async function waitOpen(page, opens) {
  await page.waitForFunction(
    (n) => window.chat.state === "open" && window.chat.opens >= n, opens,
    { timeout: STEP });
}

async function say(from, to, text, user) {
  await from.fill("#text", text);
  await from.click("#send");
  const want = `${user}: ${text}`;
  await to.waitForFunction(
    (w) => [...document.querySelectorAll("#log li")].some(
      (li) => li.textContent === w), want, { timeout: STEP });
}

const nextLine = (() => {
  const rl = readline.createInterface({ input: process.stdin });
  const it = rl[Symbol.asyncIterator]();
  return async () => (await it.next()).value;
})();

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext();
  const alice = await open(context, "rr", "alice");
  const bob = await open(context, "rr", "bob");
  const bad = await open(context, "bad room!", "eve");
  await waitOpen(alice, 1);
  await waitOpen(bob, 1);
  await say(alice, bob, "before the restart", "alice");
  await bad.waitForFunction(() => window.chat.state === "closed",
                            undefined, { timeout: STEP });
  console.log(JSON.stringify({ step: "up" }));

  assert.equal(await nextLine(), "restarted");
  await waitOpen(alice, 2);
  await waitOpen(bob, 2);
  await say(bob, alice, "after the restart", "bob");
  await say(alice, bob, "and back", "alice");

  const out = { alice: await state(alice), bob: await state(bob),
                bad: await state(bad), errors };
  assert.deepEqual(errors, []);
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
  clearTimeout(overall);
}
