// Key-value store through @nats-io/kv's Kvm: buckets, put/get/create/update, delete and
// purge markers, keys, history, watch (including a 10,000-key initial replay), TTLs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import {
  assertBytes, cleanup, drain, dropStream, eventually, needs, NS, open, reader, rejectsApi, T, td,
  uniq, within,
} from "./helpers.mjs";

let nc, jsm, js, kvm;
const buckets = [];
async function bucket(opts = {}) {
  const name = uniq("kv");
  buckets.push(name);
  return { name, kv: await kvm.create(name, opts) };
}

before(async () => {
  ({ nc, jsm, js } = await open("kv"));
  kvm = new Kvm(js);
});
after(() => cleanup(nc, jsm, buckets.map((b) => `KV_${b}`)));

describe("kv buckets", () => {
  test("create makes stream KV_<bucket> with the KV config; status; open; list", T, async () => {
    const { name, kv } = await bucket({ history: 5, description: "kv test" });
    const st = await kv.status();
    assert.equal(st.bucket, name);
    assert.equal(st.history, 5);
    assert.equal(st.values, 0);
    assert.equal(st.ttl, 0);
    assert.equal(st.description, "kv test");
    const si = await jsm.streams.info(`KV_${name}`);
    const c = si.config;
    assert.deepEqual(c.subjects, [`$KV.${name}.>`]);
    assert.equal(c.max_msgs_per_subject, 5);
    assert.equal(c.discard, "new");
    assert.equal(c.allow_rollup_hdrs, true);
    assert.equal(c.allow_direct, true);
    assert.equal(c.deny_delete, false);
    assert.equal(c.retention, "limits");

    // creating again binds to the existing bucket
    const again = await kvm.create(name, { history: 5 });
    await again.put("k", "v");
    const opened = await kvm.open(name);
    assert.equal((await opened.get("k")).string(), "v");

    const listed = await drain(await kvm.list());
    assert.ok(listed.some((s) => s.bucket === name), "Kvm.list() includes the bucket");
  });

  test("destroy removes the bucket", T, async () => {
    const { name, kv } = await bucket();
    await kv.put("a", "1");
    assert.equal(await kv.destroy(), true);
    await rejectsApi(jsm.streams.info(`KV_${name}`), 10059);
  });
});

