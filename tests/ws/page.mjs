// The browser side of scripts/test-ws.sh: connect to Ember's websocket port with
// @nats-io/nats-core's wsconnect, subscribe, tell the C host we are ready, and show the
// message the host publishes in #result (read back through chromium --dump-dom).
import { wsconnect } from "@nats-io/nats-core";

const out = (id, text) => {
  document.getElementById(id).textContent = text;
};

async function main() {
  const params = new URLSearchParams(location.search);
  const port = params.get("port");
  const nc = await wsconnect({ servers: `ws://127.0.0.1:${port}`, timeout: 5000 });
  out("status", "connected");
  const sub = nc.subscribe("browser.hello", { max: 1 });
  await nc.flush();
  nc.publish("browser.ready", "subscribed");
  for await (const m of sub) {
    out("result", `received ${m.subject}: ${m.string()}`);
  }
  nc.publish("browser.done", "ok");
  await nc.drain();
  out("status", "closed");
}

main().catch((err) => out("status", `error: ${err && err.message ? err.message : err}`));
