"""Key-value buckets through the native API (ember.KeyValue): put/get/create/update,
delete and purge, keys and history, watches (iterator, callbacks, poll mode, stop from
everywhere), every error path, restart persistence, the wire view of a bucket, and
asyncio."""
import asyncio
import datetime
import gc
import json
import threading
import time

import pytest

import ember
import ember.aio
from ember._core import live_handles
from ember.testing import RawClient

from conftest import wait_for


@pytest.fixture
def js_server(tmp_path):
    with ember.Server(dont_listen=True, jetstream=True, store_dir=str(tmp_path / "js")) as srv:
        yield srv


@pytest.fixture
def conn(js_server):
    c = js_server.connect(name="kv-test")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def js(conn):
    return conn.jetstream()


@pytest.fixture(params=["file", "memory"])
def kv(request, js):
    return js.create_key_value("settings", history=5, storage=request.param)


# ------------------------------------------------------------------ basics

def test_put_get_entry(kv):
    before = datetime.datetime.now(datetime.timezone.utc)
    r1 = kv.put("theme", b"dark")
    assert r1 == 1
    e = kv.get("theme")
    assert isinstance(e, ember.Entry)
    assert (e.bucket, e.key, e.value, e.revision, e.delta) == ("settings", "theme", b"dark", 1, 0)
    assert e.operation is ember.KvOp.PUT and e.operation == "PUT"
    assert abs((e.created - before).total_seconds()) < 60 and e.created_ns > 0
    assert kv.put("theme", "light") == 2  # str values are UTF-8
    assert kv.get("theme").value == b"light"
    assert kv.get("theme", revision=1).value == b"dark"
    assert kv.put("empty", b"") == 3
    assert kv.get("empty").value == b""
    assert kv.put("ba", bytearray(b"\x00\xff")) == 4
    assert kv.get("ba").value == b"\x00\xff"
    assert kv.put("a/b_c-d=e.f", memoryview(b"ok")) == 5  # every key character
    assert kv.get("a/b_c-d=e.f").value == b"ok"
    assert kv.bucket == "settings" and "settings" in repr(kv)


def test_missing_deleted_purged_keys_raise_not_found(kv):
    with pytest.raises(ember.NotFoundError, match="key not found"):
        kv.get("missing")
    with pytest.raises(LookupError):  # NotFoundError is a LookupError
        kv.get("missing")
    kv.put("k", b"1")
    kv.delete("k")
    with pytest.raises(ember.NotFoundError):
        kv.get("k")
    kv.put("p", b"1")
    kv.purge("p")
    with pytest.raises(ember.NotFoundError):
        kv.get("p")
    # a revision of another key, or one that does not exist
    r = kv.put("x", b"1")
    kv.put("y", b"2")
    with pytest.raises(ember.NotFoundError):
        kv.get("y", revision=r)
    with pytest.raises(ember.NotFoundError):
        kv.get("x", revision=10_000)
    with pytest.raises(ember.NotFoundError):
        kv.history("never")


def test_create_and_update(kv):
    r1 = kv.create("lang", b"en")
    with pytest.raises(ember.WrongSequenceError) as ei:
        kv.create("lang", b"fr")
    assert "exists" in str(ei.value) or ei.value.err_code == 10071
    r2 = kv.update("lang", b"fr", last=r1)
    assert r2 > r1
    with pytest.raises(ember.WrongSequenceError) as ei:
        kv.update("lang", b"de", last=r1)
    assert ei.value.err_code == 10071 and f"wrong last sequence: {r2}" in str(ei.value)
    with pytest.raises(ember.WrongSequenceError):
        kv.update("fresh", b"x", last=5)
    assert kv.update("fresh", b"x", last=0) > 0  # last=0: the key must not exist
    # create works again after a delete or a purge (as the NATS clients do it)
    kv.delete("lang")
    r3 = kv.create("lang", b"it")
    assert kv.get("lang").value == b"it" and kv.get("lang").revision == r3
    kv.purge("lang")
    assert kv.create("lang", b"es") > r3
    assert kv.get("lang").value == b"es"


