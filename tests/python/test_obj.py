"""Object stores through the native API (ember.ObjectStore): put and get of every size
class and input kind (bytes, str, file-like), streaming reads and writes, info, list,
delete, replacement, digest checks, errors, threads, restart persistence, the wire view
(an object written by a TCP client exactly as nats.js writes one, and the metadata this
API writes), and asyncio."""
import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import threading

import pytest

import ember
import ember.aio
from ember.testing import RawClient


@pytest.fixture
def js_server(tmp_path):
    with ember.Server(dont_listen=True, jetstream=True, store_dir=str(tmp_path / "js")) as srv:
        yield srv


@pytest.fixture
def conn(js_server):
    c = js_server.connect(name="obj-test")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def js(conn):
    return conn.jetstream()


@pytest.fixture(params=["file", "memory"])
def store(request, js):
    return js.create_object_store("files", storage=request.param, description="test")


def digest(data):
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


def meta_subject(bucket, name):
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


# ------------------------------------------------------------------ put / get

@pytest.mark.parametrize("size", [0, 1, 128 * 1024, 128 * 1024 + 1, 3 * 1024 * 1024 + 7])
def test_put_get_sizes(store, size):
    data = os.urandom(size)
    info = store.put("blob.bin", data)
    assert isinstance(info, ember.ObjectInfo)
    assert (info.bucket, info.name, info.size) == ("files", "blob.bin", size)
    assert info.chunks == -(-size // (128 * 1024))
    assert info.digest == digest(data)
    assert info.chunk_size == 128 * 1024 and not info.deleted and not info.is_link
    assert len(info.nuid) == 22 and info.revision > 0 and info.mtime_ns > 0
    assert store.get("blob.bin") == data
    assert store.info("blob.bin") == info


def test_put_inputs(store):
    assert store.put("s", "héllo").size == len("héllo".encode())
    assert store.get("s") == "héllo".encode()
    assert store.put("ba", bytearray(b"\x00\xff")).size == 2
    assert store.get("ba") == b"\x00\xff"
    assert store.put("mv", memoryview(b"abcdef")[1:4]).size == 3
    assert store.get("mv") == b"bcd"
    assert store.put("none", None).size == 0
    assert store.get("none") == b""
    # file-like objects are read to their end, chunk by chunk
    data = os.urandom(1_000_003)
    info = store.put("file", io.BytesIO(data), chunk_size=100_000, description="from a file")
    assert (info.size, info.chunks, info.chunk_size) == (len(data), 11, 100_000)
    assert info.description == "from a file"
    assert store.get("file") == data
    # names are any string
    name = "dir/sub dir/naïve name.tar.gz*>"
    store.put(name, b"x")
    assert store.get(name) == b"x"


def test_put_real_file(store, tmp_path):
    path = tmp_path / "in.bin"
    data = os.urandom(400_000)
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert store.put("in.bin", f).digest == digest(data)
    out = tmp_path / "out.bin"
    with store.get_reader("in.bin") as r, open(out, "wb") as f:
        shutil.copyfileobj(r, f)
    assert out.read_bytes() == data


def test_streaming_reader(store):
    data = os.urandom(700_000)
    store.put("big", data)
    r = store.get_reader("big")
    assert isinstance(r, io.RawIOBase) and r.readable() and not r.seekable()
    assert r.info.size == len(data) and r.info.name == "big"
    parts = []
    while True:
        p = r.read(7777)
        assert len(p) <= 7777
        if not p:
            break
        parts.append(p)
    assert b"".join(parts) == data
    assert r.read(10) == b""  # stays at the end
    r.close()
    with pytest.raises(ValueError):
        r.read(1)
    with store.get_reader("big") as r:
        buf = bytearray(100)
        assert r.readinto(buf) == 100 and bytes(buf) == data[:100]
        assert r.read() == data[100:]
    with store.get_reader("big") as r:
        assert r.readall() == data
    # buffered on top, as files are
    with io.BufferedReader(store.get_reader("big")) as br:
        assert br.read(10) == data[:10] and br.read() == data[10:]


def test_streaming_writer(store, js):
    data = os.urandom(500_000)
    with store.open_writer("w", description="streamed") as w:
        assert w.is_open and "open" in repr(w)
        for i in range(0, len(data), 33_333):
            w.write(data[i:i + 33_333])
    assert not w.is_open
    assert w.info.size == len(data) and w.info.description == "streamed"
    assert store.get("w") == data
    with pytest.raises(ember.ClosedError):
        w.write(b"more")
    with pytest.raises(ember.ClosedError):
        w.commit()
    w.abort()  # idempotent
    # an exception aborts: nothing of the object stays
    before = store.status().msgs
    with pytest.raises(RuntimeError):
        with store.open_writer("failed") as w2:
            w2.write(data)
            raise RuntimeError("boom")
    assert store.status().msgs == before
    with pytest.raises(ember.NotFoundError):
        store.info("failed")
    w3 = store.open_writer("explicit")
    w3.write(b"abc")
    assert w3.commit().size == 3
    w4 = store.open_writer("aborted")
    w4.write(data)
    w4.abort()
    assert store.status().msgs == before + 2  # 'explicit': one chunk and its metadata


def test_writer_aborted_when_connection_closes(js_server):
    c = js_server.connect()
    store = c.jetstream().create_object_store("files")
    w = store.open_writer("pending")
    w.write(os.urandom(300_000))
    c.close()
    assert not w.is_open
    with pytest.raises(ember.ClosedError):
        w.write(b"x")
    c2 = js_server.connect()
    s2 = c2.jetstream().object_store("files")
    assert s2.status().msgs == 0
    assert s2.list() == []
    c2.close()


def test_reader_after_connection_close(js_server):
    c = js_server.connect()
    store = c.jetstream().create_object_store("files")
    store.put("x", b"data")
    r = store.get_reader("x")
    c.close()
    with pytest.raises(ember.ClosedError):
        r.read(1)
    r.close()


# ------------------------------------------------------------------ list / delete

def test_list_delete_replace(store):
    assert store.list() == []
    for n in ("b", "a", "c"):
        store.put(n, n * 10)
    assert store.list() == ["a", "b", "c"]
    msgs = store.status().msgs
    store.delete("b")
    assert store.list() == ["a", "c"]
    assert store.status().msgs == msgs - 1  # its chunk went, the marker replaced the meta
    with pytest.raises(ember.NotFoundError, match="object not found"):
        store.get("b")
    with pytest.raises(ember.NotFoundError):
        store.get_reader("b")
    info = store.info("b")
    assert info.deleted and info.size == 0 and info.chunks == 0 and info.digest == ""
    with pytest.raises(ember.NotFoundError):
        store.delete("b")
    with pytest.raises(ember.NotFoundError):
        store.delete("never")
    with pytest.raises(LookupError):
        store.info("never")
    # replacing an object purges the old chunks
    store.put("r", os.urandom(10_000), chunk_size=1000)
    msgs = store.status().msgs
    old = store.info("r")
    new = store.put("r", b"short")
    assert new.nuid != old.nuid and new.revision > old.revision
    assert store.status().msgs == msgs - 10 + 1  # 10 old chunks out, 1 new in
    assert store.get("r") == b"short"


def test_errors(js, store):
    with pytest.raises(ember.InvalidArgumentError):
        store.put("", b"x")
    with pytest.raises(ember.InvalidArgumentError):
        store.put("x" * 2049, b"x")
    with pytest.raises(ember.InvalidArgumentError):
        store.get("")
    with pytest.raises(ember.InvalidArgumentError):
        store.put("x", 12)
    with pytest.raises(ember.InvalidArgumentError):
        store.put("x", b"x", chunk_size=0)
    with pytest.raises(ember.NotFoundError, match="bucket not found"):
        js.object_store("nope")
    with pytest.raises(ember.InvalidArgumentError):
        js.object_store("bad.name")
    with pytest.raises(ember.InvalidArgumentError):
        js.create_object_store("bad name")
    with pytest.raises(ember.ExistsError):
        js.create_object_store("files", ttl=60)
    with pytest.raises(ember.NotFoundError):
        js.delete_object_store("nope")


def test_limits(js):
    tiny = js.create_object_store("tiny", max_bytes=64 * 1024)
    with pytest.raises(ember.LimitError, match="maximum bytes"):
        tiny.put("big", os.urandom(200_000))
    assert tiny.status().msgs == 0
    assert tiny.put("small", b"ok").size == 2


def test_bucket_lifecycle(js):
    s = js.create_object_store("life", chunk_size=1000)
    assert s.put("x", os.urandom(5000)).chunks == 5  # the handle's chunk size
    opened = js.object_store("life")
    assert opened.put("y", os.urandom(5000)).chunks == 1  # default 128 KiB
    assert sorted(opened.list()) == ["x", "y"]
    with opened:
        pass
    assert opened.is_closed
    with pytest.raises(ember.ClosedError):
        opened.get("x")
    js.delete_object_store("life")
    with pytest.raises(ember.NotFoundError):
        js.object_store("life")
    with pytest.raises(ember.NotFoundError):
        s.get("x")
    s.close()
    assert "life" in repr(s)


# ------------------------------------------------------------------ digests

def test_digest_mismatch(js, store):
    store.put("damaged", os.urandom(3000), chunk_size=1000)
    info = store.info("damaged")
    js.delete_msg("OBJ_files", info.revision - 2)  # the middle chunk
    with pytest.raises(ember.EmberIOError, match="digest mismatch"):
        store.get("damaged")
    with store.get_reader("damaged") as r:
        assert len(r.read(1000)) == 1000
        assert len(r.read(1000)) == 1000
        with pytest.raises(ember.EmberIOError, match="digest mismatch"):
            r.read(1000)
        with pytest.raises(ember.EmberIOError):  # sticky
            r.read(1000)
    with pytest.raises(OSError):  # EmberIOError is an OSError
        store.get("damaged")


# ------------------------------------------------------------------ threads

def test_threads(js_server):
    c = js_server.connect()
    store = c.jetstream().create_object_store("mt")
    errors = []

    def writer(i):
        try:
            for k in range(10):
                data = bytes([i]) * (5000 + k)
                assert store.put(f"obj-{i}", data, chunk_size=1024).size == len(data)
                assert store.get(f"obj-{i}") == data
                store.put("shared", data, chunk_size=512)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert store.list() == ["obj-0", "obj-1", "obj-2", "obj-3", "shared"]
    total = sum(store.info(n).chunks + 1 for n in store.list())
    assert store.status().msgs == total  # every replaced object's chunks were purged
    c.close()


# ------------------------------------------------------------------ persistence, wire

def test_restart_keeps_objects(tmp_path):
    sd = str(tmp_path / "objstore")
    data = os.urandom(1_000_000)
    with ember.Server(dont_listen=True, jetstream=True, store_dir=sd) as srv:
        js = srv.connect().jetstream()
        s = js.create_object_store("files")
        s.put("keep", data)
        s.put("gone", b"x")
        s.delete("gone")
        js.create_object_store("volatile", storage="memory").put("m", b"v")
    with ember.Server(dont_listen=True, jetstream=True, store_dir=sd) as srv:
        js = srv.connect().jetstream()
        s = js.object_store("files")
        assert s.get("keep") == data
        assert s.list() == ["keep"]
        assert s.info("gone").deleted
        with pytest.raises(ember.NotFoundError):
            js.object_store("volatile")


def test_wire_view(tmp_path):
    with ember.Server(port=-1, jetstream=True, store_dir=str(tmp_path / "w")) as srv:
        conn = srv.connect()
        store = conn.jetstream().create_object_store("files", description="shared")
        info = json.loads(conn.request("$JS.API.STREAM.INFO.OBJ_files", b"", 5).data)
        cfg = info["config"]
        assert cfg["subjects"] == ["$O.files.C.>", "$O.files.M.>"]
        assert cfg["discard"] == "new" and cfg["allow_rollup_hdrs"] is True
        assert cfg["allow_direct"] is True and cfg["description"] == "shared"

        # the metadata this API writes, as a client reads it (STREAM.MSG.GET last_by_subj)
        data = os.urandom(200_000)
        oi = store.put("report.pdf", data, description="Q1")
        r = json.loads(conn.request("$JS.API.STREAM.MSG.GET.OBJ_files", json.dumps(
            {"last_by_subj": meta_subject("files", "report.pdf")}).encode(), 5).data)
        msg = r["message"]
        meta = json.loads(base64.b64decode(msg["data"]))
        assert meta["name"] == "report.pdf" and meta["description"] == "Q1"
        assert meta["bucket"] == "files" and meta["nuid"] == oi.nuid
        assert (meta["size"], meta["chunks"]) == (200_000, 2)
        assert meta["digest"] == digest(data)
        assert meta["options"]["max_chunk_size"] == 128 * 1024
        assert "mtime" in meta and not meta.get("deleted", False)
        assert b"Nats-Rollup: sub" in base64.b64decode(msg["hdrs"])

        # an object written over TCP exactly as nats.js writes one, read natively
        blob = os.urandom(300_001)
        nuid = "Y9dkHc7Jf0Ol1mIwWhTjzZ"
        with RawClient(srv.client_url) as rc:
            for i in range(0, len(blob), 128 * 1024):
                ack = json.loads(rc.request(f"$O.files.C.{nuid}", blob[i:i + 128 * 1024],
                                            timeout=5).data)
                assert ack["stream"] == "OBJ_files"
            meta = {"bucket": "files", "nuid": nuid, "size": len(blob), "chunks": 3,
                    "name": "from-js.bin", "description": "",
                    "options": {"max_chunk_size": 128 * 1024}, "metadata": {},
                    "mtime": "2025-01-02T03:04:05.678Z", "digest": digest(blob),
                    "deleted": False}
            ack = json.loads(rc.request(meta_subject("files", "from-js.bin"),
                                        json.dumps(meta).encode(), timeout=5,
                                        headers={"Nats-Rollup": "sub"}).data)
            assert "error" not in ack, ack
        assert store.get("from-js.bin") == blob
        got = store.info("from-js.bin")
        assert (got.nuid, got.chunks, got.size) == (nuid, 3, len(blob))
        assert store.list() == ["from-js.bin", "report.pdf"]
        store.delete("from-js.bin")
        r = json.loads(conn.request("$JS.API.STREAM.MSG.GET.OBJ_files", json.dumps(
            {"last_by_subj": f"$O.files.C.{nuid}"}).encode(), 5).data)
        assert r["error"]["err_code"] == 10037  # its chunks were purged


# ------------------------------------------------------------------ asyncio

def test_aio_object_store(tmp_path):
    async def main():
        with ember.Server(dont_listen=True, jetstream=True,
                          store_dir=str(tmp_path / "aio")) as srv:
            async with await ember.aio.connect(srv) as nc:
                js = nc.jetstream()
                s = await js.create_object_store("files")
                assert isinstance(s.sync, ember.ObjectStore)
                data = os.urandom(300_000)
                info = await s.put("a", data)
                assert info.size == len(data)
                assert await s.get("a") == data
                assert (await s.info("a")).digest == digest(data)
                assert await s.list() == ["a"]
                await s.delete("a")
                with pytest.raises(ember.NotFoundError):
                    await s.get("a")
                opened = await js.object_store("files")
                assert await opened.list() == []
                await js.delete_object_store("files")
                with pytest.raises(ember.NotFoundError):
                    await js.object_store("files")
    asyncio.run(asyncio.wait_for(main(), 30))
