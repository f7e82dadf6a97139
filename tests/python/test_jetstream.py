"""JetStream through the native API (ember.JetStream): streams (file and memory), durable
and asynchronous publish, dedupe and expectations, stored-message reads, pull consumers
with every acknowledgement, limits, restart persistence, error mapping, the wire view of
the same objects ($JS.API over the in-process connection and over TCP), and asyncio."""
import asyncio
import concurrent.futures
import datetime
import json
import threading
import time

import pytest

import ember
import ember.aio
from ember.jetstream import pending_async_acks
from ember.testing import RawClient

from conftest import wait_for


@pytest.fixture
def js_server(tmp_path):
    with ember.Server(dont_listen=True, jetstream=True, store_dir=str(tmp_path / "js")) as srv:
        yield srv


@pytest.fixture
def js(js_server):
    conn = js_server.connect(name="js-test")
    try:
        yield conn.jetstream()
    finally:
        conn.close()


def api(conn, subject, body=None):
    """A $JS.API request over an in-process connection: the wire view."""
    r = conn.request(subject, json.dumps(body).encode() if body is not None else b"",
                     timeout=5)
    return json.loads(r.data)


# ------------------------------------------------------------------ server options

def test_server_jetstream_options(tmp_path):
    store = tmp_path / "store"
    with ember.Server(dont_listen=True, jetstream=True, store_dir=store,
                      jetstream_domain="embedded", max_memory=64 << 20,
                      max_store=1 << 30, sync_interval=0.05, server_name="app") as srv:
        assert srv.jetstream_enabled and srv.store_dir == str(store)
        conn = srv.connect()
        info = api(conn, "$JS.API.INFO")
        assert "error" not in info, info
        assert info.get("domain") == "embedded"
        js = conn.jetstream()
        js.add_stream("S", subjects=["s.>"])
        assert js.publish("s.1", b"x").seq == 1  # acked with a sync interval too
    assert store.is_dir()


def test_max_memory_and_max_store_are_enforced(tmp_path):
    with ember.Server(dont_listen=True, jetstream=True, store_dir=str(tmp_path / "s"),
                      max_memory=64 * 1024, max_store=64 * 1024) as srv:
        js = srv.connect().jetstream()
        for storage in ("memory", "file"):
            name = storage.upper()
            js.add_stream(name, subjects=[storage], storage=storage)
            with pytest.raises(ember.Error) as ei:
                for _ in range(200):
                    js.publish(storage, b"." * 1024)
            assert ei.value.err_code is not None, ei.value
            assert js.stream_info(name).msgs < 200


def test_jetstream_disabled_raises_state_error():
    with ember.Server(dont_listen=True) as srv:
        assert not srv.jetstream_enabled
        js = srv.connect().jetstream()
        with pytest.raises(ember.StateError, match="JetStream not enabled"):
            js.stream_info("X")
        with pytest.raises(ember.StateError):
            js.add_stream("X")
        with pytest.raises(ember.StateError):
            js.publish("X", b"")
        with pytest.raises(ember.StateError):
            js.create_key_value("b")


def test_pytest_fixture_has_jetstream(ember_server, ember_conn):
    assert ember_server.jetstream_enabled and ember_server.store_dir
    js = ember_conn.jetstream()
    js.add_stream("FIXTURE", subjects=["fx.>"])
    assert js.publish("fx.1", b"1").seq == 1
    assert "JetStream" in repr(js)


def test_bad_server_option_values():
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(dont_listen=True, jetstream=True, sync_interval=-1)


# ------------------------------------------------------------------ streams

