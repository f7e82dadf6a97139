import sys
import threading
import time

import pytest

import ember
from ember.testing import RawClient

from conftest import wait_for


def test_dispatch_runs_on_library_thread_with_gil(ember_conn):
    main = threading.get_ident()
    seen = []
    done = threading.Event()

    def cb(msg):
        # Python objects, the interpreter and other modules are usable: we hold the GIL
        seen.append((threading.get_ident(), threading.current_thread().name, msg.data,
                     sys._getframe() is not None))
        if len(seen) == 3:
            done.set()

    ember_conn.subscribe("d", cb=cb)
    for i in range(3):
        ember_conn.publish("d", str(i).encode())
    assert done.wait(5)
    idents = {s[0] for s in seen}
    assert len(idents) == 1 and main not in idents  # one dispatcher thread, not ours
    assert [s[2] for s in seen] == [b"0", b"1", b"2"]  # in order


def test_dispatch_callback_does_not_block_publisher(ember_conn):
    # a slow callback holds only the dispatcher thread; the main thread keeps going
    started, release = threading.Event(), threading.Event()

    def slow(m):
        started.set()
        release.wait(5)

    ember_conn.subscribe("slow", cb=slow)
    ember_conn.publish("slow")
    assert started.wait(5)
    t0 = time.monotonic()
    for _ in range(1000):
        ember_conn.publish("slow")
    assert time.monotonic() - t0 < 2
    release.set()


def test_dispatch_threads_run_python_concurrently_with_main(ember_server):
    # main thread busy in Python while callbacks arrive: the GIL is shared, no deadlock
    conns = [ember_server.connect() for _ in range(3)]
    counts = [0, 0, 0]

    def make(i):
        def cb(m):
            counts[i] += 1
        return cb

    for i, c in enumerate(conns):
        c.subscribe("fan", cb=make(i))
    pub = ember_server.connect()
    for _ in range(2000):
        pub.publish("fan", b"x")
        sum(range(50))
    wait_for(lambda: counts == [2000, 2000, 2000])


