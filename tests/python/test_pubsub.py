import gc
import threading

import pytest

import ember

from conftest import wait_for


def test_publish_next_msg(ember_conn):
    sub = ember_conn.subscribe("greet.*")
    ember_conn.publish("greet.joe", b"hello")
    ember_conn.publish("greet.ann", bytearray(b"ba"), reply="reply.here")
    ember_conn.publish("greet.x", memoryview(b"xyzw")[1:3])
    ember_conn.publish("greet.s", "snow \u2603")
    ember_conn.publish("greet.empty")
    ember_conn.publish("greet.none", None)
    m = sub.next_msg(1)
    assert (m.subject, m.data, m.reply, m.headers, m.status) == ("greet.joe", b"hello", None, None, 0)
    m = sub.next_msg(1)
    assert (m.data, m.reply) == (b"ba", "reply.here")
    assert sub.next_msg(1).data == b"yz"
    assert sub.next_msg(1).data == "snow \u2603".encode()
    assert sub.next_msg(1).data == b""
    assert sub.next_msg(1).data == b""
    with pytest.raises(ember.TimeoutError):
        sub.next_msg(0.05)
    with pytest.raises(TimeoutError):  # also the builtin
        sub.next_msg(0)
    assert isinstance(sub.next_msg.__doc__, str)
    assert "greet.*" in repr(sub)


def test_wildcards_and_fanout(ember_conn):
    a = ember_conn.subscribe("a.>")
    b = ember_conn.subscribe("a.*.c")
    c = ember_conn.subscribe("a.b.c")
    ember_conn.publish("a.b.c", b"1")
    ember_conn.publish("a.x", b"2")
    assert [a.next_msg(1).data, a.next_msg(1).data] == [b"1", b"2"]
    assert b.next_msg(1).data == b"1"
    assert c.next_msg(1).data == b"1"
    with pytest.raises(ember.TimeoutError):
        b.next_msg(0)


def test_queue_group_delivers_once(ember_conn):
    subs = [ember_conn.subscribe("work", queue="workers") for _ in range(3)]
    for i in range(30):
        ember_conn.publish("work", str(i).encode())
    got = []
    for s in subs:
        while True:
            try:
                got.append(s.next_msg(0).data)
            except ember.TimeoutError:
                break
    assert sorted(got, key=int) == [str(i).encode() for i in range(30)]


def test_large_payload(ember_conn):
    sub = ember_conn.subscribe("big")
    data = bytes(range(256)) * 4096  # 1 MiB
    ember_conn.publish("big", data)
    assert sub.next_msg(1).data == data
    with pytest.raises(ember.MaxPayloadError):
        ember_conn.publish("big", data + b"!")


def test_headers_multi_value(ember_conn):
    sub = ember_conn.subscribe("h")
    hdrs = ember.Headers([("A", "1"), ("B", "x y")])
    hdrs.add("A", "2")
    ember_conn.publish("h", b"data", headers=hdrs)
    ember_conn.publish("h", b"d2", headers={"K": ["v1", "v2"], "L": "w"})
    m = sub.next_msg(1)
    assert m.data == b"data"
    assert m.headers["A"] == "1"
    assert m.headers.get_all("A") == ["1", "2"]
    assert m.headers["B"] == "x y"
    assert m.headers.get("missing") is None
    assert m.headers.get_all("missing") == []
    assert list(m.headers) == ["A", "B"]
    assert len(m.headers) == 2 and "A" in m.headers and "a" not in m.headers
    assert m.headers.multi_items() == [("A", "1"), ("B", "x y"), ("A", "2")]
    assert m.headers == hdrs
    m2 = sub.next_msg(1)
    assert m2.headers.get_all("K") == ["v1", "v2"] and m2.headers["L"] == "w"
    assert dict(m2.headers) == {"K": "v1", "L": "w"}


