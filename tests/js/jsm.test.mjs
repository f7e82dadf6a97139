// JetStream manager: account info, stream CRUD, listing, purge, message get/delete and
// direct get, through @nats-io/jetstream's jetstreamManager() as an application uses it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import {
  cleanup, drain, needs, NS, open, publishN, rejectsApi, T, uniq,
} from "./helpers.mjs";

let nc, jsm, js;
const created = [];
async function mkStream(cfg) {
  const si = await jsm.streams.add(cfg);
  created.push(cfg.name);
  return si;
}

before(async () => {
  ({ nc, jsm, js } = await open("jsm"));
});
after(() => cleanup(nc, jsm, created));

describe("account", () => {
  test("account info has the documented shape and counts streams", T, async () => {
    const before = await jsm.getAccountInfo();
    assert.equal(before.type, "io.nats.jetstream.api.v1.account_info_response");
    for (const k of ["memory", "storage", "streams", "consumers"]) {
      assert.equal(typeof before[k], "number", k);
    }
    for (const k of ["max_memory", "max_storage", "max_streams", "max_consumers"]) {
      assert.equal(typeof before.limits[k], "number", `limits.${k}`);
    }
    assert.equal(typeof before.api.total, "number");
    assert.equal(typeof before.api.errors, "number");

    const s = uniq("ACC");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await js.publish(`${s}.x`, "hello");
    const afterAdd = await jsm.getAccountInfo();
    assert.equal(afterAdd.streams, before.streams + 1);
    assert.ok(afterAdd.storage > before.storage, "file storage grows after a publish");
    assert.ok(afterAdd.api.total > before.api.total, "api.total counts requests");
    await jsm.streams.delete(s);
    const afterDel = await jsm.getAccountInfo();
    assert.equal(afterDel.streams, before.streams);
  });
});

