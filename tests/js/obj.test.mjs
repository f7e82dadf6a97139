// Object store through @nats-io/obj's Objm: buckets, multi-chunk put/get with digest
// check, info, list, watch, delete, links, meta updates, seal.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Objm } from "@nats-io/obj";
import {
  assertBytes, cleanup, drain, open, reader, rejectsApi, T, te, uniq, within,
} from "./helpers.mjs";

let nc, jsm, js, objm;
const stores = [];
async function store(opts = {}) {
  const name = uniq("obj");
  stores.push(name);
  return { name, os: await objm.create(name, opts) };
}

// A ReadableStream that hands the data over in uneven slices, like a file read.
function streamOf(data, slice = 10_007) {
  let off = 0;
  return new ReadableStream({
    pull(controller) {
      if (off >= data.length) {
        controller.close();
        return;
      }
      controller.enqueue(data.subarray(off, Math.min(off + slice, data.length)));
      off += slice;
    },
  });
}

async function readAll(rs) {
  const parts = [];
  const r = rs.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    parts.push(value);
  }
  return Buffer.concat(parts);
}

before(async () => {
  ({ nc, jsm, js } = await open("obj"));
  objm = new Objm(js);
});
after(() => cleanup(nc, jsm, stores.map((s) => `OBJ_${s}`)));

