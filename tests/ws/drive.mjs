// Drive headless Chromium through the DevTools protocol: open a page, poll the text of
// an element until it matches, print the DOM text, quit. Bounded by --timeout seconds.
//
//   node drive.mjs --url URL --selector '#result' --expect TEXT [--timeout 45]
//                  [--chromium /usr/bin/chromium]
//
// Exit 0 when the element's text contains TEXT, 1 otherwise (the page's #status and
// #result are printed either way). Chromium runs as root with --no-sandbox, in its own
// temporary profile, and is killed by its PID at the end. Needs a global WebSocket
// (Node 22, or Node 20 with --experimental-websocket).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const url = args.url;
const selector = args.selector || "#result";
const expect = args.expect;
const timeoutMs = Number(args.timeout || 45) * 1000;
const chromiumBin = args.chromium || "chromium";
if (!url || !expect) {
  console.error("usage: drive.mjs --url URL --expect TEXT [--selector S] [--timeout S]");
  process.exit(2);
}
if (typeof WebSocket !== "function") {
  console.error("drive.mjs: no global WebSocket (use Node 22 or --experimental-websocket)");
  process.exit(2);
}

const deadline = Date.now() + timeoutMs;
const profile = mkdtempSync(join(tmpdir(), "ember-chromium-"));
const chrome = spawn(
  chromiumBin,
  [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    "about:blank",
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
let stderrText = "";
let done = false;

function finish(code, msg) {
  if (done) return;
  done = true;
  if (msg) console.error(msg);
  try {
    chrome.kill("SIGKILL");
  } catch {}
  setTimeout(() => {
    try {
      rmSync(profile, { recursive: true, force: true });
    } catch {}
    process.exit(code);
  }, 300);
}

const overall = setTimeout(() => finish(1, `drive.mjs: timed out after ${timeoutMs} ms`), timeoutMs);
chrome.on("exit", (c, sig) => finish(1, `drive.mjs: chromium exited early (${c ?? sig})\n${stderrText.slice(-2000)}`));

const devtools = new Promise((resolve) => {
  chrome.stderr.on("data", (d) => {
    stderrText += d.toString();
    const m = stderrText.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
});

function cdp(wsUrl) {
  const ws = new WebSocket(wsUrl);
  let id = 0;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  };
  const opened = new Promise((res, rej) => {
    ws.onopen = res;
    ws.onerror = () => rej(new Error("devtools websocket error"));
  });
  return {
    opened,
    send(method, params = {}, sessionId) {
      const msg = { id: ++id, method, params };
      if (sessionId) msg.sessionId = sessionId;
      ws.send(JSON.stringify(msg));
      return new Promise((res) => pending.set(msg.id, res));
    },
    close() {
      ws.close();
    },
  };
}

async function main() {
  const wsUrl = await devtools;
  const c = cdp(wsUrl);
  await c.opened;
  const t = await c.send("Target.createTarget", { url });
  const targetId = t.result.targetId;
  const a = await c.send("Target.attachToTarget", { targetId, flatten: true });
  const sessionId = a.result.sessionId;
  const expr = `JSON.stringify({status: (document.querySelector('#status')||{}).textContent,
     text: (document.querySelector(${JSON.stringify(selector)})||{}).textContent})`;
  let last = null;
  while (Date.now() < deadline) {
    const r = await c.send("Runtime.evaluate", { expression: expr, returnByValue: true }, sessionId);
    const v = r.result && r.result.result && r.result.result.value;
    if (v) {
      last = JSON.parse(v);
      if (last.text && last.text.includes(expect)) {
        console.log(`page status: ${last.status}`);
        console.log(`page ${selector}: ${last.text}`);
        c.close();
        clearTimeout(overall);
        return finish(0);
      }
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  console.log(`page status: ${last && last.status}`);
  console.log(`page ${selector}: ${last && last.text}`);
  finish(1, `drive.mjs: "${expect}" did not appear`);
}

main().catch((e) => finish(1, `drive.mjs: ${e.stack || e}`));
