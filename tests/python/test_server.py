import logging
import socket

import pytest

import ember
from ember.testing import ProtocolError, RawClient

from conftest import wait_for


def test_version():
    assert ember.__version__ == ember.version()
    assert ember.__version__.count(".") == 2


def test_server_context_manager_and_url():
    with ember.Server() as srv:
        assert srv.ready(1.0)
        url = srv.client_url
        assert url.startswith("nats://127.0.0.1:")
        assert srv.port == int(url.rsplit(":", 1)[1]) > 0
        assert srv.id and srv.id.startswith("N") and len(srv.id) == 56
        assert srv.name == srv.id
        assert "ember.Server" in repr(srv)
    assert srv.is_closed
    assert srv.client_url is None
    assert not srv.ready(0.1)
    assert "closed" in repr(srv)


def test_server_name_and_dont_listen():
    with ember.Server(server_name="embedded-1", dont_listen=True) as srv:
        assert srv.name == "embedded-1"
        assert srv.client_url is None
        assert srv.port == 0
        conn = srv.connect()
        conn.subscribe("x", cb=lambda m: m.respond(b"ok"))
        assert conn.request("x").data == b"ok"


def test_default_host_and_any_host():
    with ember.Server(host=None) as srv:  # nats-server's 0.0.0.0, reported as 127.0.0.1
        assert srv.client_url == f"nats://127.0.0.1:{srv.port}"
        RawClient(srv.client_url).close()


def test_wait_ready_timeout_is_typed():
    srv = ember.Server(dont_listen=True)
    try:
        srv.wait_ready(5)
        srv.shutdown()
        with pytest.raises(ember.ClosedError, match="shut down"):
            srv.wait_ready(0.1)
    finally:
        srv.close()


def test_start_later_and_wait_ready():
    srv = ember.Server(start=False)
    try:
        assert not srv.ready(0.05)
        with pytest.raises(ember.ClosedError):
            srv.connect()
        srv.start()
        srv.wait_ready(5.0)
        with pytest.raises(ember.StateError):
            srv.start()
    finally:
        srv.close()


def test_invalid_options():
    with pytest.raises(ember.InvalidArgumentError, match="invalid port"):
        ember.Server(port=70000)
    with pytest.raises(ember.InvalidArgumentError, match="max_payload"):
        ember.Server(max_payload=0)
    with pytest.raises(ember.InvalidArgumentError, match="together"):
        ember.Server(user="a")
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(logging="yes please")
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(logging=True, log_level="loud")


def test_port_in_use_reports_why():
    with ember.Server() as a:
        b = ember.Server(port=a.port)
        try:
            assert not b.ready(5.0)
            with pytest.raises(ember.EmberIOError, match="address already in use"):
                b.wait_ready(1.0)
        finally:
            b.close()


def test_stats(inproc_server):
    conn = inproc_server.connect()
    sub = conn.subscribe("s.>")
    base = inproc_server.stats()
    assert base.connections >= 1 and base.subscriptions >= 1
    for i in range(5):
        conn.publish(f"s.{i}", b"abc")
    st = inproc_server.stats()
    assert st.in_msgs - base.in_msgs == 5
    assert st.out_msgs - base.out_msgs == 5
    assert st.in_bytes - base.in_bytes == 15
    assert sub.stats().pending_msgs == 5
    cs = conn.stats()
    assert cs.out_msgs == 5 and cs.in_msgs == 5 and cs.dropped == 0


def test_logging_off_by_default(capfd):
    with ember.Server() as srv:
        srv.connect().close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_logging_to_stderr(capfd):
    with ember.Server(logging=True) as srv:
        port = srv.port
    err = capfd.readouterr().err
    assert f"Listening for client connections on 127.0.0.1:{port}" in err
    assert "[INF]" in err
    assert "Server is ready" in err


