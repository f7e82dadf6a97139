// Consumers: management (add/info/list/update/delete), pull consumers through
// js.consumers.get() with fetch/next/consume, acknowledgement semantics, redelivery,
// exact num_pending, ordered consumers, and push consumers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createInbox } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import {
  cleanup, drain, eventually, needs, NS, open, publishN, rejectsApi, T, take, uniq,
  within,
} from "./helpers.mjs";

let nc, jsm, js;
const created = [];
async function mkStream(name, extra = {}) {
  await jsm.streams.add({ name, subjects: [`${name}.>`], ...extra });
  created.push(name);
  return name;
}

before(async () => {
  ({ nc, jsm, js } = await open("consumers"));
});
after(() => cleanup(nc, jsm, created));

describe("consumer management", () => {
  test("add echoes defaults; info, list; delete; 10014 'consumer not found'", T, async () => {
    const s = await mkStream(uniq("CM"));
    await publishN(js, 3, () => `${s}.x`);
    const ci = await jsm.consumers.add(s, { durable_name: "d1", ack_policy: AckPolicy.Explicit });
    assert.equal(ci.stream_name, s);
    assert.equal(ci.name, "d1");
    assert.equal(ci.config.durable_name, "d1");
    assert.equal(ci.config.ack_policy, "explicit");
    assert.equal(ci.config.deliver_policy, "all");
    assert.equal(ci.config.replay_policy, "instant");
    assert.equal(ci.config.ack_wait, 30_000 * NS, "ack_wait defaults to 30s");
    assert.equal(ci.config.max_ack_pending, 1000);
    assert.equal(ci.config.max_waiting, 512);
    assert.equal(ci.config.max_deliver, -1);
    assert.equal(ci.config.deliver_subject, undefined, "a pull consumer");
    assert.equal(ci.num_pending, 3);
    assert.equal(ci.num_ack_pending, 0);
    assert.equal(ci.num_redelivered, 0);
    assert.equal(ci.num_waiting, 0);
    assert.equal(ci.delivered.consumer_seq, 0);
    assert.equal(ci.delivered.stream_seq, 0);
    assert.equal(ci.ack_floor.consumer_seq, 0);
    assert.equal(ci.ack_floor.stream_seq, 0);
    assert.ok(!Number.isNaN(Date.parse(ci.created)));

    // a named consumer through the name field (CONSUMER.CREATE.<s>.<name>[.<filter>])
    const c2 = await jsm.consumers.add(s, {
      name: "n2",
      ack_policy: AckPolicy.Explicit,
      filter_subject: `${s}.x`,
      inactive_threshold: 60_000 * NS,
    });
    assert.equal(c2.name, "n2");
    assert.equal(c2.config.filter_subject, `${s}.x`);
    assert.equal(c2.config.inactive_threshold, 60_000 * NS);

    const info = await jsm.consumers.info(s, "d1");
    assert.equal(info.name, "d1");
    assert.equal(info.num_pending, 3);
    const names = (await drain(await jsm.consumers.list(s))).map((c) => c.name).sort();
    assert.deepEqual(names, ["d1", "n2"]);
    assert.equal((await jsm.streams.info(s)).state.consumer_count, 2);

    assert.equal(await jsm.consumers.delete(s, "d1"), true);
    await rejectsApi(jsm.consumers.info(s, "d1"), 10014, {
      status: 404,
      description: "consumer not found",
    });
    await rejectsApi(jsm.consumers.delete(s, "d1"), 10014);
    await rejectsApi(jsm.consumers.add(uniq("NOSUCH"), { durable_name: "x" }), 10059);
  });

  test("update changes mutable fields; re-adding the same config is idempotent", T, async () => {
    const s = await mkStream(uniq("CU"));
    const cfg = { durable_name: "u", ack_policy: AckPolicy.Explicit, ack_wait: 10_000 * NS };
    const a = await jsm.consumers.add(s, cfg);
    const again = await jsm.consumers.add(s, { ...cfg });
    assert.equal(again.created, a.created);
    const up = await jsm.consumers.update(s, "u", { ack_wait: 20_000 * NS, description: "d" });
    assert.equal(up.config.ack_wait, 20_000 * NS);
    assert.equal(up.config.description, "d");
    assert.equal((await jsm.consumers.info(s, "u")).config.ack_wait, 20_000 * NS);
    // the ack policy cannot change on update
    await assert.rejects(jsm.consumers.update(s, "u", { ack_policy: AckPolicy.None }));
  });

  test("num_pending is exact at create for filters and deliver policies", T, async () => {
    const s = await mkStream(uniq("NP"));
    // seq 1..15: a at odd i (i%3 != 2), b at i%3 == 2
    await publishN(js, 15, (i) => `${s}.${i % 3 === 2 ? "b" : "a"}`);
    const base = { ack_policy: AckPolicy.Explicit };
    const cases = [
      [{ name: "all" }, 15],
      [{ name: "fa", filter_subject: `${s}.a` }, 10],
      [{ name: "fb", filter_subject: `${s}.b` }, 5],
      [{ name: "last", deliver_policy: DeliverPolicy.Last }, 1],
      [{ name: "new", deliver_policy: DeliverPolicy.New }, 0],
      [{ name: "seq", deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 11 }, 5],
      [{
        name: "seqa",
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: 11,
        filter_subject: `${s}.a`,
      }, 3],
      [{ name: "lps", deliver_policy: DeliverPolicy.LastPerSubject, filter_subject: `${s}.>` }, 2],
    ];
    for (const [cfg, want] of cases) {
      const ci = await jsm.consumers.add(s, { ...base, ...cfg });
      assert.equal(ci.num_pending, want, `num_pending for ${cfg.name}`);
      assert.equal((await jsm.consumers.info(s, cfg.name)).num_pending, want);
    }
    // pending follows new publishes
    await js.publish(`${s}.b`, "late");
    assert.equal((await jsm.consumers.info(s, "fb")).num_pending, 6);
    assert.equal((await jsm.consumers.info(s, "new")).num_pending, 1);
    assert.equal((await jsm.consumers.info(s, "fa")).num_pending, 10);
  });

  test("an ephemeral consumer goes away after inactive_threshold", T, async () => {
    const s = await mkStream(uniq("EPH"));
    const ci = await jsm.consumers.add(s, {
      ack_policy: AckPolicy.Explicit,
      inactive_threshold: 1000 * NS,
    });
    assert.ok(ci.name.length > 0, "server names an ephemeral consumer");
    assert.equal(ci.config.durable_name, undefined);
    await eventually(async () => {
      try {
        await jsm.consumers.info(s, ci.name);
        return false;
      } catch (err) {
        return err.code === 10014;
      }
    }, 15_000, "ephemeral consumer removed");
  });
});