def test_callback_exception_goes_to_unraisablehook(ember_conn, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    got = []

    def cb(m):
        if m.data == b"boom":
            raise ValueError("callback failed")
        got.append(m.data)

    ember_conn.subscribe("x", cb=cb)
    ember_conn.publish("x", b"boom")
    ember_conn.publish("x", b"ok")
    wait_for(lambda: got == [b"ok"])  # the subscription keeps working
    assert len(seen) == 1
    assert isinstance(seen[0].exc_value, ValueError)
    assert seen[0].exc_traceback is not None
    assert "ember callback" in seen[0].err_msg


def test_callback_exception_printed_with_traceback(ember_conn, capsys, monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    done = threading.Event()

    def cb(m):
        try:
            raise KeyError("printed")
        finally:
            done.set()

    ember_conn.subscribe("x", cb=cb)
    ember_conn.publish("x")
    done.wait(5)
    err = []

    def printed():
        err.append(capsys.readouterr().err)
        return "KeyError: 'printed'" in "".join(err)

    wait_for(printed)
    text = "".join(err)
    assert "Exception ignored in ember callback" in text
    assert "Traceback" in text and "in cb" in text


def test_error_cb_receives_callback_exceptions(ember_server):
    errs = []
    conn = ember_server.connect(error_cb=errs.append)
    conn.subscribe("x", cb=lambda m: 1 / 0)
    conn.publish("x")
    wait_for(lambda: len(errs) == 1)
    assert isinstance(errs[0], ZeroDivisionError)
    conn.close()


def test_poll_mode_runs_on_caller_thread(ember_conn):
    me = threading.get_ident()
    got = []
    ember_conn.subscribe("p", cb=lambda m: got.append((threading.get_ident(), m.data)),
                         mode="poll")
    for i in range(5):
        ember_conn.publish("p", str(i).encode())
    time.sleep(0.02)
    assert got == []  # nothing runs until we poll
    assert ember_conn.poll(0) == 5
    assert got == [(me, str(i).encode()) for i in range(5)]
    assert ember_conn.poll(0) == 0
    assert ember_conn.poll(0.01) == 0


def test_poll_waits_for_first(ember_conn):
    got = []
    ember_conn.subscribe("p", cb=lambda m: got.append(m.data), mode="poll")
    threading.Timer(0.05, lambda: ember_conn.publish("p", b"late")).start()
    assert ember_conn.poll(None) == 1
    assert got == [b"late"]


def test_poll_fileno_readable(ember_conn):
    import select
    ember_conn.subscribe("p", cb=lambda m: None, mode="poll")
    fd = ember_conn.fileno()
    assert isinstance(fd, int) and fd >= 0
    r, _, _ = select.select([fd], [], [], 0)
    assert r == []
    ember_conn.publish("p")
    r, _, _ = select.select([fd], [], [], 1)
    assert r == [fd]
    assert ember_conn.poll(0) == 1


def test_poll_mode_callbackless_next_msg(ember_conn):
    sub = ember_conn.subscribe("pn", mode="poll")
    ember_conn.publish("pn", b"q")
    assert sub.next_msg(1).data == b"q"


def test_inline_runs_in_publisher_thread(ember_server):
    a = ember_server.connect()
    b = ember_server.connect()
    seen = []
    a.subscribe("i", cb=lambda m: seen.append(threading.get_ident()), mode="inline")
    b.publish("i")
    assert seen == [threading.get_ident()]  # ran before publish returned

    def other():
        b.publish("i")

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen[1] == t.ident


def test_inline_from_tcp_client_runs_on_binding_thread(ember_server):
    # a TCP publisher's messages arrive on the broker's event-loop thread: the binding
    # must not take the GIL there, and hands them to its own Python thread instead
    conn = ember_server.connect()
    seen = []
    conn.subscribe("tcp.i", cb=lambda m: seen.append((threading.current_thread().name,
                                                      m.data)), mode="inline")
    c = RawClient(ember_server.client_url)
    c.publish("tcp.i", b"over tcp")
    c.flush()
    wait_for(lambda: seen)
    assert seen == [("ember-inline", b"over tcp")]
    c.close()
    conn.close()


def test_inline_responder_for_tcp_request(ember_server):
    conn = ember_server.connect()
    conn.subscribe("svc", cb=lambda m: m.respond(b"inline " + m.data), mode="inline")
    with RawClient(ember_server.client_url) as c:
        assert c.request("svc", b"tcp").data == b"inline tcp"


def test_nested_publish_from_callback(ember_conn):
    got = []
    ember_conn.subscribe("a", cb=lambda m: ember_conn.publish("b", m.data + b"!"))
    ember_conn.subscribe("b", cb=lambda m: got.append(m.data), mode="inline")
    ember_conn.publish("a", b"x")
    wait_for(lambda: got == [b"x!"])


def test_unsubscribe_from_own_callback(ember_conn):
    got = []
    holder = {}

    def cb(m):
        got.append(m.data)
        holder["sub"].unsubscribe()

    holder["sub"] = ember_conn.subscribe("u", cb=cb)
    for i in range(5):
        ember_conn.publish("u", str(i).encode())
    time.sleep(0.1)
    assert got == [b"0"]


@pytest.mark.parametrize("mode", ["dispatch", "inline", "poll"])
def test_close_connection_from_callback(ember_server, mode):
    conn = ember_server.connect()
    done = threading.Event()

    def cb(m):
        conn.close()
        done.set()

    conn.subscribe("c", cb=cb, mode=mode)
    conn.publish("c")
    if mode == "poll":
        conn.poll(1)
    assert done.wait(5)
    wait_for(lambda: conn.is_closed)
    with pytest.raises(ember.ClosedError):
        conn.publish("c")


def test_shutdown_server_from_callback(ember_server):
    conn = ember_server.connect()
    done = threading.Event()

    def cb(m):
        ember_server.shutdown()
        done.set()

    conn.subscribe("s", cb=cb)
    conn.publish("s")
    assert done.wait(5)
    wait_for(lambda: conn.is_closed)


def test_callbacks_stop_after_unsubscribe(ember_conn):
    got = []
    sub = ember_conn.subscribe("st", cb=lambda m: got.append(m.data), mode="poll")
    ember_conn.publish("st", b"1")
    sub.unsubscribe()
    ember_conn.publish("st", b"2")
    ember_conn.poll(0)
    assert got == []


def test_poll_is_not_reentrant(ember_conn):
    errs = []

    def cb(m):
        try:
            ember_conn.poll(0)
        except ember.StateError as e:
            errs.append(e)

    ember_conn.subscribe("re", cb=cb, mode="poll")
    ember_conn.publish("re")
    assert ember_conn.poll(1) == 1
    assert len(errs) == 1 and "another thread is polling" in str(errs[0])