@pytest.mark.parametrize("storage", ["file", "memory"])
def test_stream_publish_get_purge(js, storage):
    info = js.add_stream("ORDERS", subjects=["orders.>"], storage=storage,
                         description="orders")
    assert (info.name, info.msgs, info.bytes, info.last_seq, info.consumers) == \
        ("ORDERS", 0, 0, 0, 0)
    acks = [js.publish(f"orders.{'a' if i < 4 else 'b'}", f"o{i}".encode())
            for i in range(1, 6)]
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
    assert not any(a.duplicate for a in acks)
    assert acks[0].stream is None
    assert js.publish("orders.c", b"x", expected_stream="ORDERS").stream == "ORDERS"

    si = js.stream_info("ORDERS")
    assert (si.msgs, si.first_seq, si.last_seq, si.num_subjects, si.consumers) == \
        (6, 1, 6, 3, 0)
    assert si.bytes > 0

    before = datetime.datetime.now(datetime.timezone.utc)
    m = js.get_msg("ORDERS", 5)
    assert (m.stream, m.subject, m.seq, m.data, m.headers) == \
        ("ORDERS", "orders.b", 5, b"o5", None)
    assert abs((m.time - before).total_seconds()) < 60
    assert m.timestamp_ns > 0
    last = js.get_msg("ORDERS", last_by_subject="orders.a")
    assert (last.seq, last.data) == (3, b"o3")
    assert js.get_last_msg("ORDERS", "orders.*").subject == "orders.c"

    # headers survive, the direct-get headers become attributes
    js.publish("orders.h", b"h", headers={"Trace": "t1", "Tag": ["a", "b"]})
    h = js.get_msg("ORDERS", last_by_subject="orders.h")
    assert h.headers.get_all("Tag") == ["a", "b"] and h.headers["Trace"] == "t1"
    assert "Nats-Sequence" not in h.headers

    js.delete_msg("ORDERS", 2)
    with pytest.raises(ember.NotFoundError):
        js.get_msg("ORDERS", 2)
    with pytest.raises(ember.NotFoundError):
        js.delete_msg("ORDERS", 2)
    assert js.purge_stream("ORDERS", subject="orders.a") == 2   # 1 and 3 (2 was deleted)
    assert js.stream_info("ORDERS").msgs == 4
    assert js.purge_stream("ORDERS") == 4
    si = js.stream_info("ORDERS")
    assert si.msgs == 0 and si.first_seq == 8 and si.last_seq == 7
    assert js.publish("orders.a", b"after").seq == 8

    js.delete_stream("ORDERS")
    with pytest.raises(ember.NotFoundError) as ei:
        js.stream_info("ORDERS")
    assert ei.value.err_code == 10059 and "stream not found" in str(ei.value)
    with pytest.raises(ember.NotFoundError):
        js.delete_stream("ORDERS")


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_new_stream_state_matches_nats_server(js, storage):
    # nats-server 2.9 (Debian's, measured): a new stream reports first_seq 0, last_seq 0
    info = js.add_stream("NEW", subjects=["new"], storage=storage)
    assert info == ember.StreamInfo("NEW", 0, 0, 0, 0, 0, 0)


def test_publish_subject_is_validated(js):
    # as ember_conn_publish does: a publish subject has no spaces and no wildcards
    js.add_stream("V", subjects=["v.>"])
    for bad in ("bad subject", "v.*", "v.>", "v..x", ""):
        with pytest.raises(ember.InvalidArgumentError):
            js.publish(bad, b"x")
        with pytest.raises(ember.InvalidArgumentError):
            js.publish_async(bad, b"x")
    assert js.stream_info("V").msgs == 0


def test_stream_name_is_its_subject_and_str_subjects(js):
    js.add_stream("PLAIN")
    assert js.publish("PLAIN", b"1").seq == 1
    js.add_stream("ONE", subjects="one.*")
    assert js.publish("one.x", b"1").seq == 1
    with pytest.raises(ember.NotFoundError, match="no stream"):
        js.publish("one.x.y", b"nope")


def test_add_stream_is_idempotent_and_conflicts_raise_exists(js):
    js.add_stream("C", subjects=["c.>"], max_msgs_per_subject=3)
    js.add_stream("C", subjects=["c.>"], max_msgs_per_subject=3)  # identical: fine
    with pytest.raises(ember.ExistsError) as ei:
        js.add_stream("C", subjects=["c.>"], max_msgs_per_subject=5)
    assert ei.value.err_code == 10058
    assert "already in use" in str(ei.value)


def test_overlapping_subjects_are_refused(js):
    js.add_stream("A", subjects=["x.>"])
    with pytest.raises(ember.Error) as ei:
        js.add_stream("B", subjects=["x.y"])
    assert ei.value.err_code == 10065  # subjects overlap with an existing stream


def test_invalid_stream_arguments(js):
    with pytest.raises(ember.InvalidArgumentError):
        js.add_stream("bad.name")
    with pytest.raises(ember.InvalidArgumentError):
        js.add_stream("bad name")
    with pytest.raises(ember.InvalidArgumentError, match="storage"):
        js.add_stream("S", storage="disk")
    with pytest.raises(ember.InvalidArgumentError, match="retention"):
        js.add_stream("S", retention="forever")
    with pytest.raises(ember.InvalidArgumentError, match="discard"):
        js.add_stream("S", discard="oldest")
    with pytest.raises(ember.InvalidArgumentError):
        js.add_stream("S", max_age=-1)
    with pytest.raises(ember.InvalidArgumentError):
        js.stream_info("a\0b")
    with pytest.raises(ember.InvalidArgumentError):
        js.get_msg("S")
    with pytest.raises(ember.InvalidArgumentError):
        js.get_msg("S", 1, last_by_subject="x")
    with pytest.raises(ember.NotFoundError):
        js.get_msg("NOPE", 1)
    with pytest.raises(ember.NotFoundError):
        js.purge_stream("NOPE")