def test_headers_type():
    h = ember.Headers(X="1")
    h["Y"] = "2"
    h.add("X", "3")
    h["X"] = "9"
    assert h.multi_items() == [("X", "9"), ("Y", "2")]
    del h["Y"]
    with pytest.raises(KeyError):
        del h["Y"]
    with pytest.raises(KeyError):
        h["nope"]
    assert repr(h) == "Headers([('X', '9')])"
    with pytest.raises(ember.InvalidArgumentError):
        h.add("k", 1)


def test_invalid_headers_rejected(ember_conn):
    with pytest.raises(ember.InvalidArgumentError, match="header"):
        ember_conn.publish("h", b"", headers={"Bad Key": "v"})
    with pytest.raises(ember.InvalidArgumentError, match="header"):
        ember_conn.publish("h", b"", headers={"K": "line\r\nbreak"})


def test_invalid_arguments(ember_conn):
    with pytest.raises(ember.InvalidArgumentError, match="invalid publish subject"):
        ember_conn.publish("a b")
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.publish("a.*")
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.publish("a\0b")
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.publish(42)
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.publish("a", 12)
    with pytest.raises(ember.InvalidArgumentError, match="invalid subject"):
        ember_conn.subscribe("a..b")
    with pytest.raises(ember.InvalidArgumentError, match="queue"):
        ember_conn.subscribe("a", queue="bad queue")
    with pytest.raises(ember.InvalidArgumentError, match="delivery mode"):
        ember_conn.subscribe("a", mode="telepathy")
    with pytest.raises(ember.InvalidArgumentError, match="inline delivery needs a callback"):
        ember_conn.subscribe("a", mode="inline")
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.subscribe("a", cb=42)
    cb_sub = ember_conn.subscribe("a", cb=lambda m: None)
    with pytest.raises(ember.InvalidArgumentError, match="callback"):
        cb_sub.next_msg(0)
    # the exceptions carry the status too
    try:
        ember_conn.publish("a b")
    except ember.Error as e:
        assert e.code == -1 and e.status == "invalid argument" and isinstance(e, ValueError)


def test_unsubscribe_and_iteration_ends(ember_conn):
    sub = ember_conn.subscribe("it")
    for i in range(3):
        ember_conn.publish("it", str(i).encode())
    got = []
    for m in sub:
        got.append(m.data)
        if len(got) == 3:
            threading.Timer(0.05, sub.unsubscribe).start()
    assert got == [b"0", b"1", b"2"]
    assert not sub.is_valid
    sub.unsubscribe()  # idempotent
    ember_conn.publish("it", b"late")
    with pytest.raises(ember.ClosedError):
        sub.next_msg(0)


def test_subscription_context_manager(ember_conn):
    with ember_conn.subscribe("cm") as sub:
        assert sub.is_valid
    assert not sub.is_valid


def test_auto_unsubscribe(ember_conn):
    sub = ember_conn.subscribe("auto")
    sub.auto_unsubscribe(2)
    for i in range(5):
        ember_conn.publish("auto", str(i).encode())
    assert [sub.next_msg(1).data, sub.next_msg(1).data] == [b"0", b"1"]
    with pytest.raises(ember.ClosedError):
        sub.next_msg(0.1)
    assert not sub.is_valid
    with pytest.raises(ember.ClosedError):
        sub.auto_unsubscribe(3)
    with pytest.raises(ember.InvalidArgumentError):
        ember_conn.subscribe("auto2").auto_unsubscribe(0)


def test_auto_unsubscribe_callback(ember_conn):
    got = []
    sub = ember_conn.subscribe("autocb", cb=lambda m: got.append(m.data))
    sub.auto_unsubscribe(3)
    for i in range(10):
        ember_conn.publish("autocb", str(i).encode())
    wait_for(lambda: len(got) == 3)
    assert got == [b"0", b"1", b"2"]