describe("pull consumers", () => {
  async function pull(s, name, extra = {}) {
    await jsm.consumers.add(s, { durable_name: name, ack_policy: AckPolicy.Explicit, ...extra });
    return js.consumers.get(s, name);
  }

  test("fetch a batch: order, data, delivery info and exact pending", T, async () => {
    const s = await mkStream(uniq("F"));
    await publishN(js, 10, (i) => `${s}.${i}`);
    const c = await pull(s, "f");
    const msgs = await drain(await c.fetch({ max_messages: 5, expires: 5000 }), 10_000, "fetch");
    assert.equal(msgs.length, 5);
    msgs.forEach((m, i) => {
      assert.equal(m.seq, i + 1);
      assert.equal(m.subject, `${s}.${i}`, "subject is the stream subject");
      assert.equal(m.string(), `m${i}`);
      assert.equal(m.info.stream, s);
      assert.equal(m.info.consumer, "f");
      assert.equal(m.info.deliveryCount, 1);
      assert.equal(m.info.streamSequence, i + 1);
      assert.equal(m.info.deliverySequence, i + 1);
      assert.equal(m.info.pending, 9 - i, "pending token counts what is left after this one");
      assert.equal(m.redelivered, false);
      assert.ok(Math.abs(m.time.getTime() - Date.now()) < 3_600_000, "ack-reply timestamp is sane");
    });
    let ci = await c.info();
    assert.equal(ci.num_ack_pending, 5);
    assert.equal(ci.num_pending, 5);
    assert.equal(ci.delivered.stream_seq, 5);
    assert.equal(ci.delivered.consumer_seq, 5);
    for (const m of msgs) assert.equal(await m.ackAck(), true, "server confirms acks");
    ci = await c.info();
    assert.equal(ci.num_ack_pending, 0);
    assert.equal(ci.ack_floor.stream_seq, 5);
    assert.equal(ci.ack_floor.consumer_seq, 5);
  });

  test("fetch more than available returns what is there when the request expires", T, async () => {
    const s = await mkStream(uniq("FX"));
    await publishN(js, 3, () => `${s}.x`);
    const c = await pull(s, "fx");
    const msgs = await drain(await c.fetch({ max_messages: 10, expires: 1500 }), 10_000, "fetch");
    assert.deepEqual(msgs.map((m) => m.seq), [1, 2, 3]);
    msgs.forEach((m) => m.ack());
    // an empty consumer yields nothing and ends
    const none = await drain(await c.fetch({ max_messages: 5, expires: 1000 }), 10_000, "empty fetch");
    assert.equal(none.length, 0);
  });

  test("fetch with max_bytes stops at the byte budget", T, async () => {
    const s = await mkStream(uniq("FB"));
    await publishN(js, 10, () => `${s}.x`, () => new Uint8Array(100));
    const c = await pull(s, "fb");
    // The server delivers what fits, then ends the request with "409 Message Size Exceeds
    // MaxBytes" (with Nats-Pending-* headers) when the next message does not fit; for
    // fetch() nats.js surfaces that 409 as an error after yielding the messages. An exact
    // fit ends the request without a status.
    const iter = await c.fetch({ max_bytes: 350, expires: 2000 });
    const msgs = [];
    let endErr = null;
    await within(10_000, (async () => {
      try {
        for await (const m of iter) msgs.push(m);
      } catch (err) {
        endErr = err;
      }
    })(), "fetch bytes");
    if (endErr) {
      assert.equal(endErr.code, 409, `${endErr.name}: ${endErr.message}`);
      assert.equal(endErr.message, "message size exceeds maxbytes");
    }
    assert.ok(msgs.length >= 1 && msgs.length <= 3, `got ${msgs.length} of 100-byte messages in 350 bytes`);
    msgs.forEach((m, i) => assert.equal(m.seq, i + 1));
    msgs.forEach((m) => m.ack());
    // the rest is still there
    const rest = await drain(await c.fetch({ max_messages: 20, expires: 1500 }), 10_000, "rest");
    assert.equal(rest.length, 10 - msgs.length);
    rest.forEach((m) => m.ack());
  });

  test("next() returns one message, then null on an empty consumer", T, async () => {
    const s = await mkStream(uniq("N"));
    await js.publish(`${s}.x`, "only");
    const c = await pull(s, "n");
    const m = await within(10_000, c.next({ expires: 2000 }), "next");
    assert.equal(m.seq, 1);
    assert.equal(m.string(), "only");
    m.ack();
    const none = await within(10_000, c.next({ expires: 1000 }), "next on empty");
    assert.equal(none, null);
  });

  test("nak redelivers without waiting for ack_wait; +WPI is not final", T, async () => {
    const s = await mkStream(uniq("NAK"));
    await publishN(js, 3, () => `${s}.x`);
    // ack_wait far beyond the test's bound: any redelivery seen here comes from the nak
    const c = await pull(s, "a", { ack_wait: 120_000 * NS });
    const m1 = await c.next({ expires: 2000 });
    assert.equal(m1.seq, 1);
    m1.nak();
    // the nak and the next pull race inside the server, so take the whole batch
    const batch = await take(await c.fetch({ max_messages: 3, expires: 5000 }), 3, 10_000, "after nak");
    const again = batch.find((m) => m.seq === 1);
    assert.ok(again, `seq 1 redelivered (got ${batch.map((m) => m.seq)})`);
    assert.equal(again.info.deliveryCount, 2);
    assert.equal(again.redelivered, true);
    assert.deepEqual(batch.map((m) => m.seq).sort(), [1, 2, 3]);
    batch.filter((m) => m.seq !== 1).forEach((m) => assert.equal(m.info.deliveryCount, 1));
    let ci = await c.info();
    assert.equal(ci.num_ack_pending, 3);
    assert.equal(ci.num_redelivered, 1, "counts redelivered messages still pending");
    assert.equal(await again.ackAck(), true);

    // working (+WPI) is not final: the message stays pending and can still be acked
    const m2 = batch.find((m) => m.seq === 2);
    m2.working();
    assert.equal(await m2.ackAck(), true, "ack after +WPI is still sent and confirmed");
    const m3 = batch.find((m) => m.seq === 3);
    m3.nak(60_000); // -NAK {"delay": 60s}: not redelivered within this test
    await nc.flush();
    ci = await c.info();
    assert.equal(ci.num_ack_pending, 1, "only the delayed nak is pending");
    assert.equal(ci.ack_floor.stream_seq, 2);
    assert.equal(await c.next({ expires: 1500 }), null, "nak delay holds the message back");
  });

  test("term ends delivery: no redelivery after ack_wait", T, async () => {
    const s = await mkStream(uniq("TERM"));
    await publishN(js, 2, () => `${s}.x`);
    const c = await pull(s, "t", { ack_wait: 1000 * NS });
    const m1 = await c.next({ expires: 2000 });
    assert.equal(m1.seq, 1);
    m1.term();
    // wait until the server has processed the +TERM, then outlast ack_wait
    await eventually(async () => (await c.info()).num_ack_pending === 0, 5000, "term processed");
    const m2 = await c.next({ expires: 2000 });
    assert.equal(m2.seq, 2);
    assert.equal(m2.info.deliveryCount, 1);
    assert.equal(await m2.ackAck(), true);
    assert.equal(await c.next({ expires: 2500 }), null, "terminated message is not redelivered");
    const ci = await c.info();
    assert.equal(ci.num_ack_pending, 0);
    assert.equal(ci.num_pending, 0);
    assert.equal(ci.ack_floor.stream_seq, 2);
    assert.equal(ci.num_redelivered, 0);
  });

  test("term with a reason (+TERM <reason>, 2.10.4+)", T, async (t) => {
    // nats-server before 2.10.4 only accepts the exact payload "+TERM" and silently
    // ignores "+TERM <reason>", so the message would be redelivered.
    const skip = needs(nc, "2.10.4", "+TERM with a reason");
    if (skip) return t.skip(skip);
    const s = await mkStream(uniq("TERMR"));
    await js.publish(`${s}.x`, "bad");
    const c = await pull(s, "tr", { ack_wait: 1000 * NS });
    const m = await c.next({ expires: 2000 });
    m.term("cannot parse");
    await eventually(async () => (await c.info()).num_ack_pending === 0, 5000, "term processed");
    assert.equal(await c.next({ expires: 2500 }), null, "not redelivered after ack_wait");
    const ci = await c.info();
    assert.equal(ci.num_ack_pending, 0);
    assert.equal(ci.ack_floor.stream_seq, 1);
  });

  test("pause and resume (CONSUMER.PAUSE, 2.11+): nothing delivered while paused", T, async (t) => {
    const skip = needs(nc, "2.11.0", "consumer pause");
    if (skip) return t.skip(skip);
    const s = await mkStream(uniq("PAUSE"));
    await js.publish(`${s}.x`, "held");
    const c = await pull(s, "pz", { ack_wait: 30_000 * NS });
    const until = new Date(Date.now() + 60_000);
    const r = await jsm.consumers.pause(s, "pz", until);
    assert.equal(r.paused, true);
    assert.ok(r.pause_remaining > 0);
    assert.equal(Date.parse(r.pause_until), until.getTime());
    const ci = await c.info();
    assert.equal(ci.paused, true);
    assert.ok(ci.pause_remaining > 0);
    assert.equal(Date.parse(ci.config.pause_until), until.getTime());
    assert.equal(await c.next({ expires: 1500 }), null, "nothing while paused");
    const rr = await jsm.consumers.resume(s, "pz");
    assert.equal(rr.paused, false);
    const m = await c.next({ expires: 3000 });
    assert.ok(m, "delivered once resumed");
    assert.equal(m.string(), "held");
    m.ack();
    assert.equal((await c.info()).paused ?? false, false);
    await rejectsApi(jsm.consumers.pause(s, "nope", until), 10014);
  });

  test("priority groups (2.11+): pinned_client pin, unpin, overflow min_pending", T, async (t) => {
    const skip = needs(nc, "2.11.0", "priority groups");
    if (skip) return t.skip(skip);
    const s = await mkStream(uniq("PRIO"));
    await publishN(js, 4, () => `${s}.x`);
    const ci = await jsm.consumers.add(s, {
      durable_name: "pin", ack_policy: AckPolicy.Explicit, priority_policy: "pinned_client",
      priority_groups: ["A"], priority_timeout: 30_000 * NS,
    });
    assert.equal(ci.config.priority_policy, "pinned_client");
    assert.deepEqual(ci.config.priority_groups, ["A"]);
    assert.equal(ci.config.priority_timeout, 30_000 * NS);
    const c = await js.consumers.get(s, "pin");
    const got = [];
    for await (const m of await c.fetch({ max_messages: 2, expires: 3000, group: "A" })) {
      got.push(m);
      m.ack();
    }
    assert.equal(got.length, 2);
    const pin = got[0].headers?.get("Nats-Pin-Id");
    assert.ok(pin, "delivered with Nats-Pin-Id");
    assert.equal(got[1].headers?.get("Nats-Pin-Id"), pin);
    let info = await c.info();
    assert.equal(info.priority_groups?.[0]?.group, "A");
    assert.equal(info.priority_groups[0].pinned_client_id, pin);
    await rejectsApi(jsm.consumers.unpin(s, "pin", "B"), 10160);
    await jsm.consumers.unpin(s, "pin", "A");
    info = await c.info();
    assert.equal(info.priority_groups[0].pinned_client_id, undefined);

    const oc0 = await jsm.consumers.add(s, {
      durable_name: "ovf", ack_policy: AckPolicy.Explicit, priority_policy: "overflow",
      priority_groups: ["A"],
    });
    assert.equal(oc0.config.priority_policy, "overflow");
    const oc = await js.consumers.get(s, "ovf");
    // 4 pending: min_pending 10 is not met, min_pending 2 is
    assert.equal(await oc.next({ expires: 1500, group: "A", min_pending: 10 }), null);
    const m = await oc.next({ expires: 3000, group: "A", min_pending: 2 });
    assert.ok(m, "served once enough are pending");
    assert.equal(m.seq, 1);
    m.ack();
  });

  test("unacked messages are redelivered after ack_wait; max_deliver caps it", T, async () => {
    const s = await mkStream(uniq("RD"));
    await js.publish(`${s}.x`, "again");
    const c = await pull(s, "rd", { ack_wait: 1000 * NS, max_deliver: 2 });
    const first = await c.next({ expires: 2000 });
    assert.equal(first.info.deliveryCount, 1);
    // do not ack: it must come back once ack_wait passes
    const second = await c.next({ expires: 5000 });
    assert.ok(second, "redelivered after ack_wait");
    assert.equal(second.seq, 1);
    assert.equal(second.info.deliveryCount, 2);
    assert.equal(second.redelivered, true);
    const ci = await c.info();
    assert.equal(ci.num_redelivered, 1);
    assert.equal(ci.num_ack_pending, 1);
    // max_deliver 2 reached: no third delivery
    const third = await c.next({ expires: 2500 });
    assert.equal(third, null, "max_deliver stops redelivery");
  });

  test("consume() refills and drains a larger stream", T, async () => {
    const s = await mkStream(uniq("CON"));
    const N = 250;
    await publishN(js, N, (i) => `${s}.${i % 5}`);
    const c = await pull(s, "con");
    const iter = await c.consume({ max_messages: 20, expires: 5000 });
    const seqs = [];
    await within(20_000, (async () => {
      for await (const m of iter) {
        seqs.push(m.seq);
        m.ack();
        if (seqs.length === N) break;
      }
    })(), "consume");
    await iter.close();
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
    await nc.flush();
    await eventually(async () => (await c.info()).num_ack_pending === 0, 5000, "acks processed");
    const ci = await c.info();
    assert.equal(ci.num_pending, 0);
    assert.equal(ci.ack_floor.stream_seq, N);
  });

  test("consume() with max_bytes", T, async () => {
    const s = await mkStream(uniq("CONB"));
    const N = 40;
    await publishN(js, N, () => `${s}.x`, () => new Uint8Array(200));
    const c = await pull(s, "conb");
    const iter = await c.consume({ max_bytes: 2048, expires: 5000 });
    const got = await take(iter, N, 20_000, "consume bytes");
    got.forEach((m) => m.ack());
    await iter.close();
    assert.deepEqual(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => i + 1));
  });

  test("ack_policy none and all", T, async () => {
    const s = await mkStream(uniq("AP"));
    await publishN(js, 5, () => `${s}.x`);
    await jsm.consumers.add(s, { durable_name: "none", ack_policy: AckPolicy.None });
    const cn = await js.consumers.get(s, "none");
    const n = await drain(await cn.fetch({ max_messages: 5, expires: 2000 }));
    assert.equal(n.length, 5);
    let ci = await cn.info();
    assert.equal(ci.num_ack_pending, 0);
    assert.equal(ci.ack_floor.stream_seq, 5, "ack none moves the floor on delivery");

    await jsm.consumers.add(s, { durable_name: "all", ack_policy: AckPolicy.All });
    const ca = await js.consumers.get(s, "all");
    const a = await drain(await ca.fetch({ max_messages: 5, expires: 2000 }));
    assert.equal(a.length, 5);
    assert.equal(await a[3].ackAck(), true); // acks 1..4
    ci = await ca.info();
    assert.equal(ci.num_ack_pending, 1);
    assert.equal(ci.ack_floor.stream_seq, 4);
  });

  test("multi-filter consumer with filter_subjects (2.10+)", T, async (t) => {
    // filter_subjects (several filters on one consumer) came with nats-server 2.10. The
    // client then creates the consumer through $JS.API.CONSUMER.CREATE.<stream> with the
    // name in the config (the filter cannot be put in the subject).
    const skip = needs(nc, "2.10.0", "filter_subjects");
    if (skip) return t.skip(skip);
    const s = await mkStream(uniq("MF"));
    await publishN(js, 12, (i) => `${s}.${["a", "b", "c"][i % 3]}`);
    const ci = await jsm.consumers.add(s, {
      name: "mf",
      ack_policy: AckPolicy.Explicit,
      filter_subjects: [`${s}.a`, `${s}.c`],
    });
    assert.deepEqual(ci.config.filter_subjects, [`${s}.a`, `${s}.c`]);
    assert.equal(ci.num_pending, 8);
    const c = await js.consumers.get(s, "mf");
    const msgs = await drain(await c.fetch({ max_messages: 20, expires: 1500 }));
    assert.deepEqual(msgs.map((m) => m.seq), [1, 3, 4, 6, 7, 9, 10, 12]);
    assert.deepEqual(msgs.map((m) => m.info.pending), [7, 6, 5, 4, 3, 2, 1, 0]);
  });

  test("a pull consumer filtered to one subject skips the others", T, async () => {
    const s = await mkStream(uniq("PF"));
    await publishN(js, 12, (i) => `${s}.${i % 3}`);
    const c = await pull(s, "pf", { filter_subject: `${s}.1` });
    const msgs = await drain(await c.fetch({ max_messages: 10, expires: 1500 }));
    assert.deepEqual(msgs.map((m) => m.seq), [2, 5, 8, 11]);
    assert.deepEqual(msgs.map((m) => m.info.pending), [3, 2, 1, 0]);
    msgs.forEach((m) => assert.equal(m.subject, `${s}.1`));
  });
});