def test_core_subscribers_see_jetstream_publishes(js):
    conn = js.connection
    sub = conn.subscribe("ev.>")
    js.add_stream("EV", subjects=["ev.>"])
    js.publish("ev.1", b"hello", headers={"K": "v"})
    m = sub.next_msg(1)
    assert (m.subject, m.data, m.headers["K"]) == ("ev.1", b"hello", "v")
    # and a core publish to a stream subject is stored as over the wire
    conn.publish("ev.2", b"core")
    wait_for(lambda: js.stream_info("EV").msgs == 2)
    assert js.get_msg("EV", 2).data == b"core"


def test_publish_payload_types_and_max_payload(js):
    js.add_stream("P", subjects=["p"])
    assert js.publish("p", "text").seq == 1
    assert js.publish("p", bytearray(b"ba")).seq == 2
    assert js.publish("p", memoryview(b"xmvx")[1:3]).seq == 3
    assert js.publish("p").seq == 4
    assert [js.get_msg("P", i).data for i in range(1, 5)] == [b"text", b"ba", b"mv", b""]
    with pytest.raises(ember.MaxPayloadError):
        js.publish("p", b"." * (1024 * 1024 + 1))


# ------------------------------------------------------------------ dedupe, expectations

def test_duplicate_msg_id(js):
    js.add_stream("D", subjects=["d.>"])
    a = js.publish("d.1", b"x", msg_id="id-1")
    b = js.publish("d.1", b"x again", msg_id="id-1")
    assert not a.duplicate and b.duplicate and b.seq == a.seq
    assert js.stream_info("D").msgs == 1
    assert js.publish("d.1", b"y", msg_id="id-2").seq == a.seq + 1
    # the id is a header of the stored message
    assert js.get_msg("D", a.seq).headers["Nats-Msg-Id"] == "id-1"


def test_duplicate_window(js):
    js.add_stream("DW", subjects=["dw"], duplicate_window=0.2)
    js.publish("dw", b"1", msg_id="m")
    assert js.publish("dw", b"1", msg_id="m").duplicate
    time.sleep(0.6)
    assert not js.publish("dw", b"1", msg_id="m").duplicate


def test_expectations(js):
    js.add_stream("E", subjects=["e.>"])
    js.publish("e.a", b"1")
    js.publish("e.b", b"2")
    with pytest.raises(ember.WrongSequenceError) as ei:
        js.publish("e.a", b"x", expected_last_seq=1)
    assert ei.value.err_code == 10071 and "wrong last sequence: 2" in str(ei.value)
    assert js.publish("e.a", b"ok", expected_last_seq=2).seq == 3
    with pytest.raises(ember.WrongSequenceError) as ei:
        js.publish("e.b", b"x", expected_last_subject_seq=1)
    assert ei.value.err_code == 10071
    assert js.publish("e.b", b"ok", expected_last_subject_seq=2).seq == 4
    assert js.publish("e.new", b"first", expected_last_subject_seq=0).seq == 5
    with pytest.raises(ember.WrongSequenceError) as ei:
        js.publish("e.a", b"x", expected_stream="OTHER")
    assert ei.value.err_code == 10060
    assert js.publish("e.a", b"ok", expected_stream="E").stream == "E"
    js.publish("e.a", b"m", msg_id="last-id")
    with pytest.raises(ember.WrongSequenceError):
        js.publish("e.a", b"x", expected_last_msg_id="other-id")
    assert js.publish("e.a", b"ok", expected_last_msg_id="last-id").seq > 0
    assert js.stream_info("E").msgs == 8


# ------------------------------------------------------------------ limits

def test_limits_discard_new(js):
    js.add_stream("L", subjects=["l"], storage="memory", max_msgs=3, discard="new")
    for _ in range(3):
        js.publish("l", b"x")
    with pytest.raises(ember.LimitError) as ei:
        js.publish("l", b"x")
    assert ei.value.err_code == 10077 and "maximum messages exceeded" in str(ei.value)
    assert js.stream_info("L").msgs == 3

    js.add_stream("LB", subjects=["lb"], max_bytes=200, discard="new")
    with pytest.raises(ember.LimitError) as ei:
        for _ in range(10):
            js.publish("lb", b"." * 60)
    assert "maximum bytes exceeded" in str(ei.value)