def test_pending_limits_and_slow_consumer(ember_conn):
    sub = ember_conn.subscribe("slow")
    assert sub.pending_limits == (65536, 64 * 1024 * 1024)
    sub.pending_limits = (3, -1)
    assert sub.pending_limits == (3, -1)
    for i in range(10):
        ember_conn.publish("slow", str(i).encode())
    st = sub.stats()
    assert st.pending_msgs == 3 and st.dropped == 7
    assert sub.pending == 3 and sub.dropped == 7
    with pytest.raises(ember.SlowConsumerError, match="7"):
        sub.next_msg(0)
    assert [sub.next_msg(0).data for _ in range(3)] == [b"0", b"1", b"2"]
    assert sub.delivered == 3
    assert ember_conn.stats().dropped == 7
    with pytest.raises(ember.InvalidArgumentError):
        sub.pending_limits = (0, 0)


def test_pending_limits_at_connect(ember_server):
    conn = ember_server.connect(pending_msgs_limit=2, pending_bytes_limit=-1)
    sub = conn.subscribe("p")
    assert sub.pending_limits == (2, -1)
    s2 = conn.subscribe("p2", pending_limits=(5, 100))
    assert s2.pending_limits == (5, 100)
    for _ in range(4):
        conn.publish("p", b"x")
    assert sub.dropped == 2
    conn.close()


def test_no_echo(ember_server):
    a = ember_server.connect(no_echo=True)
    b = ember_server.connect()
    sa = a.subscribe("e")
    sb = b.subscribe("e")
    a.publish("e", b"from a")
    assert sb.next_msg(1).data == b"from a"
    with pytest.raises(ember.TimeoutError):
        sa.next_msg(0.05)
    b.publish("e", b"from b")
    assert sa.next_msg(1).data == b"from b"


def test_two_connections_share_subjects(ember_server):
    with ember_server.connect(name="a") as a, ember_server.connect(name="b") as b:
        sub = b.subscribe("shared")
        a.publish("shared", b"hi")
        assert sub.next_msg(1).data == b"hi"
        assert "'a'" in repr(a)


def test_dropping_callbackless_subscription_unsubscribes(ember_server, ember_conn):
    before = ember_server.stats().subscriptions
    sub = ember_conn.subscribe("gone")
    assert ember_server.stats().subscriptions == before + 1
    del sub
    gc.collect()
    assert ember_server.stats().subscriptions == before


def test_flush_and_closed_errors(ember_server):
    conn = ember_server.connect()
    sub = conn.subscribe("x")
    cb_sub = conn.subscribe("y", cb=lambda m: None)
    conn.flush()
    conn.close()
    conn.close()  # idempotent
    assert conn.is_closed
    assert "closed" in repr(conn)
    for call in (lambda: conn.publish("x"), lambda: conn.request("x"),
                 lambda: conn.subscribe("x"), lambda: conn.flush(),
                 lambda: conn.poll(0), lambda: conn.fileno(), lambda: conn.stats(),
                 lambda: sub.next_msg(0), lambda: sub.auto_unsubscribe(1),
                 lambda: sub.stats()):
        with pytest.raises(ember.ClosedError):
            call()
    sub.unsubscribe()  # no-op once closed
    cb_sub.unsubscribe()
    assert not sub.is_valid
    assert list(sub) == []


def test_drain_delivers_queued_callbacks(ember_server):
    conn = ember_server.connect()
    got = []
    release = threading.Event()

    def slow(m):
        release.wait(2)
        got.append(m.data)

    conn.subscribe("d", cb=slow)
    for i in range(5):
        conn.publish("d", str(i).encode())
    threading.Timer(0.05, release.set).start()
    conn.drain(timeout=5)
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert conn.is_closed
    with pytest.raises(ember.ClosedError):
        conn.publish("d")


def test_drain_closes(ember_server):
    conn = ember_server.connect()
    release = threading.Event()
    conn.subscribe("d", cb=lambda m: release.wait(5))
    for i in range(3):
        conn.publish("d")
    try:
        # TimeoutError: messages were still queued at the deadline
        try:
            conn.drain(timeout=0.05)
        except ember.TimeoutError:
            pass
    finally:
        release.set()
    assert conn.is_closed
    with pytest.raises(ember.ClosedError):
        conn.drain()
