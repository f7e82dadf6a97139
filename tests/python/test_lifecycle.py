"""Lifetimes: garbage collection of servers and connections, closing and shutting down
while other threads are inside calls, interpreter exit with everything still running."""
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import ember
from ember._core import live_handles
from ember.testing import RawClient

from conftest import fd_count, os_thread_count, wait_for


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _churn(i):
    srv = ember.Server(dont_listen=(i % 2 == 0))
    srv.wait_ready()
    conns = [srv.connect(name=f"c{k}") for k in range(3)]
    a, b, c = conns
    a.subscribe("svc.d", cb=lambda m: m.respond(b"d"))
    b.subscribe("svc.i", cb=lambda m: m.respond(b"i"), mode="inline")
    c.subscribe("svc.p", cb=lambda m: None, mode="poll")
    sub = c.subscribe("plain")
    assert c.request("svc.d", b"x").data == b"d"
    assert c.request("svc.i", b"x").data == b"i"
    c.publish("svc.p")
    c.publish("plain", b"kept", reply="r.x")
    if i % 2:
        with RawClient(srv.client_url) as rc:
            assert rc.request("svc.i", b"x").data == b"i"
    msg = sub.next_msg(1)
    # no close(): everything is dropped and collected
    return msg


def test_gc_of_servers_and_connections_releases_everything():
    _churn(0)
    _churn(1)
    gc.collect()
    threads0, fds0, handles0 = os_thread_count(), fd_count(), live_handles()
    rss0 = _rss_kb()
    msgs = [_churn(i) for i in range(60)]
    gc.collect()
    wait_for(lambda: os_thread_count() <= threads0, timeout=10)
    wait_for(lambda: fd_count() <= fds0, timeout=10)
    assert live_handles() == handles0 == 0
    # messages outlive their connection and server: data stays readable
    assert all(m.data == b"kept" for m in msgs)
    with pytest.raises(ember.ClosedError):
        msgs[0].respond(b"")
    del msgs
    gc.collect()
    rss1 = _rss_kb()
    assert rss1 - rss0 < 64 * 1024, f"RSS grew by {rss1 - rss0} kB over 60 servers"


def test_gc_of_connection_only(ember_server):
    before = ember_server.stats().connections
    threads0 = os_thread_count()
    for _ in range(20):
        c = ember_server.connect()
        c.subscribe("x", cb=lambda m: None)  # starts a dispatcher thread
        c.publish("x")
        del c
    gc.collect()
    wait_for(lambda: ember_server.stats().connections == before)
    wait_for(lambda: os_thread_count() <= threads0)
    assert live_handles() == 0


def test_reference_cycles_are_collected():
    threads0 = os_thread_count()
    for _ in range(10):
        srv = ember.Server(dont_listen=True)
        conn = srv.connect()
        # the callback refers to the connection: a cycle through the handle registry is
        # broken when the connection is closed, and the server by its own close
        def cb(m, conn=conn):
            try:
                conn.publish("y")
            except ember.ClosedError:
                pass  # closed by the main thread meanwhile

        conn.subscribe("x", cb=cb)
        conn.publish("x")
        conn.close()
        srv.self_ref = srv  # a plain cycle too
        del srv, conn, cb
    wait_for(lambda: gc.collect() is not None and os_thread_count() <= threads0)
    assert live_handles() == 0