def test_limits_discard_old(js):
    js.add_stream("O", subjects=["o.*"], max_msgs=5, max_msgs_per_subject=2)
    for i in range(10):
        js.publish("o.a" if i % 2 else "o.b", str(i).encode())
    si = js.stream_info("O")
    assert si.msgs == 4 and si.last_seq == 10 and si.first_seq == 7


def test_max_msg_size(js):
    js.add_stream("MS", subjects=["ms"], max_msg_size=10)
    js.publish("ms", b"0123456789")
    with pytest.raises(ember.LimitError) as ei:
        js.publish("ms", b"0123456789x")
    assert ei.value.err_code == 10054


def test_max_age(js):
    js.add_stream("AGE", subjects=["age"], storage="memory", max_age=0.3)
    js.publish("age", b"old")
    wait_for(lambda: js.stream_info("AGE").msgs == 0, timeout=5)
    assert js.publish("age", b"new").seq == 2


def test_per_message_ttl(js):
    js.add_stream("TTL", subjects=["ttl.>"], allow_msg_ttl=True)
    js.publish("ttl.short", b"x", ttl=1)
    js.publish("ttl.keep", b"y")
    assert js.stream_info("TTL").msgs == 2
    wait_for(lambda: js.stream_info("TTL").msgs == 1, timeout=6)
    assert js.get_msg("TTL", 2).data == b"y"
    with pytest.raises(ember.InvalidArgumentError):
        js.publish("ttl.x", b"", ttl=0)


def test_deny_delete_and_purge(js):
    js.add_stream("DENY", subjects=["deny"], deny_delete=True, deny_purge=True)
    js.publish("deny", b"x")
    with pytest.raises(ember.Error) as ei:
        js.delete_msg("DENY", 1)
    assert ei.value.err_code is not None
    with pytest.raises(ember.Error) as ei:
        js.purge_stream("DENY")
    assert ei.value.err_code is not None
    assert js.stream_info("DENY").msgs == 1


def test_rollup(js):
    js.add_stream("R", subjects=["r.*"], allow_rollup=True)
    for i in range(3):
        js.publish("r.a", str(i).encode())
    js.publish("r.a", b"sum", headers={"Nats-Rollup": "sub"})
    si = js.stream_info("R")
    assert si.msgs == 1 and js.get_msg("R", last_by_subject="r.a").data == b"sum"


# ------------------------------------------------------------------ async publish

@pytest.mark.parametrize("storage", ["file", "memory"])
def test_publish_async_futures(js, storage):
    js.add_stream("A", subjects=["a"], storage=storage)
    futs = [js.publish_async("a", str(i).encode()) for i in range(500)]
    acks = [f.result(timeout=20) for f in futs]
    assert sorted(a.seq for a in acks) == list(range(1, 501))
    assert [a.seq for a in acks] == list(range(1, 501))  # stored in publish order
    assert js.stream_info("A").msgs == 500
    assert pending_async_acks() == 0


def test_publish_async_errors_and_callbacks(js):
    js.add_stream("AL", subjects=["al"], storage="memory", max_msgs=10, discard="new")
    done = []
    ev = threading.Event()
    futs = [js.publish_async("al", b"z", msg_id=f"m{i}") for i in range(15)]
    futs[-1].add_done_callback(lambda f: (done.append(threading.current_thread().name),
                                          ev.set()))
    assert ev.wait(10)
    results = []
    for f in futs:
        try:
            results.append(f.result(timeout=10).seq)
        except ember.LimitError as e:
            assert "maximum messages exceeded" in str(e) and e.err_code == 10077
            results.append("limit")
    assert results == list(range(1, 11)) + ["limit"] * 5
    # the binding's thread completes futures (a callback added to a future that is
    # already done runs at once in the adding thread, as concurrent.futures does)
    assert done[0] in ("ember-js-acks", threading.current_thread().name)
    assert not futs[0].cancel()  # the store decides, not the caller
    # duplicates and expectation failures come through the future too
    assert js.publish_async("al", b"z", msg_id="m0").result(5).duplicate
    js.add_stream("AE", subjects=["ae"])
    with pytest.raises(ember.WrongSequenceError):
        js.publish_async("ae", b"x", expected_last_seq=7).result(5)
    # failures before anything was attempted raise at once
    with pytest.raises(ember.NotFoundError):
        js.publish_async("nowhere", b"x")
    with pytest.raises(ember.InvalidArgumentError):
        js.publish_async("v", b"x", ttl=-1)
    assert pending_async_acks() == 0


