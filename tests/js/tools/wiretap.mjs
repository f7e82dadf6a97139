#!/usr/bin/env node
// A logging TCP proxy for the NATS client protocol: shows exactly what a client sends and
// what the server answers (CONNECT, SUB, PUB/HPUB with headers and JSON bodies, MSG/HMSG
// with status lines), for comparing ember-server with nats-server.
//
//   node tests/js/tools/wiretap.mjs <listen-port> <upstream-host:port> [log-file]
//   NATS_URL=nats://127.0.0.1:<listen-port> node --test tests/js/kv.test.mjs
//
// PING/PONG are omitted; payloads are shown up to 400 bytes (binary as a length).
import net from "node:net";
import fs from "node:fs";

const [listenPort, upstream, logFile] = process.argv.slice(2);
if (!listenPort || !upstream) {
  console.error("usage: wiretap.mjs <listen-port> <upstream-host:port> [log-file]");
  process.exit(2);
}
const [uhost, uport] = upstream.split(":");
const out = logFile ? fs.createWriteStream(logFile) : process.stdout;
let connId = 0;

function show(buf) {
  if (buf.length === 0) return "";
  const s = buf.toString("utf8");
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0e-\x1f]/.test(s) || s.includes("\ufffd")) return `<${buf.length} bytes>`;
  return s.length > 400 ? `${s.slice(0, 400)}...<${buf.length} bytes>` : s;
}

// Streaming parser for both directions; calls emit(text) per protocol operation.
function parser(emit) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const eol = buf.indexOf("\r\n");
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString("utf8");
      const parts = line.split(" ").filter(Boolean);
      const op = (parts[0] || "").toUpperCase();
      let need = 0;
      let hsize = 0;
      if (op === "PUB" || op === "MSG") {
        need = parseInt(parts.at(-1), 10);
      } else if (op === "HPUB" || op === "HMSG") {
        hsize = parseInt(parts.at(-2), 10);
        need = parseInt(parts.at(-1), 10);
      }
      if (op === "PUB" || op === "MSG" || op === "HPUB" || op === "HMSG") {
        if (buf.length < eol + 2 + need + 2) return;
        const body = buf.subarray(eol + 2, eol + 2 + need);
        const hdr = body.subarray(0, hsize).toString("utf8").trimEnd().replace(/\r\n/g, " | ");
        const data = body.subarray(hsize);
        emit(`${line}${hsize ? `\n      hdr: ${hdr}` : ""}${data.length ? `\n      data: ${show(data)}` : ""}`);
        buf = buf.subarray(eol + 2 + need + 2);
      } else {
        if (op !== "PING" && op !== "PONG" && op !== "+OK") emit(line);
        buf = buf.subarray(eol + 2);
      }
    }
  };
}

net.createServer((client) => {
  const id = ++connId;
  const t0 = Date.now();
  const log = (dir) => (text) => out.write(`[${id} ${String(Date.now() - t0).padStart(6)}ms] ${dir} ${text}\n`);
  const server = net.connect(+uport, uhost);
  const c2s = parser(log("C->S"));
  const s2c = parser(log("S->C"));
  client.on("data", (d) => {
    c2s(d);
    server.write(d);
  });
  server.on("data", (d) => {
    s2c(d);
    client.write(d);
  });
  const close = () => {
    client.destroy();
    server.destroy();
  };
  client.on("close", close);
  server.on("close", close);
  client.on("error", close);
  server.on("error", close);
}).listen(+listenPort, "127.0.0.1", () => {
  console.error(`wiretap: 127.0.0.1:${listenPort} -> ${upstream}`);
});
