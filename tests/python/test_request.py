import threading

import pytest

import ember


@pytest.mark.parametrize("mode", ["dispatch", "inline"])
def test_request_reply(ember_conn, mode):
    ember_conn.subscribe("svc.echo", cb=lambda m: m.respond(b"echo: " + m.data), mode=mode)
    for i in range(100):
        r = ember_conn.request("svc.echo", str(i).encode(), timeout=1)
        assert r.data == b"echo: " + str(i).encode()
        assert r.subject.startswith("_INBOX.")


def test_request_reply_poll_mode(ember_conn):
    ember_conn.subscribe("svc.poll", cb=lambda m: m.respond(m.data.upper()), mode="poll")
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            ember_conn.poll(0.05)

    t = threading.Thread(target=pump)
    t.start()
    try:
        assert ember_conn.request("svc.poll", b"abc").data == b"ABC"
    finally:
        stop.set()
        t.join()


def test_request_answered_by_next_msg_responder(ember_server):
    srv_conn = ember_server.connect()
    cli = ember_server.connect()
    sub = srv_conn.subscribe("svc.manual")

    def serve():
        m = sub.next_msg(2)
        m.respond(b"manual " + m.data, headers={"Served-By": "thread"})

    t = threading.Thread(target=serve)
    t.start()
    r = cli.request("svc.manual", b"x", timeout=2)
    t.join()
    assert r.data == b"manual x"
    assert r.headers["Served-By"] == "thread"


def test_request_with_headers(ember_conn):
    def handler(m):
        m.respond(m.headers["Q"].encode(), headers={"A": [m.headers.get_all("Q")[-1], "z"]})

    ember_conn.subscribe("svc.h", cb=handler)
    r = ember_conn.request("svc.h", b"", headers={"Q": ["first", "second"]})
    assert r.data == b"first"
    assert r.headers.get_all("A") == ["second", "z"]


def test_no_responders(ember_conn):
    with pytest.raises(ember.NoRespondersError, match="no responders"):
        ember_conn.request("nobody.home", b"?")
    with pytest.raises(ember.NoRespondersError):
        ember_conn.request("nobody.home", b"?", headers={"A": "b"})


def test_request_timeout(ember_conn):
    ember_conn.subscribe("svc.silent", cb=lambda m: None)
    with pytest.raises(ember.TimeoutError, match="timed out"):
        ember_conn.request("svc.silent", b"", timeout=0.05)
    try:
        ember_conn.request("svc.silent", b"", timeout=0.01)
    except ember.Error as e:
        assert e.code == -2 and e.status == "timeout"


def test_respond_without_reply_subject(ember_conn):
    sub = ember_conn.subscribe("plain")
    ember_conn.publish("plain", b"x")
    m = sub.next_msg(1)
    assert m.reply is None
    with pytest.raises(ember.InvalidArgumentError, match="no reply"):
        m.respond(b"y")
    with pytest.raises(ember.ClosedError):
        ember.Msg("a", b"", reply="r").respond(b"")


def test_respond_after_connection_closed(ember_server):
    conn = ember_server.connect()
    sub = conn.subscribe("q")
    conn.publish("q", b"", reply="somewhere")
    m = sub.next_msg(1)
    conn.close()
    with pytest.raises(ember.ClosedError):
        m.respond(b"late")


def test_concurrent_requesters(ember_server):
    responder = ember_server.connect()
    responder.subscribe("svc.c", cb=lambda m: m.respond(m.data))
    conn = ember_server.connect()
    errors = []

    def worker(n):
        try:
            for i in range(200):
                d = f"{n}-{i}".encode()
                assert conn.request("svc.c", d, timeout=2).data == d
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_queue_group_responders(ember_conn):
    hits = {"a": 0, "b": 0}

    def make(name):
        def h(m):
            hits[name] += 1
            m.respond(name.encode())
        return h

    ember_conn.subscribe("svc.q", queue="g", cb=make("a"))
    ember_conn.subscribe("svc.q", queue="g", cb=make("b"))
    answers = {ember_conn.request("svc.q", b"").data for _ in range(200)}
    assert answers <= {b"a", b"b"}
    assert hits["a"] + hits["b"] == 200