def test_publish_async_from_threads(js):
    js.add_stream("T", subjects=["t.*"])
    futs = []
    lock = threading.Lock()

    def worker(n):
        mine = [js.publish_async(f"t.{n}", b"x") for _ in range(200)]
        with lock:
            futs.extend(mine)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    concurrent.futures.wait(futs, timeout=20)
    assert sorted(f.result().seq for f in futs) == list(range(1, 801))


# ------------------------------------------------------------------ consumers

def test_pull_consumer_fetch_ack_term_redeliver(js):
    js.add_stream("JOBS", subjects=["jobs.*"])
    for i in range(10):
        js.publish("jobs.odd" if i % 2 else "jobs.even", f"job{i}".encode())
    name = js.add_consumer("JOBS", "W", filter_subject="jobs.even", ack_wait=0.3)
    assert name == "W"
    assert js.add_consumer("JOBS", "W", filter_subject="jobs.even", ack_wait=0.3) == "W"
    ci = js.consumer_info("JOBS", "W")
    assert (ci.stream, ci.name, ci.num_pending, ci.num_ack_pending) == ("JOBS", "W", 5, 0)
    assert js.stream_info("JOBS").consumers == 1

    msgs = js.fetch("JOBS", "W", batch=3, timeout=2)
    assert len(msgs) == 3
    for i, m in enumerate(msgs):
        assert isinstance(m, ember.JsMsg) and isinstance(m, ember.Msg)
        assert m.subject == "jobs.even" and m.data == f"job{2 * i}".encode()
        md = m.metadata
        assert (md.stream, md.consumer) == ("JOBS", "W")
        assert (md.stream_seq, md.consumer_seq, md.num_delivered, md.num_pending) == \
            (2 * i + 1, i + 1, 1, 4 - i)
        assert md.timestamp.year >= 2024 and md.timestamp_ns > 0
        assert m.reply.startswith("$JS.ACK.JOBS.W.")
    msgs[0].ack()
    assert msgs[0].is_acked
    with pytest.raises(ember.StateError, match="already acknowledged"):
        msgs[0].ack()
    msgs[1].term()
    msgs[2].in_progress()  # not final: no redelivery for 0.3 s more
    msgs[2].in_progress()
    ci = js.consumer_info("JOBS", "W")
    assert ci.num_pending == 2 and ci.num_ack_pending == 1
    assert "JsMsg" in repr(msgs[2])

    # msgs[2] is never acked: it comes again after ack_wait
    seen = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (5 not in seen or len(seen) < 3):
        for m in js.fetch("JOBS", "W", batch=10, timeout=0.5):
            seen[m.metadata.stream_seq] = m.metadata.num_delivered
            m.ack()
    assert seen.get(5, 0) >= 2 and {7, 9} <= set(seen)
    wait_for(lambda: js.consumer_info("JOBS", "W").num_ack_pending == 0)
    ci = js.consumer_info("JOBS", "W")
    assert ci.num_pending == 0 and ci.num_redelivered >= 0
    assert ci.ack_floor_stream_seq == 9 and ci.delivered_stream_seq == 9
    assert js.fetch("JOBS", "W", batch=5, timeout=0) == []

    js.delete_consumer("JOBS", "W")
    with pytest.raises(ember.NotFoundError):
        js.delete_consumer("JOBS", "W")


def test_nak_with_delay(js):
    js.add_stream("N", subjects=["n"])
    js.publish("n", b"x")
    js.add_consumer("N", "c")
    (m,) = js.fetch("N", "c", timeout=2)
    m.nak(delay=0.5)
    t0 = time.monotonic()
    assert js.fetch("N", "c", timeout=0.2) == []
    again = js.fetch("N", "c", timeout=3)
    assert len(again) == 1 and time.monotonic() - t0 >= 0.4
    assert again[0].metadata.num_delivered == 2
    again[0].nak()  # at once
    third = js.fetch("N", "c", timeout=2)
    assert third and third[0].metadata.num_delivered == 3
    third[0].ack()