describe("ordered consumers", () => {
  test("ordered pull consumer delivers everything in order", T, async () => {
    const s = await mkStream(uniq("OC"));
    await publishN(js, 100, (i) => `${s}.${i % 4}`);
    const oc = await js.consumers.get(s);
    const ci = await oc.info(true);
    assert.equal(ci.config.ack_policy, "none");
    assert.equal(ci.config.max_deliver, 1);
    assert.equal(ci.config.mem_storage, true);
    assert.equal(ci.num_pending, 100);
    const iter = await oc.consume({ max_messages: 30 });
    const got = await take(iter, 100, 20_000, "ordered consume");
    await iter.close();
    assert.deepEqual(got.map((m) => m.seq), Array.from({ length: 100 }, (_, i) => i + 1));
    got.forEach((m, i) => assert.equal(m.info.deliverySequence, i + 1));
  });

  test("ordered consumer with a filter, a start sequence, and fetch", T, async () => {
    const s = await mkStream(uniq("OCF"));
    await publishN(js, 20, (i) => `${s}.${i % 2 ? "odd" : "even"}`);
    const oc = await js.consumers.get(s, { filter_subjects: `${s}.odd`, opt_start_seq: 10 });
    const msgs = await drain(await oc.fetch({ max_messages: 20, expires: 1500 }), 10_000, "fetch");
    assert.deepEqual(msgs.map((m) => m.seq), [10, 12, 14, 16, 18, 20]);
    // a second fetch picks up where the first ended
    await js.publish(`${s}.odd`, "new");
    const more = await drain(await oc.fetch({ max_messages: 5, expires: 1500 }), 10_000, "fetch 2");
    assert.deepEqual(more.map((m) => m.seq), [21]);
  });

  test("ordered consumer with deliver_policy last_per_subject", T, async () => {
    const s = await mkStream(uniq("OCL"));
    await publishN(js, 9, (i) => `${s}.k${i % 3}`);
    const oc = await js.consumers.get(s, { deliver_policy: DeliverPolicy.LastPerSubject });
    const msgs = await drain(await oc.fetch({ max_messages: 10, expires: 1500 }));
    assert.deepEqual(msgs.map((m) => m.seq), [7, 8, 9]);
  });
});