describe("streams", () => {
  test("add echoes the config with defaults filled in", T, async () => {
    const s = uniq("ADD");
    const si = await mkStream({ name: s, subjects: [`${s}.>`] });
    assert.equal(si.config.name, s);
    assert.deepEqual(si.config.subjects, [`${s}.>`]);
    assert.equal(si.config.retention, "limits");
    assert.equal(si.config.storage, "file");
    assert.equal(si.config.discard, "old");
    assert.equal(si.config.num_replicas, 1);
    assert.equal(si.config.max_msgs, -1);
    assert.equal(si.config.max_bytes, -1);
    assert.equal(si.config.max_msg_size, -1);
    assert.equal(si.config.max_msgs_per_subject, -1);
    assert.equal(si.config.max_consumers, -1);
    assert.equal(si.config.max_age, 0);
    assert.equal(si.config.duplicate_window, 120_000 * NS, "duplicate_window defaults to 2m");
    assert.equal(si.state.messages, 0);
    assert.equal(si.state.bytes, 0);
    assert.equal(si.state.first_seq, 0);
    assert.equal(si.state.last_seq, 0);
    assert.equal(si.state.consumer_count, 0);
    assert.ok(!Number.isNaN(Date.parse(si.created)), "created is a timestamp");

    // duplicate_window is clamped to max_age when that is smaller
    const s2 = uniq("ADDAGE");
    const si2 = await mkStream({ name: s2, subjects: [`${s2}.>`], max_age: 30_000 * NS });
    assert.equal(si2.config.max_age, 30_000 * NS);
    assert.equal(si2.config.duplicate_window, 30_000 * NS);

    // memory storage is echoed
    const s3 = uniq("ADDMEM");
    const si3 = await mkStream({ name: s3, subjects: [`${s3}.>`], storage: StorageType.Memory });
    assert.equal(si3.config.storage, "memory");
  });

  test("add is idempotent for an identical config and rejects a different one", T, async () => {
    const s = uniq("IDEM");
    const cfg = { name: s, subjects: [`${s}.>`] };
    const a = await mkStream({ ...cfg });
    const b = await jsm.streams.add({ ...cfg });
    assert.equal(b.config.name, s);
    assert.equal(b.created, a.created, "same stream returned");
    await rejectsApi(jsm.streams.add({ ...cfg, max_msgs: 10 }), 10058, {
      status: 400,
      description: "stream name already in use with a different configuration",
    });
  });

  test("overlapping subjects are rejected with 10065", T, async () => {
    const s = uniq("OVL");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await rejectsApi(jsm.streams.add({ name: uniq("OVL2"), subjects: [`${s}.a`] }), 10065, {
      status: 400,
      description: "subjects overlap with an existing stream",
    });
  });

  test("info, update and delete; missing streams give 10059 'stream not found'", T, async () => {
    const s = uniq("UPD");
    await mkStream({ name: s, subjects: [`${s}.a`] });
    const si = await jsm.streams.info(s);
    assert.equal(si.config.name, s);

    const up = await jsm.streams.update(s, {
      subjects: [`${s}.a`, `${s}.b`],
      max_msgs: 100,
      description: "updated",
    });
    assert.deepEqual(up.config.subjects, [`${s}.a`, `${s}.b`]);
    assert.equal(up.config.max_msgs, 100);
    assert.equal(up.config.description, "updated");
    const pa = await js.publish(`${s}.b`, "now routed");
    assert.equal(pa.stream, s);
    const info = await jsm.streams.info(s);
    assert.equal(info.config.max_msgs, 100);
    assert.equal(info.state.messages, 1);

    // storage type cannot change
    await rejectsApi(jsm.streams.update(s, { storage: StorageType.Memory }), 10052, {
      description: /storage type/,
    });

    assert.equal(await jsm.streams.delete(s), true);
    // KV and obj compare this exact text (kv.ts / objectstore.ts init)
    await rejectsApi(jsm.streams.info(s), 10059, { status: 404, description: "stream not found" });
    await rejectsApi(jsm.streams.delete(s), 10059, { status: 404 });
    await rejectsApi(jsm.streams.update(s, { max_msgs: 1 }), 10059);
  });

  test("names and list page through streams; subject filter and find()", T, async () => {
    const prefix = uniq("LST");
    const names = [`${prefix}A`, `${prefix}B`, `${prefix}C`];
    for (const n of names) await mkStream({ name: n, subjects: [`${n}.>`] });

    const all = await drain(await jsm.streams.names());
    for (const n of names) assert.ok(all.includes(n), `names() includes ${n}`);

    const infos = await drain(await jsm.streams.list());
    for (const n of names) {
      const si = infos.find((i) => i.config.name === n);
      assert.ok(si, `list() includes ${n}`);
      assert.equal(si.state.messages, 0);
    }

    const filtered = await drain(await jsm.streams.names(`${names[1]}.x`));
    assert.deepEqual(filtered, [names[1]]);
    const filteredList = await drain(await jsm.streams.list(`${names[2]}.>`));
    assert.deepEqual(filteredList.map((i) => i.config.name), [names[2]]);

    assert.equal(await jsm.streams.find(`${names[0]}.y.z`), names[0]);
    await assert.rejects(jsm.streams.find(`nomatch.${prefix}`));
  });

  test("info with subjects_filter reports per-subject counts", T, async () => {
    const s = uniq("SUBJ");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await publishN(js, 6, (i) => `${s}.${i % 3 === 0 ? "a" : "b"}`);
    const si = await jsm.streams.info(s, { subjects_filter: ">" });
    assert.equal(si.state.num_subjects, 2);
    assert.deepEqual(si.state.subjects, { [`${s}.a`]: 2, [`${s}.b`]: 4 });
    const only = await jsm.streams.info(s, { subjects_filter: `${s}.a` });
    assert.deepEqual(only.state.subjects, { [`${s}.a`]: 2 });
    const plain = await jsm.streams.info(s);
    assert.equal(plain.state.subjects, undefined, "no subjects without a filter");
  });

  test("purge: all, by filter, keep, seq, filter+keep", T, async () => {
    const s = uniq("PRG");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    const sub = (i) => `${s}.${i % 2 ? "odd" : "even"}`;

    // 10 messages: seq 1..10; even subjects at seq 1,3,5,7,9 (i = 0,2,4,6,8)
    await publishN(js, 10, sub);
    let r = await jsm.streams.purge(s, { filter: `${s}.odd` });
    assert.equal(r.success, true);
    assert.equal(r.purged, 5);
    let si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 5);
    assert.equal(si.state.last_seq, 10);

    r = await jsm.streams.purge(s, { filter: `${s}.even`, keep: 2 });
    assert.equal(r.purged, 3);
    si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 2);
    assert.equal(si.state.first_seq, 7, "keep leaves the newest");

    r = await jsm.streams.purge(s);
    assert.equal(r.purged, 2);
    si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 0);
    assert.equal(si.state.last_seq, 10, "purge keeps the last sequence");
    assert.equal(si.state.first_seq, 11, "first_seq is last_seq+1 after a full purge");

    // seq purges everything *below* seq
    await publishN(js, 10, sub); // seq 11..20
    r = await jsm.streams.purge(s, { seq: 15 });
    assert.equal(r.purged, 4);
    si = await jsm.streams.info(s);
    assert.equal(si.state.first_seq, 15);
    assert.equal(si.state.messages, 6);

    // keep without filter
    r = await jsm.streams.purge(s, { keep: 1 });
    assert.equal(r.purged, 5);
    si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 1);
    assert.equal(si.state.first_seq, 20);

    // filter + seq: seq 20 (odd) is left, 21..30 added; purging odd below 26 removes
    // 20, 22 and 24 but not 26
    await publishN(js, 10, sub);
    r = await jsm.streams.purge(s, { filter: `${s}.odd`, seq: 26 });
    assert.equal(r.purged, 3);
    si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 8);
    assert.equal(si.state.first_seq, 21);
    assert.equal((await jsm.streams.getMessage(s, { seq: 26 }))?.seq, 26);
  });

  test("getMessage by seq, last_by_subj (exact and wildcard), next_by_subj", T, async () => {
    const s = uniq("GET");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    const h = headers();
    h.set("X-Test", "one");
    h.append("X-Multi", "a");
    h.append("X-Multi", "b");
    await js.publish(`${s}.a.1`, "first", { headers: h }); // 1
    await js.publish(`${s}.b.1`, "second"); // 2
    await js.publish(`${s}.a.2`, "third"); // 3
    await js.publish(`${s}.b.1`, "fourth"); // 4

    const m1 = await jsm.streams.getMessage(s, { seq: 1 });
    assert.equal(m1.seq, 1);
    assert.equal(m1.subject, `${s}.a.1`);
    assert.equal(m1.string(), "first");
    assert.equal(m1.header.get("X-Test"), "one");
    assert.deepEqual(m1.header.values("X-Multi"), ["a", "b"]);
    assert.ok(m1.time instanceof Date && !Number.isNaN(m1.time.getTime()));

    const last = await jsm.streams.getMessage(s, { last_by_subj: `${s}.b.1` });
    assert.equal(last.seq, 4);
    assert.equal(last.string(), "fourth");

    // wildcards: the object store relies on last_by_subj "$O.<b>.M.>"
    const wa = await jsm.streams.getMessage(s, { last_by_subj: `${s}.a.*` });
    assert.equal(wa.seq, 3);
    const wall = await jsm.streams.getMessage(s, { last_by_subj: `${s}.>` });
    assert.equal(wall.seq, 4);

    const next = await jsm.streams.getMessage(s, { next_by_subj: `${s}.b.1`, seq: 3 });
    assert.equal(next.seq, 4);
    const nextW = await jsm.streams.getMessage(s, { next_by_subj: `${s}.a.>`, seq: 2 });
    assert.equal(nextW.seq, 3);

    // not found -> 10037, which the client turns into null
    assert.equal(await jsm.streams.getMessage(s, { seq: 99 }), null);
    assert.equal(await jsm.streams.getMessage(s, { last_by_subj: `${s}.zzz` }), null);
    assert.equal(await jsm.streams.getMessage(s, { next_by_subj: `${s}.a.1`, seq: 2 }), null);
  });

  test("deleteMessage removes one message (erase and no_erase)", T, async () => {
    const s = uniq("DEL");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await publishN(js, 5, () => `${s}.x`);
    assert.equal(await jsm.streams.deleteMessage(s, 2), true);
    assert.equal(await jsm.streams.deleteMessage(s, 3, false), true);
    assert.equal(await jsm.streams.getMessage(s, { seq: 2 }), null);
    assert.equal(await jsm.streams.getMessage(s, { seq: 3 }), null);
    const si = await jsm.streams.info(s, { deleted_details: true });
    assert.equal(si.state.messages, 3);
    assert.equal(si.state.num_deleted, 2);
    assert.deepEqual([...si.state.deleted].sort(), [2, 3]);
    // deleting the first message moves first_seq
    await jsm.streams.deleteMessage(s, 1);
    const si2 = await jsm.streams.info(s);
    assert.equal(si2.state.first_seq, 4);
    // a message that is not there
    await rejectsApi(jsm.streams.deleteMessage(s, 2), 10057);
  });

  test("direct get with allow_direct: seq, last_by_subj, next_by_subj, not found", T, async () => {
    const s = uniq("DIR");
    const si = await mkStream({ name: s, subjects: [`${s}.>`], allow_direct: true });
    assert.equal(si.config.allow_direct, true);
    const h = headers();
    h.set("X-Test", "direct");
    await js.publish(`${s}.a`, "one", { headers: h }); // 1
    await js.publish(`${s}.b`, "two"); // 2
    await js.publish(`${s}.a`, "three"); // 3

    const m = await jsm.direct.getMessage(s, { seq: 1 });
    assert.equal(m.seq, 1);
    assert.equal(m.subject, `${s}.a`);
    assert.equal(m.stream, s);
    assert.equal(m.string(), "one");
    assert.equal(m.header.get("X-Test"), "direct", "stored headers are returned");
    assert.equal(m.header.get("Nats-Stream"), s);
    assert.equal(m.header.get("Nats-Subject"), `${s}.a`);
    assert.equal(m.header.get("Nats-Sequence"), "1");
    assert.ok(!Number.isNaN(Date.parse(m.header.get("Nats-Time-Stamp"))), "Nats-Time-Stamp");

    // last_by_subj goes to $JS.API.DIRECT.GET.<stream>.<subject> with an empty body
    const l = await jsm.direct.getMessage(s, { last_by_subj: `${s}.a` });
    assert.equal(l.seq, 3);
    assert.equal(l.string(), "three");
    const n = await jsm.direct.getMessage(s, { next_by_subj: `${s}.b`, seq: 1 });
    assert.equal(n.seq, 2);

    assert.equal(await jsm.direct.getMessage(s, { seq: 42 }), null, "404 -> null");
    assert.equal(await jsm.direct.getMessage(s, { last_by_subj: `${s}.none` }), null);
  });

  test("direct get is not answered when allow_direct is false", T, async () => {
    const s = uniq("NODIR");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await js.publish(`${s}.a`, "x");
    const jsmShort = await jetstreamManager(nc, { timeout: 1500, checkAPI: false });
    await assert.rejects(jsmShort.direct.getMessage(s, { seq: 1 }),
      (err) => /timeout|no responders|not enabled/i.test(`${err.name} ${err.message}`));
  });

  test("batch direct get and multi-last (2.11+)", T, async (t) => {
    const skip = needs(nc, "2.11.0", "batch/multi direct get");
    if (skip) return t.skip(skip);
    const s = uniq("BDIR");
    await mkStream({ name: s, subjects: [`${s}.>`], allow_direct: true });
    await publishN(js, 6, (i) => `${s}.${["a", "b", "c"][i % 3]}`, (i) => `v${i + 1}`);
    const batch = await drain(await jsm.direct.getBatch(s, { seq: 2, batch: 3 }));
    assert.deepEqual(batch.map((m) => m.seq), [2, 3, 4]);
    assert.deepEqual(batch.map((m) => m.string()), ["v2", "v3", "v4"]);
    const lasts = await drain(await jsm.direct.getLastMessagesFor(s, {
      multi_last: [`${s}.a`, `${s}.c`],
    }));
    assert.deepEqual(lasts.map((m) => m.seq).sort((a, b) => a - b), [4, 6]);
  });
});