def test_fetch_timeout_batch_and_waiting(js):
    js.add_stream("F", subjects=["f"])
    js.add_consumer("F", "c", ack_policy="none")
    t0 = time.monotonic()
    assert js.fetch("F", "c", batch=5, timeout=0.3) == []
    assert 0.2 <= time.monotonic() - t0 < 3
    # a publish while a fetch waits completes it
    threading.Timer(0.2, lambda: js.publish("f", b"late")).start()
    got = js.fetch("F", "c", batch=1, timeout=None)
    assert [m.data for m in got] == [b"late"]
    for i in range(5):
        js.publish("f", str(i).encode())
    assert [m.data for m in js.fetch("F", "c", batch=3, timeout=1)] == [b"0", b"1", b"2"]
    assert [m.data for m in js.fetch("F", "c", batch=10, timeout=0.2)] == [b"3", b"4"]
    with pytest.raises(ember.InvalidArgumentError):
        js.fetch("F", "c", batch=0)
    with pytest.raises(ember.InvalidArgumentError):
        js.fetch("F", "c", timeout=-1)


def test_consumer_policies(js):
    js.add_stream("P", subjects=["p.*"])
    for i in range(6):
        js.publish(f"p.{i % 2}", str(i).encode())
    last = js.add_consumer("P", "last", deliver_policy="last", ack_policy="none")
    assert [m.data for m in js.fetch("P", last, 10, 0.3)] == [b"5"]
    new = js.add_consumer("P", "new", deliver_policy="new", ack_policy="none")
    assert js.fetch("P", new, 10, 0.1) == []
    js.publish("p.0", b"6")
    assert [m.data for m in js.fetch("P", new, 10, 1)] == [b"6"]
    seq = js.add_consumer("P", "seq", deliver_policy="by_start_sequence", opt_start_seq=5,
                          ack_policy="none")
    assert [m.data for m in js.fetch("P", seq, 10, 0.3)] == [b"4", b"5", b"6"]
    lps = js.add_consumer("P", "lps", deliver_policy="last_per_subject", ack_policy="none",
                          filter_subject="p.*")
    assert sorted(m.data for m in js.fetch("P", lps, 10, 0.3)) == [b"5", b"6"]
    with pytest.raises(ember.InvalidArgumentError) as ei:  # as nats-server: needs a filter
        js.add_consumer("P", "lps2", deliver_policy="last_per_subject")
    assert ei.value.err_code == 10094
    md = js.add_consumer("P", "md", max_deliver=2, ack_wait=0.2)
    deliveries = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for m in js.fetch("P", md, 1, 0.3):
            if m.metadata.stream_seq == 1:
                deliveries += 1
    assert deliveries == 2  # never acked, delivered max_deliver times
    map_ = js.add_consumer("P", "map", max_ack_pending=2)
    assert len(js.fetch("P", map_, 10, 0.3)) == 2
    allc = js.add_consumer("P", "all", ack_policy="all")
    ms = js.fetch("P", allc, 3, 1)
    ms[-1].ack()  # acks everything before it too
    wait_for(lambda: js.consumer_info("P", "all").num_ack_pending == 0)

    with pytest.raises(ember.InvalidArgumentError):
        js.add_consumer("P", "x", deliver_policy="by_start_sequence")
    with pytest.raises(ember.InvalidArgumentError):
        js.add_consumer("P", "x", opt_start_seq=3)
    with pytest.raises(ember.InvalidArgumentError, match="deliver_policy"):
        js.add_consumer("P", "x", deliver_policy="first")
    with pytest.raises(ember.InvalidArgumentError, match="ack_policy"):
        js.add_consumer("P", "x", ack_policy="maybe")
    with pytest.raises(ember.InvalidArgumentError):
        js.add_consumer("P", "bad.name")


def test_ephemeral_consumer(js):
    js.add_stream("EPH", subjects=["eph"])
    for i in range(3):
        js.publish("eph", str(i).encode())
    name = js.add_consumer("EPH", inactive_threshold=0.5)
    assert name and len(name) > 4
    msgs = js.fetch("EPH", name, 10, 1)
    assert len(msgs) == 3
    for m in msgs:  # (unacknowledged messages keep it alive for their ack wait)
        m.ack()
    # removed after the inactive threshold
    wait_for(lambda: _missing(js, "EPH", name), timeout=10, interval=0.1)


def _missing(js, stream, consumer):
    try:
        js.consumer_info(stream, consumer)
        return False
    except ember.NotFoundError:
        return True


