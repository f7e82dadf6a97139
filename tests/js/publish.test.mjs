// JetStream publish: PubAcks, headers, msgID de-duplication, expectation headers and
// stream limits (discard old/new, per-subject limits, max_msg_size, max_age).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { DiscardPolicy } from "@nats-io/jetstream";
import {
  cleanup, eventually, needs, NS, open, publishN, rejectsApi, T, uniq,
} from "./helpers.mjs";

let nc, jsm, js;
const created = [];
async function mkStream(cfg) {
  const si = await jsm.streams.add({ subjects: [`${cfg.name}.>`], ...cfg });
  created.push(cfg.name);
  return si;
}

before(async () => {
  ({ nc, jsm, js } = await open("publish"));
});
after(() => cleanup(nc, jsm, created));

describe("publish", () => {
  test("PubAck carries stream and increasing seq; duplicate is false", T, async () => {
    const s = uniq("PUB");
    await mkStream({ name: s });
    for (let i = 1; i <= 5; i++) {
      const pa = await js.publish(`${s}.x`, `m${i}`);
      assert.equal(pa.stream, s);
      assert.equal(pa.seq, i);
      assert.equal(pa.duplicate, false);
    }
    const si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 5);
    assert.equal(si.state.first_seq, 1);
    assert.equal(si.state.last_seq, 5);
    assert.ok(si.state.bytes > 0);
  });

  test("user headers and empty payloads are stored as sent", T, async () => {
    const s = uniq("HDR");
    await mkStream({ name: s });
    const h = headers();
    h.set("X-Key", "v1");
    h.append("X-Key", "v2");
    h.set("X-Empty", "");
    const pa = await js.publish(`${s}.h`, new Uint8Array(0), { headers: h });
    const sm = await jsm.streams.getMessage(s, { seq: pa.seq });
    assert.equal(sm.data.length, 0);
    assert.deepEqual(sm.header.values("X-Key"), ["v1", "v2"]);
    const bin = new Uint8Array(256).map((_, i) => i);
    const pa2 = await js.publish(`${s}.bin`, bin);
    const sm2 = await jsm.streams.getMessage(s, { seq: pa2.seq });
    assert.deepEqual(sm2.data, bin);
  });

  test("a subject no stream captures gives no responders (JetStreamNotEnabled)", T, async () => {
    const subj = `${uniq("NOSTREAM")}.x`;
    await assert.rejects(js.publish(subj, "x", { timeout: 2000 }), (err) => {
      assert.equal(err.name, "JetStreamNotEnabled", `${err.name}: ${err.message}`);
      return true;
    });
  });

  test("msgID de-duplication returns the original seq with duplicate:true", T, async () => {
    const s = uniq("DUP");
    const si = await mkStream({ name: s, duplicate_window: 60_000 * NS });
    assert.equal(si.config.duplicate_window, 60_000 * NS);
    const a = await js.publish(`${s}.x`, "one", { msgID: "id-1" });
    const b = await js.publish(`${s}.x`, "two", { msgID: "id-2" });
    const c = await js.publish(`${s}.x`, "one again", { msgID: "id-1" });
    assert.equal(a.duplicate, false);
    assert.equal(b.duplicate, false);
    assert.equal(c.duplicate, true);
    assert.equal(c.seq, a.seq);
    assert.equal(c.stream, s);
    // the id is per stream, not per subject
    const d = await js.publish(`${s}.y`, "other subject", { msgID: "id-2" });
    assert.equal(d.duplicate, true);
    assert.equal(d.seq, b.seq);
    const info = await jsm.streams.info(s);
    assert.equal(info.state.messages, 2);
    const sm = await jsm.streams.getMessage(s, { seq: a.seq });
    assert.equal(sm.string(), "one");
    assert.equal(sm.header.get("Nats-Msg-Id"), "id-1");
  });

  test("expect.lastSequence (Nats-Expected-Last-Sequence) -> 10071", T, async () => {
    const s = uniq("ELS");
    await mkStream({ name: s });
    const first = await js.publish(`${s}.a`, "x", { expect: { lastSequence: 0 } });
    assert.equal(first.seq, 1);
    await js.publish(`${s}.b`, "x", { expect: { lastSequence: 1 } });
    await rejectsApi(js.publish(`${s}.a`, "x", { expect: { lastSequence: 1 } }), 10071, {
      status: 400,
      description: "wrong last sequence: 2",
    });
    assert.equal((await jsm.streams.info(s)).state.messages, 2, "rejected publish not stored");
  });

  test("expect.lastSubjectSequence (Nats-Expected-Last-Subject-Sequence) -> 10071", T, async () => {
    const s = uniq("ELSS");
    await mkStream({ name: s });
    // 0 means "no message on this subject yet"
    const a1 = await js.publish(`${s}.a`, "x", { expect: { lastSubjectSequence: 0 } });
    const b1 = await js.publish(`${s}.b`, "x", { expect: { lastSubjectSequence: 0 } });
    assert.deepEqual([a1.seq, b1.seq], [1, 2]);
    await rejectsApi(js.publish(`${s}.a`, "x", { expect: { lastSubjectSequence: 0 } }), 10071, {
      description: "wrong last sequence: 1",
    });
    await rejectsApi(js.publish(`${s}.a`, "x", { expect: { lastSubjectSequence: 2 } }), 10071, {
      description: "wrong last sequence: 1",
    });
    const a2 = await js.publish(`${s}.a`, "x", { expect: { lastSubjectSequence: 1 } });
    assert.equal(a2.seq, 3);
  });

  test("expect.lastSubjectSequence with lastSubjectSequenceSubject (2.11+)", T, async (t) => {
    // Nats-Expected-Last-Subject-Sequence-Subject came with 2.11 (subject delete markers
    // use it); 2.9 ignores the header and checks the publish subject instead.
    const skip = needs(nc, "2.11.0", "Nats-Expected-Last-Subject-Sequence-Subject");
    if (skip) return t.skip(skip);
    const s = uniq("ELSSS");
    await mkStream({ name: s });
    await js.publish(`${s}.a.1`, "x"); // 1
    await js.publish(`${s}.b.1`, "x"); // 2
    await js.publish(`${s}.a.2`, "x"); // 3
    const ok = await js.publish(`${s}.a.3`, "x", {
      expect: { lastSubjectSequence: 3, lastSubjectSequenceSubject: `${s}.a.*` },
    });
    assert.equal(ok.seq, 4);
    await rejectsApi(js.publish(`${s}.a.4`, "x", {
      expect: { lastSubjectSequence: 3, lastSubjectSequenceSubject: `${s}.a.*` },
    }), 10071);
  });

  test("expect.lastMsgID (Nats-Expected-Last-Msg-Id) -> 10070", T, async () => {
    const s = uniq("ELID");
    await mkStream({ name: s });
    await js.publish(`${s}.a`, "x", { msgID: "first" });
    await js.publish(`${s}.a`, "x", { msgID: "second", expect: { lastMsgID: "first" } });
    await rejectsApi(js.publish(`${s}.a`, "x", { msgID: "third", expect: { lastMsgID: "first" } }),
      10070, { status: 400, description: "wrong last msg ID: second" });
    assert.equal((await jsm.streams.info(s)).state.messages, 2);
  });

  test("expect.streamName (Nats-Expected-Stream) -> 10060", T, async () => {
    const s = uniq("ESTR");
    await mkStream({ name: s });
    const pa = await js.publish(`${s}.a`, "x", { expect: { streamName: s } });
    assert.equal(pa.stream, s);
    await rejectsApi(js.publish(`${s}.a`, "x", { expect: { streamName: "OTHER" } }), 10060, {
      status: 400,
      description: "expected stream does not match",
    });
  });
});