describe("stream options", () => {
  test("sealed stream rejects publishes and deletes (update to sealed)", T, async () => {
    const s = uniq("SEAL");
    await mkStream({ name: s, subjects: [`${s}.>`] });
    await js.publish(`${s}.a`, "x");
    const si = await jsm.streams.update(s, { sealed: true });
    assert.equal(si.config.sealed, true);
    await assert.rejects(js.publish(`${s}.a`, "y"));
    await assert.rejects(jsm.streams.deleteMessage(s, 1));
    await assert.rejects(jsm.streams.purge(s));
    assert.equal((await jsm.streams.info(s)).state.messages, 1);
  });

  test("deny_delete and deny_purge", T, async () => {
    const s = uniq("DENY");
    const si = await mkStream({ name: s, subjects: [`${s}.>`], deny_delete: true, deny_purge: true });
    assert.equal(si.config.deny_delete, true);
    assert.equal(si.config.deny_purge, true);
    await js.publish(`${s}.a`, "x");
    await assert.rejects(jsm.streams.deleteMessage(s, 1));
    await assert.rejects(jsm.streams.purge(s));
    assert.equal((await jsm.streams.info(s)).state.messages, 1);
  });

  test("rollup headers (Nats-Rollup: sub / all) need allow_rollup_hdrs", T, async () => {
    const s = uniq("ROLL");
    await mkStream({ name: s, subjects: [`${s}.>`], allow_rollup_hdrs: true });
    await publishN(js, 6, (i) => `${s}.${i % 2 ? "a" : "b"}`);
    const h = headers();
    h.set("Nats-Rollup", "sub");
    await js.publish(`${s}.a`, "rolled", { headers: h });
    let si = await jsm.streams.info(s, { subjects_filter: ">" });
    assert.deepEqual(si.state.subjects, { [`${s}.a`]: 1, [`${s}.b`]: 3 });
    const h2 = headers();
    h2.set("Nats-Rollup", "all");
    const pa = await js.publish(`${s}.c`, "everything", { headers: h2 });
    si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 1);
    assert.equal(si.state.first_seq, pa.seq);

    const s2 = uniq("NOROLL");
    await mkStream({ name: s2, subjects: [`${s2}.>`] });
    await rejectsApi(js.publish(`${s2}.a`, "x", { headers: h }), 10111, {
      description: "rollup not permitted",
    });
  });
});