describe("push consumers", () => {
  test("durable push consumer: consume and ack", T, async () => {
    const s = await mkStream(uniq("PU"));
    await publishN(js, 20, (i) => `${s}.${i}`);
    const ci = await jsm.consumers.add(s, {
      durable_name: "push",
      deliver_subject: createInbox(),
      ack_policy: AckPolicy.Explicit,
      idle_heartbeat: 1000 * NS,
      flow_control: true,
    });
    assert.equal(typeof ci.config.deliver_subject, "string");
    assert.equal(ci.config.flow_control, true);
    assert.equal(ci.config.idle_heartbeat, 1000 * NS);
    const pc = await js.consumers.getPushConsumer(s, "push");
    assert.equal(pc.isPushConsumer(), true);
    const iter = await pc.consume();
    const got = await take(iter, 20, 10_000, "push consume");
    for (const m of got) m.ack();
    await iter.close();
    assert.deepEqual(got.map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    got.forEach((m, i) => assert.equal(m.subject, `${s}.${i}`));
    await nc.flush();
    await eventually(async () => (await jsm.consumers.info(s, "push")).num_ack_pending === 0,
      5000, "acks processed");
  });

  test("push delivery on the wire: stream subject, $JS.ACK reply, heartbeats", T, async () => {
    const s = await mkStream(uniq("PW"));
    await publishN(js, 3, (i) => `${s}.w${i}`);
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    await jsm.consumers.add(s, {
      durable_name: "wire",
      deliver_subject: inbox,
      ack_policy: AckPolicy.Explicit,
      idle_heartbeat: 500 * NS,
    });
    const msgs = [];
    let heartbeat = null;
    await within(10_000, (async () => {
      for await (const m of sub) {
        if (m.headers?.code === 100) {
          heartbeat = m;
          if (msgs.length === 3) break;
          continue;
        }
        msgs.push(m);
      }
    })(), "raw push delivery");
    sub.unsubscribe();
    msgs.forEach((m, i) => {
      // the MSG line carries the original subject, routed by the inbox sid
      assert.equal(m.subject, `${s}.w${i}`);
      const t = m.reply.split(".");
      assert.equal(t[0], "$JS");
      assert.equal(t[1], "ACK");
      assert.ok(t.length === 9 || t.length >= 11, `ack reply ${m.reply}`);
      if (t.length === 9) {
        assert.deepEqual(t.slice(2, 5), [s, "wire", "1"]);
        assert.equal(t[5], `${i + 1}`, "stream seq");
        assert.equal(t[6], `${i + 1}`, "consumer seq");
        assert.equal(t[8], `${2 - i}`, "pending");
      }
    });
    assert.ok(heartbeat, "an idle heartbeat arrived");
    assert.equal(heartbeat.headers.description.toLowerCase(), "idle heartbeat");
    assert.equal(heartbeat.subject, inbox);
    assert.equal(heartbeat.data.length, 0);
  });

  test("ordered push consumer replays the stream", T, async () => {
    const s = await mkStream(uniq("OPU"));
    await publishN(js, 50, (i) => `${s}.${i % 7}`);
    const pc = await js.consumers.getPushConsumer(s, { filter_subjects: `${s}.3` });
    const ci = await pc.info(true);
    assert.equal(ci.config.flow_control, true);
    assert.equal(ci.config.ack_policy, "none");
    assert.equal(ci.num_pending, 7);
    const iter = await pc.consume();
    const got = await take(iter, 7, 10_000, "ordered push");
    await iter.close();
    assert.deepEqual(got.map((m) => m.seq), [4, 11, 18, 25, 32, 39, 46]);
  });

  test("push consumer with deliver_group spreads across a queue", T, async () => {
    const s = await mkStream(uniq("PQ"));
    const inbox = createInbox();
    await jsm.consumers.add(s, {
      durable_name: "q",
      deliver_subject: inbox,
      deliver_group: "workers",
      ack_policy: AckPolicy.Explicit,
    });
    const seen = [];
    const subs = [0, 1].map((w) => nc.subscribe(inbox, {
      queue: "workers",
      callback: (_e, m) => {
        seen.push([w, m.subject]);
        m.respond(); // ack
      },
    }));
    await nc.flush();
    await publishN(js, 20, (i) => `${s}.${i}`);
    await eventually(() => seen.length >= 20, 10_000, "queue delivery");
    subs.forEach((x) => x.unsubscribe());
    assert.equal(seen.length, 20);
  });
});