describe("stream features from 2.10", () => {
  test("first_seq starts the stream at a given sequence (2.10+)", T, async (t) => {
    const skip = needs(nc, "2.10.0", "first_seq");
    if (skip) return t.skip(skip);
    const s = uniq("FSEQ");
    const si = await mkStream({ name: s, first_seq: 100 });
    assert.equal(si.config.first_seq, 100);
    const pa = await js.publish(`${s}.x`, "x");
    assert.equal(pa.seq, 100);
  });

  test("stream metadata is stored and echoed (2.10+)", T, async (t) => {
    const skip = needs(nc, "2.10.0", "stream metadata");
    if (skip) return t.skip(skip);
    const s = uniq("META");
    const si = await mkStream({ name: s, metadata: { owner: "interop", purpose: "test" } });
    // servers >= 2.11 add their own _nats.* keys; the user's keys must be there as given
    assert.equal(si.config.metadata.owner, "interop");
    assert.equal(si.config.metadata.purpose, "test");
    const up = await jsm.streams.update(s, { metadata: { owner: "changed" } });
    assert.equal(up.config.metadata.owner, "changed");
    assert.equal(up.config.metadata.purpose, undefined);
  });
});

describe("limits", () => {
  test("discard old with max_msgs evicts the oldest", T, async () => {
    const s = uniq("DOLD");
    await mkStream({ name: s, max_msgs: 3 });
    await publishN(js, 5, () => `${s}.x`);
    const si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 3);
    assert.equal(si.state.first_seq, 3);
    assert.equal(si.state.last_seq, 5);
  });

  test("discard old with max_bytes evicts the oldest", T, async () => {
    const s = uniq("DOLDB");
    await mkStream({ name: s, max_bytes: 1000 });
    await publishN(js, 20, () => `${s}.x`, () => new Uint8Array(100));
    const si = await jsm.streams.info(s);
    assert.ok(si.state.bytes <= 1000, `bytes ${si.state.bytes} <= 1000`);
    assert.ok(si.state.messages < 20 && si.state.messages > 0);
    assert.equal(si.state.last_seq, 20);
    assert.equal(si.state.first_seq, 21 - si.state.messages);
  });

  test("discard new with max_msgs rejects with 10077 'maximum messages exceeded'", T, async () => {
    const s = uniq("DNEW");
    await mkStream({ name: s, max_msgs: 3, discard: DiscardPolicy.New });
    await publishN(js, 3, () => `${s}.x`);
    await rejectsApi(js.publish(`${s}.x`, "4th"), 10077, {
      status: 503,
      description: "maximum messages exceeded",
    });
    const si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 3);
    assert.equal(si.state.first_seq, 1);
    assert.equal(si.state.last_seq, 3);
  });

  test("discard new with max_bytes rejects with 10077 'maximum bytes exceeded'", T, async () => {
    const s = uniq("DNEWB");
    await mkStream({ name: s, max_bytes: 1000, discard: DiscardPolicy.New });
    let stored = 0;
    let err;
    for (let i = 0; i < 20 && !err; i++) {
      try {
        await js.publish(`${s}.x`, new Uint8Array(100));
        stored++;
      } catch (e) {
        err = e;
      }
    }
    assert.ok(stored > 0 && stored < 20, `stored ${stored}`);
    await rejectsApi(Promise.reject(err), 10077, { description: "maximum bytes exceeded" });
    const si = await jsm.streams.info(s);
    assert.equal(si.state.messages, stored);
    assert.equal(si.state.first_seq, 1);
  });

  test("max_msgs_per_subject keeps the newest per subject", T, async () => {
    const s = uniq("MPS");
    await mkStream({ name: s, max_msgs_per_subject: 2 });
    await publishN(js, 3, () => `${s}.a`); // 1 2 3 -> 1 evicted
    await js.publish(`${s}.b`, "b"); // 4
    const si = await jsm.streams.info(s, { subjects_filter: ">" });
    assert.equal(si.config.max_msgs_per_subject, 2);
    assert.equal(si.state.messages, 3);
    assert.deepEqual(si.state.subjects, { [`${s}.a`]: 2, [`${s}.b`]: 1 });
    assert.equal(await jsm.streams.getMessage(s, { seq: 1 }), null);
    assert.equal(si.state.first_seq, 2);
  });

  test("discard new still evicts per subject (the KV history rule)", T, async () => {
    const s = uniq("DNPS");
    await mkStream({ name: s, max_msgs_per_subject: 1, discard: DiscardPolicy.New, max_msgs: 10 });
    await publishN(js, 5, () => `${s}.k`);
    const si = await jsm.streams.info(s);
    assert.equal(si.state.messages, 1);
    assert.equal(si.state.last_seq, 5);
    assert.equal(si.state.first_seq, 5);
  });

  test("discard_new_per_subject rejects instead of evicting", T, async () => {
    const s = uniq("DNPSR");
    const si = await mkStream({
      name: s,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
    });
    assert.equal(si.config.discard_new_per_subject, true);
    await js.publish(`${s}.k`, "1");
    await rejectsApi(js.publish(`${s}.k`, "2"), 10077, {
      description: "maximum messages per subject exceeded",
    });
    await js.publish(`${s}.other`, "1");
    assert.equal((await jsm.streams.info(s)).state.messages, 2);
  });

  test("max_msg_size rejects larger payloads with 10054", T, async () => {
    const s = uniq("MSZ");
    await mkStream({ name: s, max_msg_size: 64 });
    await js.publish(`${s}.x`, new Uint8Array(64));
    await rejectsApi(js.publish(`${s}.x`, new Uint8Array(65)), 10054, {
      status: 400,
      description: "message size exceeds maximum allowed",
    });
  });

  test("max_age expires messages", T, async () => {
    const s = uniq("AGE");
    const si = await mkStream({ name: s, max_age: 1000 * NS });
    assert.equal(si.config.max_age, 1000 * NS);
    await publishN(js, 3, () => `${s}.x`);
    assert.equal((await jsm.streams.info(s)).state.messages, 3);
    await eventually(async () => (await jsm.streams.info(s)).state.messages === 0, 10_000,
      "messages expire after max_age");
    const after = await jsm.streams.info(s);
    assert.equal(after.state.last_seq, 3);
    assert.equal(after.state.first_seq, 4);
  });

  test("Nats-TTL: never exempts a message from max_age (2.11+)", T, async (t) => {
    const skip = needs(nc, "2.11.0", "per-message TTL (allow_msg_ttl)");
    if (skip) return t.skip(skip);
    const s = uniq("NEVER");
    await mkStream({ name: s, max_age: 1000 * NS, allow_msg_ttl: true });
    const h = headers();
    h.set("Nats-TTL", "never");
    const keep = await js.publish(`${s}.keep`, "forever", { headers: h });
    assert.equal(keep.seq, 1);
    await publishN(js, 2, () => `${s}.x`);
    // once the later plain messages are gone, max_age has passed the older one too
    await eventually(async () => (await jsm.streams.info(s)).state.messages === 1, 10_000,
      "plain messages expire after max_age");
    const m = await jsm.streams.getMessage(s, { seq: 1 });
    assert.equal(m.string(), "forever");
    assert.equal(m.header.get("Nats-TTL"), "never");
    const bad = headers();
    bad.set("Nats-TTL", "-1");
    await rejectsApi(js.publish(`${s}.x`, "x", { headers: bad }), 10165);
  });
});