def test_compare_and_set_from_threads(kv):
    kv.put("counter", b"0")
    errors = []

    def incr(n):
        done = 0
        while done < n:
            e = kv.get("counter")
            try:
                kv.update("counter", str(int(e.value) + 1).encode(), last=e.revision)
                done += 1
            except ember.WrongSequenceError:
                pass
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    ts = [threading.Thread(target=incr, args=(25,)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert kv.get("counter").value == b"100"


def test_keys_and_history(kv):
    assert kv.keys() == []
    for k in ("b", "a", "c.x", "c.y"):
        kv.put(k, k.encode())
    kv.delete("b")
    assert kv.keys() == ["a", "c.x", "c.y"]
    kv.put("h", b"1")
    kv.delete("h")
    kv.put("h", b"2")
    hist = kv.history("h")
    assert [e.operation for e in hist] == [ember.KvOp.PUT, ember.KvOp.DEL, ember.KvOp.PUT]
    assert [e.value for e in hist] == [b"1", b"", b"2"]
    assert hist[0].revision < hist[1].revision < hist[2].revision
    kv.purge("h")
    hist = kv.history("h")
    assert len(hist) == 1 and hist[0].operation == ember.KvOp.PURGE
    assert "h" not in kv.keys()
    # history is limited to the bucket's setting (5)
    for i in range(8):
        kv.put("many", str(i).encode())
    assert [e.value for e in kv.history("many")] == [b"3", b"4", b"5", b"6", b"7"]


def test_history_one_keeps_only_latest(js):
    kv = js.create_key_value("h1")
    for i in range(3):
        kv.put("k", str(i).encode())
    assert [e.value for e in kv.history("k")] == [b"2"]
    with pytest.raises(ember.NotFoundError):
        kv.get("k", revision=1)


# ------------------------------------------------------------------ errors

BAD_KEYS = ["bad key", ".dot", "dot.", "a..b", "a*", "a.>", "", "tab\tkey", "ü"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys(kv, key):
    with pytest.raises(ember.InvalidArgumentError):
        kv.put(key, b"x")
    with pytest.raises(ember.InvalidArgumentError):
        kv.get(key)
    with pytest.raises(ember.InvalidArgumentError):
        kv.create(key, b"x")
    with pytest.raises(ember.InvalidArgumentError):
        kv.update(key, b"x", last=1)
    with pytest.raises(ember.InvalidArgumentError):
        kv.delete(key)
    with pytest.raises(ember.InvalidArgumentError):
        kv.purge(key)
    with pytest.raises(ember.InvalidArgumentError):
        kv.history(key)


def test_invalid_key_with_nul(kv):
    with pytest.raises(ember.InvalidArgumentError):
        kv.put("a\0b", b"x")


def test_missing_and_invalid_buckets(js):
    with pytest.raises(ember.NotFoundError, match="bucket not found"):
        js.key_value("nope")
    with pytest.raises(ember.NotFoundError):
        js.delete_key_value("nope")
    for bad in ("bad.name", "bad name", "", "a*", "a>"):
        with pytest.raises(ember.InvalidArgumentError):
            js.create_key_value(bad)
        with pytest.raises(ember.InvalidArgumentError):
            js.key_value(bad)
    for history in (0, 65):
        with pytest.raises(ember.InvalidArgumentError, match="history"):
            js.create_key_value("b", history=history)
    with pytest.raises(ember.InvalidArgumentError):
        js.create_key_value("b", ttl=-1)
    with pytest.raises(ember.InvalidArgumentError):
        js.create_key_value("b", storage="tape")


def test_deleted_bucket(js):
    kv = js.create_key_value("gone")
    kv.put("k", b"v")
    js.delete_key_value("gone")
    with pytest.raises(ember.NotFoundError, match="bucket not found"):
        kv.get("k")
    with pytest.raises(ember.NotFoundError, match="bucket not found"):
        kv.put("k", b"v")
    with pytest.raises(ember.NotFoundError):
        kv.keys()
    with pytest.raises(ember.NotFoundError):
        kv.watch()
    with pytest.raises(ember.NotFoundError):
        js.delete_key_value("gone")


def test_create_bucket_idempotent_and_conflict(js):
    a = js.create_key_value("cfg", history=3, description="d")
    a.put("k", b"v")
    b = js.create_key_value("cfg", history=3, description="d")  # same config: opens it
    assert b.get("k").value == b"v"
    with pytest.raises(ember.ExistsError) as ei:
        js.create_key_value("cfg", history=4)
    assert ei.value.err_code == 10058
    c = js.key_value("cfg")
    assert c.get("k").value == b"v"
    st = c.status()
    assert st.name == "KV_cfg" and st.msgs == 1


def test_limits(js):
    kv = js.create_key_value("lim", max_value_size=8)
    kv.put("k", b"12345678")
    with pytest.raises(ember.LimitError):
        kv.put("k", b"123456789")
    small = js.create_key_value("small", max_bytes=300)
    with pytest.raises(ember.LimitError):
        for i in range(50):
            small.put(f"k{i}", b"." * 50)  # discard new: refused once full
    assert len(small.keys()) < 50


def test_ttl_bucket(js):
    kv = js.create_key_value("ttl", ttl=0.5, storage="memory")
    kv.put("k", b"v")
    assert kv.get("k").value == b"v"
    wait_for(lambda: _gone(kv, "k"), timeout=5, interval=0.05)


def _gone(kv, key):
    try:
        kv.get(key)
        return False
    except ember.NotFoundError:
        return True


def test_closed_handle_and_connection(js_server):
    c = js_server.connect()
    kv = c.jetstream().create_key_value("cl")
    kv.put("k", b"v")
    kv.close()
    kv.close()
    assert kv.is_closed
    with pytest.raises(ember.ClosedError):
        kv.get("k")
    kv2 = c.jetstream().key_value("cl")
    c.close()
    with pytest.raises(ember.ClosedError):
        kv2.get("k")
    with pytest.raises(ember.ClosedError):
        kv2.put("k", b"v")


# ------------------------------------------------------------------ watch

def test_watch_iterator(kv):
    for i in range(5):
        kv.put(f"k.{i}", str(i).encode())
    kv.put("k.0", b"latest")
    kv.delete("k.4")
    kv.put("other", b"x")
    w = kv.watch("k.>")
    initial = []
    for e in w:
        if e is None:
            break
        initial.append(e)
    assert sorted((e.key, e.value, e.operation) for e in initial) == [
        ("k.0", b"latest", "PUT"), ("k.1", b"1", "PUT"), ("k.2", b"2", "PUT"),
        ("k.3", b"3", "PUT"), ("k.4", b"", "DEL")]
    assert initial[-1].delta == 0
    assert all(e.bucket == "settings" for e in initial)
    kv.put("k.new", b"n")
    kv.put("not.watched", b"n")
    kv.purge("k.1")
    e = w.updates(2)
    assert (e.key, e.value, e.operation) == ("k.new", b"n", ember.KvOp.PUT)
    e = w.updates(2)
    assert (e.key, e.operation) == ("k.1", ember.KvOp.PURGE)
    with pytest.raises(ember.TimeoutError):
        w.updates(0.1)
    assert w.is_running and not w.has_callback and "running" in repr(w)
    w.stop()
    w.stop()
    kv.put("k.after", b"x")
    with pytest.raises(ember.ClosedError):
        w.updates(0.2)
    assert list(w) == []


def test_watch_empty_bucket_marker_first(kv):
    with kv.watch() as w:
        assert w.updates(2) is None
        kv.put("a", b"1")
        e = w.updates(2)
        assert e.key == "a" and e.revision == 1
    assert not w.is_running


def test_watch_on_no_echo_connection(js_server):
    c = js_server.connect(no_echo=True)
    try:
        kv = c.jetstream().create_key_value("ne")
        with kv.watch() as w:
            assert w.updates(2) is None  # the end-of-initial marker of an empty bucket
            kv.put("k", b"v")
            assert w.updates(2).key == "k"
        kv.put("k", b"v2")
        with kv.watch() as w:
            assert w.updates(2).value == b"v2"
            assert w.updates(2) is None
    finally:
        c.close()


def test_watch_single_key_and_wildcard(kv):
    kv.put("cfg.a", b"1")
    kv.put("cfg.b", b"2")
    with kv.watch("cfg.a") as w:
        assert w.updates(2).key == "cfg.a"
        assert w.updates(2) is None
        kv.put("cfg.b", b"3")
        kv.put("cfg.a", b"4")
        assert w.updates(2).value == b"4"
    with kv.watch("cfg.*") as w:
        got = {w.updates(2).key, w.updates(2).key}
        assert got == {"cfg.a", "cfg.b"} and w.updates(2) is None
    with pytest.raises(ember.InvalidArgumentError):
        kv.watch("bad key")
    with pytest.raises(ember.InvalidArgumentError):
        kv.watch(mode="inline")


def test_watch_many_initial_values(kv):
    for i in range(1000):
        kv.put(f"k.{i}", b"v")
    kv.put("k.0", b"v2")
    with kv.watch("k.>") as w:
        n = 0
        deltas = []
        for e in w:
            if e is None:
                break
            n += 1
            deltas.append(e.delta)
        assert n == 1000
        assert deltas[0] == 999 and deltas[-1] == 0


def test_watch_callback_dispatch(conn, kv):
    seen = []
    marker = threading.Event()
    got_update = threading.Event()
    threads = set()

    def cb(e):
        threads.add(threading.current_thread().ident)
        seen.append(e)
        if e is None:
            marker.set()
        elif e.key == "late":
            got_update.set()

    kv.put("early", b"1")
    w = kv.watch(cb=cb)
    assert w.has_callback
    assert marker.wait(5)
    kv.put("late", b"2")
    assert got_update.wait(5)
    assert [e and e.key for e in seen] == ["early", None, "late"]
    assert threading.get_ident() not in threads  # the dispatcher thread
    with pytest.raises(TypeError):
        w.updates(0.1)
    w.stop()
    kv.put("later", b"3")
    time.sleep(0.1)
    assert len(seen) == 3


def test_watch_callback_exceptions_and_stop_inside(js_server):
    errors = []
    c = js_server.connect(error_cb=errors.append)
    kv = c.jetstream().create_key_value("cbx")
    calls = []
    holder = {}

    def cb(e):
        calls.append(e)
        if e is not None and e.key == "boom":
            raise RuntimeError("boom")
        if e is not None and e.key == "stop":
            holder["w"].stop()  # from inside its own callback

    holder["w"] = kv.watch(cb=cb)
    wait_for(lambda: calls == [None])
    kv.put("boom", b"")
    wait_for(lambda: len(errors) == 1)
    assert isinstance(errors[0], RuntimeError)
    kv.put("stop", b"")
    wait_for(lambda: not holder["w"].is_running)
    kv.put("after", b"")
    time.sleep(0.1)
    assert [e and e.key for e in calls] == [None, "boom", "stop"]
    c.close()


def test_watch_poll_mode(conn, kv):
    seen = []
    kv.put("a", b"1")
    w = kv.watch(cb=seen.append, mode="poll")
    time.sleep(0.05)
    assert seen == []  # nothing runs until this thread polls
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        conn.poll(0.1)
    assert [e and e.key for e in seen] == ["a", None]
    kv.put("b", b"2")
    assert conn.poll(2) >= 1
    assert seen[-1].key == "b"
    w.stop()


def test_watchers_end_when_connection_closes_and_leave_no_handles(js_server):
    gc.collect()
    base = live_handles()
    c = js_server.connect()
    kv = c.jetstream().create_key_value("wc")
    w1 = kv.watch()
    w2 = kv.watch(cb=lambda e: None)
    assert w1.updates(2) is None
    results = []
    t = threading.Thread(target=lambda: results.append(list(w1)))
    t.start()
    time.sleep(0.05)
    c.close()
    t.join(5)
    assert results == [[]] and not w1.is_running and not w2.is_running
    w1.stop()
    w2.stop()
    gc.collect()
    assert live_handles() == base


def test_dropped_iterator_watcher_stops(js_server, conn):
    gc.collect()
    base = live_handles()
    kv = conn.jetstream().create_key_value("drop")
    w = kv.watch()
    assert w.updates(2) is None
    assert live_handles() == base + 1
    del w
    gc.collect()
    wait_for(lambda: live_handles() == base)
    assert not conn._core.watchers


def test_close_connection_from_watch_callback(js_server):
    c = js_server.connect()
    kv = c.jetstream().create_key_value("cc")
    done = threading.Event()

    def cb(e):
        if e is not None:
            c.close()
            done.set()

    kv.watch(cb=cb)
    kv.put("x", b"1")
    assert done.wait(5)
    wait_for(lambda: c.is_closed)


# ------------------------------------------------------------------ persistence, wire

def test_restart_keeps_buckets(tmp_path):
    store = str(tmp_path / "kvstore")
    with ember.Server(dont_listen=True, jetstream=True, store_dir=store) as srv:
        js = srv.connect().jetstream()
        kv = js.create_key_value("settings", history=3)
        kv.put("theme", b"dark")
        r = kv.put("theme", b"light")
        kv.put("gone", b"x")
        kv.delete("gone")
        mem = js.create_key_value("volatile", storage="memory")
        mem.put("k", b"v")
    with ember.Server(dont_listen=True, jetstream=True, store_dir=store) as srv:
        js = srv.connect().jetstream()
        kv = js.key_value("settings")
        e = kv.get("theme")
        assert (e.value, e.revision) == (b"light", r)
        assert kv.get("theme", revision=r - 1).value == b"dark"
        assert kv.keys() == ["theme"]
        assert [x.operation for x in kv.history("gone")] == ["PUT", "DEL"]
        with pytest.raises(ember.NotFoundError):
            js.key_value("volatile")
        assert kv.update("theme", b"blue", last=r) > r
        assert kv.get("theme").value == b"blue"


def test_wire_view_of_a_bucket(tmp_path):
    with ember.Server(port=-1, jetstream=True, store_dir=str(tmp_path / "w")) as srv:
        conn = srv.connect()
        kv = conn.jetstream().create_key_value("settings", history=4, max_value_size=1024)
        kv.put("theme", b"dark")
        info = json.loads(conn.request("$JS.API.STREAM.INFO.KV_settings", b"", 5).data)
        assert "error" not in info, info
        cfg = info["config"]
        assert cfg["subjects"] == ["$KV.settings.>"]
        assert cfg["max_msgs_per_subject"] == 4 and cfg["max_msg_size"] == 1024
        assert cfg["discard"] == "new" and cfg["allow_rollup_hdrs"] is True
        assert cfg["allow_direct"] is True
        assert info["state"]["messages"] == 1
        # a direct get, as the NATS clients read a key
        r = conn.request("$JS.API.DIRECT.GET.KV_settings.$KV.settings.theme", b"", 5)
        assert r.data == b"dark" and r.headers["Nats-Sequence"] == "1"
        # a TCP client writes a key the way the clients do; the native API reads it
        with RawClient(srv.client_url) as rc:
            ack = json.loads(rc.request("$KV.settings.lang", b"en", timeout=5).data)
            assert ack["stream"] == "KV_settings" and ack["seq"] == 2
            rc.request("$KV.settings.theme", b"", timeout=5, headers={"KV-Operation": "DEL"})
        assert kv.get("lang").value == b"en"
        with pytest.raises(ember.NotFoundError):
            kv.get("theme")
        assert kv.history("theme")[-1].operation == ember.KvOp.DEL
        # a bucket made over the wire opens natively
        with RawClient(srv.client_url) as rc:
            r = json.loads(rc.request("$JS.API.STREAM.CREATE.KV_wire", json.dumps({
                "name": "KV_wire", "subjects": ["$KV.wire.>"], "max_msgs_per_subject": 1,
                "discard": "new", "allow_rollup_hdrs": True, "allow_direct": True,
            }).encode(), timeout=5).data)
            assert "error" not in r, r
            rc.request("$KV.wire.k", b"from-tcp", timeout=5)
        assert conn.jetstream().key_value("wire").get("k").value == b"from-tcp"


# ------------------------------------------------------------------ asyncio

def test_put_async(kv, js):
    futs = [kv.put_async(f"k.{i % 10}", f"v{i}".encode()) for i in range(500)]
    revs = [f.result(timeout=20) for f in futs]
    assert revs == list(range(1, 501))  # in the order written
    for k in range(10):
        e = kv.get(f"k.{k}")
        assert e.value == f"v{490 + k}".encode() and e.revision == revs[490 + k]
    # found before writing: raised at once, nothing in flight
    with pytest.raises(ember.InvalidArgumentError):
        kv.put_async("bad key", b"x")
    # refused by the store: the Future carries the typed error
    lim = js.create_key_value("lim_async", max_value_size=4)
    with pytest.raises(ember.LimitError):
        lim.put_async("k", b"12345").result(timeout=10)
    assert lim.put_async("k", b"1234").result(timeout=10) == 1
    js.delete_key_value("lim_async")
    with pytest.raises(ember.NotFoundError):
        lim.put_async("k", b"1")
    lim.close()
    kv.close()
    with pytest.raises(ember.ClosedError):
        kv.put_async("k", b"1")


def test_aio_put_gather(tmp_path):
    async def main():
        with ember.Server(dont_listen=True, jetstream=True,
                          store_dir=str(tmp_path / "aio")) as srv:
            async with await ember.aio.connect(srv) as nc:
                kv = await nc.jetstream().create_key_value("many")
                revs = await asyncio.gather(*(kv.put(f"k{i}", b"v") for i in range(200)))
                assert sorted(revs) == list(range(1, 201))
                assert len(await kv.keys()) == 200
                with pytest.raises(ember.InvalidArgumentError):
                    await kv.put("bad key", b"v")
    asyncio.run(asyncio.wait_for(main(), 30))


def test_aio_key_value(tmp_path):
    async def main():
        with ember.Server(dont_listen=True, jetstream=True,
                          store_dir=str(tmp_path / "aio")) as srv:
            async with await ember.aio.connect(srv) as nc:
                js = nc.jetstream()
                kv = await js.create_key_value("settings", history=3)
                assert isinstance(kv.sync, ember.KeyValue)
                r = await kv.put("theme", b"dark")
                assert (await kv.get("theme")).value == b"dark"
                with pytest.raises(ember.NotFoundError):
                    await kv.get("missing")
                with pytest.raises(ember.WrongSequenceError):
                    await kv.create("theme", b"x")
                r2 = await kv.update("theme", b"light", r)
                with pytest.raises(ember.WrongSequenceError):
                    await kv.update("theme", b"x", r)
                assert await kv.keys() == ["theme"]
                assert len(await kv.history("theme")) == 2
                loop_thread = threading.get_ident()
                w = await kv.watch()
                first = await w.updates(2)
                assert (first.key, first.revision) == ("theme", r2)
                assert await w.updates(2) is None
                await kv.put("lang", b"en")
                await kv.delete("lang")
                got = []
                async for e in w:
                    assert threading.get_ident() == loop_thread
                    got.append((e.key, e.operation))
                    if len(got) == 2:
                        break
                assert got == [("lang", "PUT"), ("lang", "DEL")]
                w.stop()
                with pytest.raises(ember.ClosedError):
                    await w.updates(0.1)
                await kv.purge("theme")
                opened = await js.key_value("settings")
                with pytest.raises(ember.NotFoundError):
                    await opened.get("theme")
                w2 = await kv.watch()
                initial = []
                async for e in w2:
                    if e is None:
                        break
                    initial.append((e.key, e.operation))
                assert sorted(initial) == [("lang", "DEL"), ("theme", "PURGE")]
            # the connection closed: the watch ends
            assert [e async for e in w2] == []
    asyncio.run(asyncio.wait_for(main(), 30))


# ------------------------------------------------------------------ the example

def test_kv_example_runs_twice_on_one_store(tmp_path):
    import os
    import subprocess
    import sys
    ex = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "kv.py")
    store = str(tmp_path / "store")
    first = subprocess.run([sys.executable, ex, "--store", store], capture_output=True,
                           text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "first run" in first.stdout and "stale update refused" in first.stdout
    assert "DEL tmp" in first.stdout
    second = subprocess.run([sys.executable, ex, "--store", store], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "found theme='light' from an earlier run" in second.stdout