def test_server_shutdown_with_live_subscriptions():
    srv = ember.Server()
    srv.wait_ready()
    conn = srv.connect()
    other = srv.connect()
    got = []
    conn.subscribe("d", cb=lambda m: got.append(m.data))
    conn.subscribe("p", cb=lambda m: got.append(m.data), mode="poll")
    conn.subscribe("i", cb=lambda m: got.append(m.data), mode="inline")
    conn.subscribe("mute", cb=lambda m: None)
    sub = conn.subscribe("n")
    results = {}

    def blocked_next():
        try:
            sub.next_msg(None)
        except BaseException as e:
            results["next"] = e

    def blocked_request():
        try:
            other.request("mute", b"", timeout=30)
        except BaseException as e:
            results["request"] = e

    def blocked_poll():
        try:
            while True:
                conn.poll(None)
        except BaseException as e:
            results["poll"] = e

    tcp = RawClient(srv.client_url)
    threads = [threading.Thread(target=f) for f in (blocked_next, blocked_request,
                                                     blocked_poll)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.shutdown()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert time.monotonic() - t0 < 3
    assert isinstance(results["next"], ember.ClosedError)
    assert isinstance(results["request"], ember.ClosedError)
    assert isinstance(results["poll"], ember.ClosedError)
    assert conn.is_closed and other.is_closed
    with pytest.raises(ember.ClosedError):
        conn.publish("d")
    with pytest.raises(ember.ClosedError):
        sub.next_msg(0)
    with pytest.raises((ember.ClosedError, OSError)):
        tcp.flush(timeout=2)
    tcp.close()
    srv.close()
    conn.close()
    assert live_handles() == 0


def test_close_connection_while_threads_blocked(ember_server):
    conn = ember_server.connect()
    conn.subscribe("mute", cb=lambda m: None)
    sub = conn.subscribe("n")
    results = {}

    def run(name, fn):
        try:
            fn()
        except BaseException as e:
            results[name] = e

    threads = [
        threading.Thread(target=run, args=("next", lambda: sub.next_msg(None))),
        threading.Thread(target=run, args=("req", lambda: conn.request("mute", b"", 30))),
        threading.Thread(target=run, args=("poll", lambda: conn.poll(None))),
    ]
    for t in threads:
        t.start()
    time.sleep(0.1)
    conn.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert all(isinstance(e, ember.ClosedError) for e in results.values()), results
    assert len(results) == 3
    wait_for(lambda: live_handles() == 0)


def test_close_server_while_other_threads_publish():
    srv = ember.Server(dont_listen=True)
    conns = [srv.connect() for _ in range(3)]
    for c in conns:
        c.subscribe("x", cb=lambda m: None)
    errors = []
    started = threading.Barrier(4)

    def hammer(c):
        started.wait()
        try:
            while True:
                c.publish("x", b"data")
                c.request("x", b"", timeout=0.001) if False else None
        except ember.ClosedError:
            pass
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.05)
    srv.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert errors == []
    wait_for(lambda: live_handles() == 0)


def test_servers_in_parallel_threads():
    errors = []

    def work():
        try:
            for _ in range(5):
                with ember.Server() as srv:
                    with srv.connect() as c:
                        c.subscribe("e", cb=lambda m: m.respond(m.data))
                        assert c.request("e", b"x").data == b"x"
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_callback_subscription_outlives_its_python_object(ember_conn):
    got = []
    ember_conn.subscribe("keep", cb=lambda m: got.append(m.data))  # object dropped
    gc.collect()
    ember_conn.publish("keep", b"still here")
    wait_for(lambda: got == [b"still here"])


def test_interpreter_exit_with_everything_running(tmp_path):
    script = tmp_path / "exit_live.py"
    script.write_text(textwrap.dedent("""
        import threading, ember
        from ember.testing import RawClient
        lines = []
        srv = ember.Server(logging=lambda lvl, line: lines.append(line))
        srv.wait_ready()
        conn = srv.connect()
        n = [0]
        def cb(m):
            n[0] += 1
        conn.subscribe("x", cb=cb)
        conn.subscribe("x", cb=cb, mode="inline")
        conn.subscribe("y", cb=lambda m: m.respond(b"ok"))
        sub = conn.subscribe("z")
        def spam():
            c = srv.connect()
            try:
                while True:
                    c.publish("x", b"spam")
            except ember.ClosedError:
                pass
        threading.Thread(target=spam, daemon=True).start()
        tcp = RawClient(srv.client_url)
        for _ in range(100):
            tcp.publish("x", b"tcp")
        assert tcp.request("y", b"").data == b"ok"
        print("exiting with", "messages" if n[0] else "no messages", flush=True)
        # no close: atexit shuts everything down
    """))
    env = dict(os.environ)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert "exiting with" in p.stdout
    assert "Fatal" not in p.stderr and "Traceback" not in p.stderr, p.stderr
