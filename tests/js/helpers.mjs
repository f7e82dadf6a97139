// Shared helpers for the JavaScript-client interop suite.
//
// Every test connects to the server named by NATS_URL (tests/js/run.sh sets it) with the
// official @nats-io clients, exactly as an application would. Names are unique per run so
// the suite can share a server with other users, and every test removes what it created.
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";

export const NATS_URL = process.env.NATS_URL || "127.0.0.1:4222";

// Per-test bound used with node:test's { timeout }. Generous: it only catches hangs.
export const T = { timeout: 30_000 };

export async function open(name = "ember-js-interop") {
  const nc = await connect({ servers: NATS_URL, name, timeout: 5000 });
  try {
    // checks $JS.API.INFO, so a server without JetStream fails here
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    return { nc, jsm, js };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

let counter = 0;
const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`.toUpperCase();
// A name valid for streams, consumers, KV buckets and object stores.
export function uniq(prefix) {
  counter++;
  return `${prefix}_${runId}_${counter}`;
}

// Parses "2.9.10" / "2.11.0-RC.1" and compares with a minimum "major.minor.patch".
export function serverAtLeast(nc, min) {
  const parse = (v) => v.split("-")[0].split(".").map((x) => parseInt(x, 10) || 0);
  const have = parse(nc.info?.version ?? "0.0.0");
  const want = parse(min);
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i];
  }
  return true;
}

// Skip text for version-gated cases: node:test prints it in the report.
export function needs(nc, min, what) {
  return serverAtLeast(nc, min)
    ? false
    : `${what} needs server >= ${min} (server is ${nc.info?.version})`;
}

// Rejects if `p` has not settled within `ms`. Never used to assert on speed: only to turn
// a hang into a failure with a useful label.
export function within(ms, p, label = "operation") {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Polls `fn` until it returns a truthy value; fails after `ms`.
export async function eventually(fn, ms = 10_000, label = "condition", every = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await delay(every);
  }
  throw new Error(`${label}: not reached within ${ms} ms (last value ${JSON.stringify(last)})`);
}

export function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Asserts that `p` rejects with a JetStream API error carrying `errCode` (and the http-ish
// `status` and description prefix when given). Returns the error.
export async function rejectsApi(p, errCode, { status, description } = {}) {
  let err;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected JetStream API error ${errCode}, but the call succeeded`);
  assert.ok(
    err instanceof JetStreamApiError,
    `expected JetStreamApiError ${errCode}, got ${err?.name}: ${err?.message}`,
  );
  assert.equal(err.code, errCode, `err_code (description: ${err.message})`);
  if (status !== undefined) assert.equal(err.status, status, "error.code");
  if (description !== undefined) {
    if (description instanceof RegExp) assert.match(err.message, description);
    else assert.equal(err.message, description);
  }
  return err;
}

// Collects up to `n` items from an async iterator, bounded by `ms`.
export async function take(iter, n, ms = 10_000, label = "iterator") {
  const out = [];
  await within(ms, (async () => {
    if (n <= 0) return;
    for await (const v of iter) {
      out.push(v);
      if (out.length >= n) break;
    }
  })(), `${label} (got ${out.length} of ${n})`).catch((e) => {
    e.message += ` (got ${out.length} of ${n})`;
    throw e;
  });
  return out;
}

// Drains an iterator that ends by itself (fetch, keys, history, list), bounded by `ms`.
export async function drain(iter, ms = 10_000, label = "iterator") {
  const out = [];
  await within(ms, (async () => {
    for await (const v of iter) out.push(v);
  })(), label);
  return out;
}

export const td = new TextDecoder();
export const te = new TextEncoder();
export const NS = 1_000_000; // nanoseconds per millisecond

// Deletes a stream if it exists; used in cleanup paths.
export async function dropStream(jsm, name) {
  try {
    await jsm.streams.delete(name);
  } catch {
    // already gone
  }
}

// Publishes `n` messages to subject(s) chosen by `subjFn(i)` and returns the acks in order.
export async function publishN(js, n, subjFn, dataFn = (i) => `m${i}`, parallel = 64) {
  const acks = new Array(n);
  for (let base = 0; base < n; base += parallel) {
    const ps = [];
    for (let i = base; i < Math.min(n, base + parallel); i++) {
      ps.push(js.publish(subjFn(i), dataFn(i)).then((pa) => (acks[i] = pa)));
    }
    await Promise.all(ps);
  }
  return acks;
}

// Asserts byte equality regardless of Buffer/Uint8Array flavour.
export function assertBytes(actual, expected, msg = "bytes differ") {
  assert.ok(actual, `${msg}: no data`);
  assert.equal(actual.length, expected.length, `${msg}: length`);
  assert.ok(Buffer.compare(Buffer.from(actual.buffer, actual.byteOffset, actual.length),
    Buffer.from(expected.buffer, expected.byteOffset, expected.length)) === 0, msg);
}

// A reader over one async iterator (nats.js iterators can be iterated only once, and
// `break` in for-await ends them): call take() as often as needed.
export function reader(iterable, label = "iterator") {
  const it = iterable[Symbol.asyncIterator]();
  return {
    async take(n, ms = 10_000, what = label) {
      const out = [];
      await within(ms, (async () => {
        while (out.length < n) {
          const r = await it.next();
          if (r.done) throw new Error(`${what}: iterator ended after ${out.length} of ${n}`);
          out.push(r.value);
        }
      })(), `${what} (got ${out.length} of ${n})`);
      return out;
    },
    async one(ms = 10_000, what = label) {
      return (await this.take(1, ms, what))[0];
    },
  };
}

// after() hook body: deletes the named streams and closes the connection, each step
// bounded so a misbehaving server cannot hang the run.
export async function cleanup(nc, jsm, streams) {
  if (!nc) return;
  for (const s of streams) {
    await within(5000, dropStream(jsm, s), `delete stream ${s}`).catch(() => {});
  }
  await within(5000, nc.close(), "close").catch(() => {});
}