def test_consumer_errors(js):
    js.add_stream("CE", subjects=["ce"])
    with pytest.raises(ember.NotFoundError) as ei:
        js.fetch("CE", "nope", timeout=0.2)
    with pytest.raises(ember.NotFoundError) as ei:
        js.consumer_info("CE", "nope")
    assert ei.value.err_code == 10014
    with pytest.raises(ember.NotFoundError) as ei:
        js.add_consumer("NOPE", "c")
    assert ei.value.err_code == 10059
    with pytest.raises(ember.NotFoundError):
        js.fetch("NOPE", "c", timeout=0.2)
    js.add_consumer("CE", "c", ack_wait=5)
    with pytest.raises(ember.Error) as ei:  # deliver_policy cannot be changed
        js.add_consumer("CE", "c", ack_wait=5, deliver_policy="new")
    assert ei.value.err_code is not None
    # a plain message cannot be acknowledged
    fake = ember.JsMsg.__new__(ember.JsMsg)
    fake.subject, fake.reply, fake._core, fake._acked = "ce", "not.an.ack", js._core, False
    with pytest.raises(ember.InvalidArgumentError):
        fake.ack()


def test_work_queue_retention(js):
    js.add_stream("WQ", subjects=["wq"], retention="workqueue")
    for i in range(3):
        js.publish("wq", str(i).encode())
    js.add_consumer("WQ", "w")
    for m in js.fetch("WQ", "w", 3, 1):
        m.ack()
    wait_for(lambda: js.stream_info("WQ").msgs == 0)


# ------------------------------------------------------------------ restart

def test_restart_keeps_file_streams(tmp_path):
    store = str(tmp_path / "store")
    with ember.Server(dont_listen=True, jetstream=True, store_dir=store) as srv:
        js = srv.connect().jetstream()
        js.add_stream("F", subjects=["f.>"])
        js.add_stream("M", subjects=["m.>"], storage="memory")
        for i in range(50):
            js.publish(f"f.{i % 5}", f"v{i}".encode(), headers={"N": str(i)})
        js.publish("m.1", b"mem")
        js.publish_async("f.async", b"last").result(10)
        js.delete_msg("F", 3)
        js.add_consumer("F", "dur", filter_subject="f.1")
        for m in js.fetch("F", "dur", 4, 1):
            m.ack()
    with ember.Server(dont_listen=True, jetstream=True, store_dir=store) as srv:
        js = srv.connect().jetstream()
        si = js.stream_info("F")
        assert (si.msgs, si.first_seq, si.last_seq) == (50, 1, 51)
        m = js.get_msg("F", 50)
        assert m.data == b"v49" and m.headers["N"] == "49"
        assert js.get_msg("F", 51).data == b"last"
        with pytest.raises(ember.NotFoundError):
            js.get_msg("F", 3)
        with pytest.raises(ember.NotFoundError):  # memory streams do not survive
            js.stream_info("M")
        ci = js.consumer_info("F", "dur")
        assert ci.num_pending == 6 and ci.ack_floor_stream_seq == 17
        assert [x.metadata.stream_seq for x in js.fetch("F", "dur", 2, 1)] == [22, 27]
        assert js.publish("f.0", b"more").seq == 52


def test_shutdown_with_publishes_in_flight(tmp_path):
    srv = ember.Server(dont_listen=True, jetstream=True, store_dir=str(tmp_path / "s"))
    srv.wait_ready()
    js = srv.connect().jetstream()
    js.add_stream("S", subjects=["s"])
    futs = [js.publish_async("s", b"x" * 100) for _ in range(2000)]
    srv.close()
    done, not_done = concurrent.futures.wait(futs, timeout=15)
    assert not not_done  # every future completes: stored, or a typed error
    for f in done:
        assert f.exception() is None or isinstance(f.exception(), ember.Error)
    with pytest.raises(ember.ClosedError):
        js.publish("s", b"x")


# ------------------------------------------------------------------ the wire view