describe("kv entries", () => {
  test("put and get: revision is the stream sequence", T, async () => {
    const { name, kv } = await bucket();
    const r1 = await kv.put("a.b.c", "one");
    const r2 = await kv.put("x", new Uint8Array([0, 1, 2, 255]));
    assert.equal(r1, 1);
    assert.equal(r2, 2);
    const e = await kv.get("a.b.c");
    assert.equal(e.bucket, name);
    assert.equal(e.key, "a.b.c");
    assert.equal(e.string(), "one");
    assert.equal(e.revision, 1);
    assert.equal(e.operation, "PUT");
    assert.equal(e.length, 3);
    assert.ok(e.created instanceof Date && !Number.isNaN(e.created.getTime()));
    assertBytes((await kv.get("x")).value, new Uint8Array([0, 1, 2, 255]));
    assert.equal(await kv.get("missing"), null);
    // overwrite: history 1 keeps only the newest
    const r3 = await kv.put("x", "new");
    assert.equal(r3, 3);
    assert.equal((await kv.get("x")).string(), "new");
    // get by revision
    const old = await kv.get("a.b.c", { revision: 1 });
    assert.equal(old.string(), "one");
    assert.equal(await kv.get("x", { revision: 2 }), null, "revision 2 was replaced");
    // a revision of another key is not returned for this key
    assert.equal(await kv.get("x", { revision: 1 }), null);
    // json()
    await kv.put("j", JSON.stringify({ n: 1 }));
    assert.deepEqual((await kv.get("j")).json(), { n: 1 });
    const st = await kv.status();
    assert.equal(st.values, 3);
  });

  test("create only when absent; update only at the expected revision (10071)", T, async () => {
    const { kv } = await bucket({ history: 3 });
    const r1 = await kv.create("k", "v1");
    await rejectsApi(kv.create("k", "again"), 10071, { description: `wrong last sequence: ${r1}` });
    const r2 = await kv.update("k", "v2", r1);
    assert.equal(r2, r1 + 1);
    await rejectsApi(kv.update("k", "stale", r1), 10071, { description: `wrong last sequence: ${r2}` });
    await rejectsApi(kv.update("nokey", "x", 5), 10071, { description: "wrong last sequence: 0" });
    assert.equal((await kv.get("k")).string(), "v2");
    // put with previousSeq behaves like update
    const r3 = await kv.put("k", "v3", { previousSeq: r2 });
    await rejectsApi(kv.put("k", "v4", { previousSeq: r2 }), 10071);
    // create succeeds again once the key is deleted (the client re-tries with the
    // revision of the delete marker) or purged
    await kv.delete("k");
    const r4 = await kv.create("k", "reborn");
    assert.ok(r4 > r3);
    assert.equal((await kv.get("k")).string(), "reborn");
    await kv.purge("k");
    const r5 = await kv.create("k", "reborn again");
    assert.ok(r5 > r4);
  });

  test("delete leaves a DEL marker; purge leaves only a PURGE marker", T, async () => {
    const { name, kv } = await bucket({ history: 10 });
    await kv.put("d", "1");
    await kv.put("d", "2");
    await kv.delete("d");
    const del = await kv.get("d");
    assert.equal(del.operation, "DEL");
    assert.equal(del.length, 0);
    assert.equal(del.value.length, 0);
    let hist = await drain(await kv.history({ key: "d" }), 10_000, "history d");
    assert.deepEqual(hist.map((e) => e.operation), ["PUT", "PUT", "DEL"]);

    // delete with previousSeq
    await kv.put("e", "1");
    const eRev = (await kv.get("e")).revision;
    await rejectsApi(kv.delete("e", { previousSeq: eRev + 100 }), 10071);
    await kv.delete("e", { previousSeq: eRev });
    assert.equal((await kv.get("e")).operation, "DEL");

    await kv.put("p", "1");
    await kv.put("p", "2");
    await kv.purge("p");
    const pur = await kv.get("p");
    assert.equal(pur.operation, "PURGE");
    hist = await drain(await kv.history({ key: "p" }), 10_000, "history p");
    assert.deepEqual(hist.map((e) => e.operation), ["PURGE"], "rollup removed the older values");
    const raw = await jsm.streams.getMessage(`KV_${name}`, { last_by_subj: `$KV.${name}.p` });
    assert.equal(raw.header.get("KV-Operation"), "PURGE");
    assert.equal(raw.header.get("Nats-Rollup"), "sub");
  });

  test("keys lists live keys, with filters", T, async () => {
    const { kv } = await bucket();
    assert.deepEqual(await drain(await kv.keys(), 10_000, "keys empty"), []);
    for (const k of ["a.1", "a.2", "b.1", "c", "gone", "purged"]) await kv.put(k, k);
    await kv.delete("gone");
    await kv.purge("purged");
    const all = (await drain(await kv.keys(), 10_000, "keys")).sort();
    assert.deepEqual(all, ["a.1", "a.2", "b.1", "c"]);
    const a = (await drain(await kv.keys("a.*"), 10_000, "keys a.*")).sort();
    assert.deepEqual(a, ["a.1", "a.2"]);
    const gt = (await drain(await kv.keys("b.>"), 10_000, "keys b.>")).sort();
    assert.deepEqual(gt, ["b.1"]);
  });

  test("history keeps at most `history` values per key, in order", T, async () => {
    const { kv } = await bucket({ history: 5 });
    for (let i = 1; i <= 8; i++) await kv.put("h", `v${i}`);
    await kv.put("other", "x");
    const hist = await drain(await kv.history({ key: "h" }), 10_000, "history");
    assert.deepEqual(hist.map((e) => e.string()), ["v4", "v5", "v6", "v7", "v8"]);
    assert.deepEqual(hist.map((e) => e.revision), [4, 5, 6, 7, 8]);
    hist.forEach((e) => assert.equal(e.key, "h"));
    const everything = await drain(await kv.history(), 10_000, "history all");
    assert.equal(everything.length, 6);
    assert.equal((await kv.status()).values, 6);
  });
});