def test_logging_turned_on_later(capfd):
    with ember.Server() as srv:
        srv.log_to_stderr("debug")
        c = RawClient(srv.client_url)
        c.close()
    err = capfd.readouterr().err
    assert "Server Exiting" in err


def test_logging_callable_runs_on_binding_thread():
    import threading
    lines = []

    def log(level, line):
        lines.append((level, line, threading.current_thread().name))

    with ember.Server(logging=log) as srv:
        port = srv.port
    # the log thread prints what was queued before close returns
    texts = [l for _, l, _ in lines]
    assert f"Listening for client connections on 127.0.0.1:{port}" in texts
    assert any("Server Exiting" in t for t in texts)
    assert all(level == ember.LOG_INFO for level, _, _ in lines)
    assert {t for _, _, t in lines} == {"ember-log"}


def test_logging_to_logger(caplog):
    logger = logging.getLogger("ember-test")
    with caplog.at_level(logging.INFO, logger="ember-test"):
        with ember.Server(logging=logger):
            pass
        wait_for(lambda: any("Server is ready" in r.getMessage() for r in caplog.records))
    assert all(r.name == "ember-test" for r in caplog.records)


def test_logging_callback_exception_is_reported(monkeypatch):
    seen = []
    monkeypatch.setattr("sys.unraisablehook", seen.append)

    def bad(level, line):
        raise RuntimeError("logger broke")

    with ember.Server(logging=bad):
        pass
    assert seen and isinstance(seen[0].exc_value, RuntimeError)
    assert "log callback" in seen[0].err_msg


def test_set_logger_none_silences():
    lines = []
    with ember.Server(logging=lambda l, s: lines.append(s)) as srv:
        wait_for(lambda: any("ready" in s for s in lines))
        srv.set_logger(None)
        n = len(lines)
        RawClient(srv.client_url).close()
    assert len(lines) == n


def test_user_password_auth():
    with ember.Server(user="alice", password="s3cret") as srv:
        with pytest.raises(ProtocolError, match="Authorization Violation"):
            RawClient(srv.client_url)
        c = RawClient(srv.client_url, user="alice", password="s3cret")
        c.flush()
        c.close()
        # in-process connections are trusted
        conn = srv.connect()
        conn.publish("x")


def test_token_auth():
    with ember.Server(token="t0k") as srv:
        with pytest.raises(ProtocolError):
            RawClient(srv.client_url, token="wrong")
        RawClient(srv.client_url, token="t0k").close()


def test_max_payload_option(inproc_server):
    with ember.Server(max_payload=1024, dont_listen=True) as srv:
        conn = srv.connect()
        conn.publish("x", b"a" * 1024)
        with pytest.raises(ember.MaxPayloadError, match="maximum payload"):
            conn.publish("x", b"a" * 1025)


def test_max_subscriptions_option():
    with ember.Server(max_subscriptions=2, dont_listen=True) as srv:
        conn = srv.connect()
        keep = [conn.subscribe("a"), conn.subscribe("b")]  # dropping them would unsubscribe
        with pytest.raises(ember.LimitError):
            conn.subscribe("c")
        assert len(keep) == 2


def test_shutdown_then_close_idempotent():
    srv = ember.Server()
    srv.wait_ready()
    srv.shutdown()
    srv.shutdown()
    assert not srv.ready(0.1)
    with pytest.raises(ember.ClosedError):
        srv.connect()
    srv.close()
    srv.close()
    srv.shutdown()
    assert srv.stats is not None
    with pytest.raises(ember.ClosedError):
        srv.stats()


def test_wait_for_shutdown():
    import threading
    srv = ember.Server(dont_listen=True)
    assert srv.wait_for_shutdown(timeout=0.1) is False
    threading.Timer(0.1, srv.shutdown).start()
    assert srv.wait_for_shutdown(timeout=5.0) is True
    srv.close()


def test_tcp_port_closed_after_close():
    srv = ember.Server()
    srv.wait_ready()
    port = srv.port
    srv.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