def test_wire_sees_native_objects_and_back(tmp_path):
    with ember.Server(port=-1, jetstream=True, store_dir=str(tmp_path / "w")) as srv:
        conn = srv.connect()
        js = conn.jetstream()
        js.add_stream("ORDERS", subjects=["orders.>"], max_msgs_per_subject=3,
                      storage="memory", description="native", allow_direct=True)
        for i in range(5):
            js.publish("orders.a", str(i).encode())
        js.add_consumer("ORDERS", "native-dur", filter_subject="orders.a")

        info = api(conn, "$JS.API.STREAM.INFO.ORDERS")
        assert "error" not in info, info
        cfg, st = info["config"], info["state"]
        assert cfg["name"] == "ORDERS" and cfg["subjects"] == ["orders.>"]
        assert cfg["storage"] == "memory" and cfg["max_msgs_per_subject"] == 3
        assert cfg["description"] == "native" and cfg["allow_direct"] is True
        assert (st["messages"], st["first_seq"], st["last_seq"]) == (3, 3, 5)
        assert st["consumer_count"] == 1
        ci = api(conn, "$JS.API.CONSUMER.INFO.ORDERS.native-dur")
        assert ci["name"] == "native-dur" and ci["num_pending"] == 3

        # over TCP, as any NATS client would
        with RawClient(srv.client_url) as rc:
            tcp = json.loads(rc.request("$JS.API.STREAM.INFO.ORDERS", timeout=5).data)
            assert tcp["state"]["last_seq"] == 5
            # a stream made over the wire is visible natively
            r = json.loads(rc.request("$JS.API.STREAM.CREATE.WIRE", json.dumps(
                {"name": "WIRE", "subjects": ["wire.>"], "storage": "file"}).encode(),
                timeout=5).data)
            assert "error" not in r, r
            ack = json.loads(rc.request("wire.x", b"from tcp", timeout=5,
                                        headers={"Nats-Msg-Id": "w1"}).data)
            assert ack["stream"] == "WIRE" and ack["seq"] == 1
        m = js.get_msg("WIRE", 1)
        assert m.data == b"from tcp" and m.headers["Nats-Msg-Id"] == "w1"
        assert js.publish("wire.y", b"native", msg_id="w1").duplicate
        assert js.stream_info("WIRE").msgs == 1

        js.delete_stream("ORDERS")
        gone = api(conn, "$JS.API.STREAM.INFO.ORDERS")
        assert gone["error"]["err_code"] == 10059


# ------------------------------------------------------------------ lifecycle

def test_closed_connection_raises_closed(js_server):
    conn = js_server.connect()
    js = conn.jetstream()
    js.add_stream("CL", subjects=["cl"])
    js.publish("cl", b"x")
    js.add_consumer("CL", "c")
    (m,) = js.fetch("CL", "c", timeout=1)
    conn.close()
    for call in (lambda: js.publish("cl", b"x"), lambda: js.stream_info("CL"),
                 lambda: js.fetch("CL", "c"), lambda: js.publish_async("cl", b"x"),
                 m.ack):
        with pytest.raises(ember.ClosedError):
            call()


def test_many_threads_publish_and_fetch(js):
    js.add_stream("MT", subjects=["mt.*"])
    js.add_consumer("MT", "c", ack_policy="explicit")
    got = []
    lock = threading.Lock()
    stop = threading.Event()

    def consumer():
        while not stop.is_set():
            for m in js.fetch("MT", "c", 50, 0.2):
                m.ack()
                with lock:
                    got.append(m.data)

    def producer(n):
        for i in range(100):
            js.publish(f"mt.{n}", f"{n}-{i}".encode())

    cs = [threading.Thread(target=consumer) for _ in range(2)]
    ps = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in cs + ps:
        t.start()
    for t in ps:
        t.join()
    wait_for(lambda: len(got) == 400, timeout=20)
    stop.set()
    for t in cs:
        t.join()
    assert sorted(got) == sorted(f"{n}-{i}".encode() for n in range(4) for i in range(100))


# ------------------------------------------------------------------ asyncio

def test_aio_jetstream(tmp_path):
    async def main():
        with ember.Server(dont_listen=True, jetstream=True,
                          store_dir=str(tmp_path / "aio")) as srv:
            async with await ember.aio.connect(srv) as nc:
                js = nc.jetstream()
                assert isinstance(js.sync, ember.JetStream)
                info = await js.add_stream("AIO", subjects=["aio.>"])
                assert info.name == "AIO"
                acks = await asyncio.gather(*(js.publish("aio.x", str(i).encode())
                                              for i in range(100)))
                assert sorted(a.seq for a in acks) == list(range(1, 101))
                ack = await js.publish("aio.x", b"id", msg_id="one")
                assert (await js.publish("aio.x", b"id", msg_id="one")).duplicate
                with pytest.raises(ember.WrongSequenceError):
                    await js.publish("aio.x", b"", expected_last_seq=1)
                with pytest.raises(ember.NotFoundError):
                    await js.publish("nowhere", b"")
                assert (await js.stream_info("AIO")).msgs == 101
                assert (await js.get_msg("AIO", ack.seq)).data == b"id"
                await js.add_consumer("AIO", "c")
                msgs = await js.fetch("AIO", "c", batch=10, timeout=1)
                assert len(msgs) == 10
                for m in msgs:
                    m.ack()
                assert (await js.consumer_info("AIO", "c")).num_ack_pending == 0
                assert await js.purge_stream("AIO") == 101
                await js.delete_consumer("AIO", "c")
                await js.delete_stream("AIO")
                with pytest.raises(ember.NotFoundError):
                    await js.stream_info("AIO")
    asyncio.run(asyncio.wait_for(main(), 30))