describe("kv watch", () => {
  test("watch: initial values, then live updates, deletes and purges", T, async () => {
    const { kv } = await bucket({ history: 5 });
    await kv.put("a", "1");
    await kv.put("b", "1");
    await kv.put("a", "2");
    const w = await kv.watch();
    const r = reader(w, "watch");
    const initial = await r.take(2);
    assert.deepEqual(initial.map((e) => [e.key, e.string(), e.revision]), [["b", "1", 2], ["a", "2", 3]]);
    assert.deepEqual(initial.map((e) => e.isUpdate), [false, true],
      "the last initial value marks the end of initial data");
    await kv.put("c", "1");
    await kv.delete("b");
    await kv.purge("a");
    const live = await r.take(3);
    w.stop();
    assert.deepEqual(live.map((e) => [e.key, e.operation, e.isUpdate]),
      [["c", "PUT", true], ["b", "DEL", true], ["a", "PURGE", true]]);
  });

  test("watch options: key filter, history, updates only, ignoreDeletes", T, async () => {
    const { kv } = await bucket({ history: 5 });
    await kv.put("x.1", "a");
    await kv.put("y.1", "a");
    await kv.put("x.1", "b");
    await kv.put("x.2", "a");

    const wf = await kv.watch({ key: "x.*" });
    const f = await reader(wf).take(2, 10_000, "filtered");
    wf.stop();
    assert.deepEqual(f.map((e) => [e.key, e.string()]), [["x.1", "b"], ["x.2", "a"]]);

    const wh = await kv.watch({ key: "x.1", include: KvWatchInclude.AllHistory });
    const h = await reader(wh).take(2, 10_000, "history watch");
    wh.stop();
    assert.deepEqual(h.map((e) => e.string()), ["a", "b"]);

    const wu = await kv.watch({ include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
    await kv.put("z", "new");
    await kv.delete("x.2");
    await kv.put("z", "newer");
    const u = await reader(wu).take(2, 10_000, "updates only");
    wu.stop();
    assert.deepEqual(u.map((e) => [e.key, e.string(), e.isUpdate]),
      [["z", "new", true], ["z", "newer", true]]);

    // resume from a revision
    const wr = await kv.watch({ key: "x.1", include: KvWatchInclude.AllHistory, resumeFromRevision: 3 });
    const first = await reader(wr).one(10_000, "resume");
    wr.stop();
    assert.equal(first.revision, 3);
  });

  test("watch and keys over several key filters (2.10+)", T, async (t) => {
    // An array of keys becomes filter_subjects, which needs nats-server 2.10.
    const skip = needs(nc, "2.10.0", "multi-key watch (filter_subjects)");
    if (skip) return t.skip(skip);
    const { kv } = await bucket();
    for (const k of ["a.1", "b.1", "c.1", "a.2"]) await kv.put(k, k);
    const w = await kv.watch({ key: ["a.*", "c.1"] });
    const got = await reader(w).take(3, 10_000, "multi-key watch");
    w.stop();
    assert.deepEqual(got.map((e) => e.key), ["a.1", "c.1", "a.2"]);
    assert.equal(got[2].isUpdate, true);
    const ks = (await drain(await kv.keys(["b.*", "c.*"]), 10_000, "multi-key keys")).sort();
    assert.deepEqual(ks, ["b.1", "c.1"]);
  });

  test("watch on an empty bucket reports only updates", T, async () => {
    const { kv } = await bucket();
    const w = await kv.watch();
    await kv.put("first", "1");
    const e = await reader(w).one(10_000, "first update");
    w.stop();
    assert.equal(e.key, "first");
    assert.equal(e.isUpdate, true);
  });

  test("watch over 10,000 keys counts exactly to the end of initial values", { timeout: 60_000 }, async () => {
    const { name, kv } = await bucket();
    const N = 10_000;
    // publish in parallel windows through the JetStream client
    for (let base = 0; base < N; base += 500) {
      const ps = [];
      for (let i = base; i < base + 500; i++) ps.push(kv.put(`k.${i}`, `${i}`));
      await Promise.all(ps);
    }
    assert.equal((await kv.status()).values, N);
    const w = await kv.watch();
    const it = w[Symbol.asyncIterator]();
    let count = 0;
    let sawEnd = false;
    const keys = new Set();
    await within(45_000, (async () => {
      while (!sawEnd) {
        const { value: e, done } = await it.next();
        if (done) break;
        count++;
        keys.add(e.key);
        sawEnd = e.isUpdate;
      }
    })(), `watch of ${N} keys`).catch((err) => {
      err.message += ` (at ${count})`;
      throw err;
    });
    assert.ok(sawEnd);
    assert.equal(count, N, "isUpdate turns true exactly at the last initial value");
    assert.equal(keys.size, N);
    // and keeps running after the initial replay
    await kv.put("k.new", "x");
    const u = (await within(10_000, it.next(), "update after replay")).value;
    w.stop();
    assert.equal(u.key, "k.new");
    assert.equal(u.isUpdate, true);
    const ks = await drain(await kv.keys(), 30_000, "keys over 10k");
    assert.equal(ks.length, N + 1);
    await dropStream(jsm, `KV_${name}`);
  });
});

describe("kv ttl", () => {
  test("bucket ttl (max_age) expires values", T, async () => {
    const { name, kv } = await bucket({ ttl: 1000 });
    assert.equal((await jsm.streams.info(`KV_${name}`)).config.max_age, 1000 * NS);
    assert.equal((await kv.status()).ttl, 1000);
    await kv.put("t", "short lived");
    assert.equal((await kv.get("t")).string(), "short lived");
    await eventually(async () => (await kv.get("t")) === null, 10_000, "value expired");
    assert.equal((await kv.status()).values, 0);
  });

  test("per-key TTL with markerTTL (2.11+)", T, async (t) => {
    // Per-message TTL (Nats-TTL, allow_msg_ttl) and subject delete markers
    // (subject_delete_marker_ttl) were added in nats-server 2.11.
    const skip = needs(nc, "2.11.0", "per-key TTL / limit markers");
    if (skip) return t.skip(skip);
    const { name, kv } = await bucket({ markerTTL: 2000 });
    const si = await jsm.streams.info(`KV_${name}`);
    assert.equal(si.config.allow_msg_ttl, true);
    assert.equal(si.config.subject_delete_marker_ttl, 2000 * NS);
    assert.equal((await kv.status()).markerTTL, 2000);
    await kv.create("ephemeral", "bye", "1s");
    await kv.put("stays", "here");
    const raw = await jsm.streams.getMessage(`KV_${name}`, { last_by_subj: `$KV.${name}.ephemeral` });
    assert.equal(raw.header.get("Nats-TTL"), "1s");
    await eventually(async () => {
      const e = await kv.get("ephemeral");
      return e === null || e.operation !== "PUT";
    }, 10_000, "key expired by its own TTL");
    assert.equal((await kv.get("stays")).string(), "here");
    // purge with a TTL on the marker
    await kv.purge("stays", { ttl: "1s" });
    assert.equal((await kv.get("stays")).operation, "PURGE");
    await eventually(async () => (await kv.get("stays")) === null, 10_000, "purge marker expired");
  });
});

describe("kv misc", () => {
  test("values are bytes; maxValueSize is enforced", T, async () => {
    const { kv } = await bucket({ maxValueSize: 16 });
    await kv.put("small", "0123456789abcdef");
    await rejectsApi(kv.put("big", "0123456789abcdefX"), 10054);
    assert.equal(td.decode((await kv.get("small")).value), "0123456789abcdef");
  });

  test("purgeDeletes removes old delete markers", T, async () => {
    const { kv } = await bucket({ history: 5 });
    await kv.put("a", "1");
    await kv.put("b", "1");
    await kv.delete("a");
    await kv.purge("b");
    // olderMillis 0: every marker is old enough to be removed entirely
    const r = await kv.purgeDeletes(0);
    assert.ok(r.purged >= 2, `purged ${r.purged}`);
    assert.equal(await kv.get("a"), null);
    assert.equal(await kv.get("b"), null);
    assert.equal((await kv.status()).values, 0);
  });
});