describe("object store", () => {
  test("create makes stream OBJ_<bucket> with the object-store config; status", T, async () => {
    const { name, os } = await store({ description: "objects" });
    const st = await os.status();
    assert.equal(st.bucket, name);
    assert.equal(st.description, "objects");
    assert.equal(st.sealed, false);
    assert.equal(st.size, 0);
    const c = (await jsm.streams.info(`OBJ_${name}`)).config;
    assert.deepEqual([...c.subjects].sort(), [`$O.${name}.C.>`, `$O.${name}.M.>`]);
    assert.equal(c.allow_rollup_hdrs, true);
    assert.equal(c.allow_direct, true);
    assert.equal(c.discard, "new");
    const listed = await drain(await objm.list());
    assert.ok(listed.some((s) => s.bucket === name), "Objm.list() includes the store");
    const opened = await objm.open(name);
    assert.equal((await opened.status()).bucket, name);
    await assert.rejects(objm.open(uniq("absent")), /object store not found/);
  });

  test("put 1 MiB in 8 KiB chunks, get it back intact, info", { timeout: 60_000 }, async () => {
    const { name, os } = await store();
    const data = randomBytes(1024 * 1024);
    const info = await within(30_000, os.put({
      name: "big.bin",
      description: "random",
      options: { max_chunk_size: 8192 },
      metadata: { kind: "test" },
    }, streamOf(data)), "put 1 MiB");
    assert.equal(info.name, "big.bin");
    assert.equal(info.bucket, name);
    assert.equal(info.size, data.length);
    assert.equal(info.chunks, 128);
    assert.match(info.digest, /^SHA-256=[A-Za-z0-9_-]+=*$/);
    assert.equal(info.deleted, false);
    assert.ok(info.revision > 0);

    const si = await jsm.streams.info(`OBJ_${name}`);
    assert.equal(si.state.messages, 129, "128 chunks + 1 meta");

    const got = await within(30_000, os.getBlob("big.bin"), "getBlob");
    assertBytes(got, data, "getBlob returns the same bytes");

    const r = await os.get("big.bin");
    assert.equal(r.info.size, data.length);
    const streamed = await within(30_000, readAll(r.data), "get stream");
    assert.ok(!(await r.error), "no error reading the object");
    assertBytes(streamed, data, "get() stream returns the same bytes");

    const i2 = await os.info("big.bin");
    assert.equal(i2.size, data.length);
    assert.equal(i2.chunks, 128);
    assert.equal(i2.digest, info.digest);
    assert.equal(i2.nuid, info.nuid);
    assert.equal(i2.description, "random");
    assert.deepEqual(i2.metadata, { kind: "test" });
    assert.equal(i2.options.max_chunk_size, 8192);
    assert.equal(i2.revision, 129, "revision is the meta message sequence");
    assert.ok(!Number.isNaN(Date.parse(i2.mtime)));
    assert.equal(await os.info("nope"), null);
    assert.equal(await os.get("nope"), null);
  });

  test("small and empty objects; putBlob/getBlob", T, async () => {
    const { os } = await store();
    const small = te.encode("hello object store");
    const i1 = await os.putBlob({ name: "small.txt" }, small);
    assert.equal(i1.chunks, 1);
    assert.equal(i1.size, small.length);
    assertBytes(await os.getBlob("small.txt"), small);
    const i2 = await os.putBlob({ name: "empty" }, new Uint8Array(0));
    assert.equal(i2.size, 0);
    assert.equal(i2.chunks, 0);
    const e = await os.getBlob("empty");
    assert.equal(e.length, 0);
    // names with characters that need encoding in the meta subject
    const odd = "dir/sub dir/ümlaut.txt";
    await os.putBlob({ name: odd }, small);
    assertBytes(await os.getBlob(odd), small);
  });

  test("replacing an object purges the old chunks", T, async () => {
    const { name, os } = await store();
    await os.putBlob({ name: "r", options: { max_chunk_size: 1024 } }, randomBytes(10 * 1024));
    assert.equal((await jsm.streams.info(`OBJ_${name}`)).state.messages, 11);
    const v2 = randomBytes(3 * 1024);
    const info = await os.putBlob({ name: "r", options: { max_chunk_size: 1024 } }, v2);
    assert.equal(info.chunks, 3);
    const si = await jsm.streams.info(`OBJ_${name}`);
    assert.equal(si.state.messages, 4, "3 new chunks + 1 meta; old chunks and meta gone");
    assertBytes(await os.getBlob("r"), v2);
  });

  test("list returns live objects", T, async () => {
    const { os } = await store();
    assert.deepEqual(await within(10_000, os.list(), "list empty"), []);
    for (const n of ["a", "b", "c"]) await os.putBlob({ name: n }, te.encode(n));
    await os.delete("b");
    const names = (await within(10_000, os.list(), "list")).map((i) => i.name).sort();
    assert.deepEqual(names, ["a", "c"]);
  });

  test("delete marks the object deleted and purges its chunks", T, async () => {
    const { name, os } = await store();
    await os.putBlob({ name: "d", options: { max_chunk_size: 100 } }, randomBytes(1000));
    const r = await os.delete("d");
    assert.equal(r.success, true);
    assert.equal(r.purged, 10);
    const info = await os.info("d");
    assert.equal(info.deleted, true);
    assert.equal(info.size, 0);
    assert.equal(await os.get("d"), null);
    const si = await jsm.streams.info(`OBJ_${name}`);
    assert.equal(si.state.messages, 1, "only the deleted meta remains");
  });

  test("watch: existing entries, new puts and deletes", T, async () => {
    const { os } = await store();
    await os.putBlob({ name: "one" }, te.encode("1"));
    await os.putBlob({ name: "two" }, te.encode("2"));
    const w = await os.watch({ includeHistory: true });
    const r = reader(w, "obj watch");
    const initial = await r.take(2);
    assert.deepEqual(initial.map((i) => i.name), ["one", "two"]);
    assert.deepEqual(initial.map((i) => i.isUpdate), [false, true]);
    await os.putBlob({ name: "three" }, te.encode("3"));
    await os.delete("one");
    const live = await r.take(2);
    w.stop();
    assert.deepEqual(live.map((i) => [i.name, i.deleted, i.isUpdate]),
      [["three", false, true], ["one", true, true]]);

    // without history only new entries arrive
    const w2 = await os.watch();
    await os.putBlob({ name: "four" }, te.encode("4"));
    const [n] = await reader(w2).take(1);
    w2.stop();
    assert.equal(n.name, "four");
  });

  test("links to objects and to other stores", T, async () => {
    const { os } = await store();
    const data = randomBytes(5000);
    const target = await os.putBlob({ name: "target", options: { max_chunk_size: 1000 } }, data);
    const link = await os.link("alias", target);
    assert.equal(link.name, "alias");
    assert.deepEqual(link.options.link, { bucket: target.bucket, name: "target" });
    assert.equal(typeof link.isLink === "function" ? link.isLink() : true, true);
    assertBytes(await os.getBlob("alias"), data, "a link resolves to the target's bytes");
    await assert.rejects(os.link("alias2", link), /link/, "cannot link to a link");

    // cross-store link
    const { os: other } = await store();
    const odata = te.encode("in another bucket");
    const oinfo = await other.putBlob({ name: "elsewhere" }, odata);
    await os.link("remote", oinfo);
    assertBytes(await os.getBlob("remote"), odata);
    const bl = await os.linkStore("whole", other);
    assert.deepEqual(bl.options.link, { bucket: oinfo.bucket });

    // a deleted target cannot be linked
    await os.putBlob({ name: "gone" }, te.encode("x"));
    await os.delete("gone");
    await assert.rejects(os.link("to-gone", await os.info("gone")), /deleted/);
  });

  test("update renames and changes metadata", T, async () => {
    const { os } = await store();
    const data = te.encode("payload");
    await os.putBlob({ name: "old-name", description: "v1" }, data);
    await os.update("old-name", { name: "new-name", description: "v2" });
    assert.equal(await os.info("old-name"), null);
    const i = await os.info("new-name");
    assert.equal(i.description, "v2");
    assertBytes(await os.getBlob("new-name"), data);
  });

  test("conditional put with previousRevision", T, async () => {
    const { os } = await store();
    const i1 = await os.putBlob({ name: "c" }, te.encode("1"));
    const i2 = await os.putBlob({ name: "c" }, te.encode("2"), { previousRevision: i1.revision });
    await rejectsApi(os.putBlob({ name: "c" }, te.encode("3"), { previousRevision: i1.revision }), 10071);
    assertBytes(await os.getBlob("c"), te.encode("2"));
    assert.ok(i2.revision > i1.revision);
  });

  test("seal makes the store read-only", T, async () => {
    const { name, os } = await store();
    await os.putBlob({ name: "kept" }, te.encode("k"));
    const st = await os.seal();
    assert.equal(st.sealed, true);
    assert.equal((await jsm.streams.info(`OBJ_${name}`)).config.sealed, true);
    await assert.rejects(os.putBlob({ name: "more" }, te.encode("m")));
    assertBytes(await os.getBlob("kept"), te.encode("k"));
  });

  test("destroy removes the store", T, async () => {
    const { name, os } = await store();
    await os.putBlob({ name: "x" }, te.encode("x"));
    assert.equal(await os.destroy(), true);
    await rejectsApi(jsm.streams.info(`OBJ_${name}`), 10059);
  });
});
