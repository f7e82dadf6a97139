"""The pytest fixture's broker reached over TCP, as any NATS client would: with the raw
protocol client of ember.testing, and with the official C client (libnats, through cffi
ABI mode) when the shared library is installed."""
import socket
import threading

import pytest

import ember
from ember.testing import RawClient

from conftest import wait_for


def test_fixture_is_a_listening_server(ember_server):
    assert isinstance(ember_server, ember.Server)
    assert ember_server.client_url.startswith("nats://127.0.0.1:")
    s = socket.create_connection(("127.0.0.1", ember_server.port), timeout=2)
    line = s.makefile("rb").readline()
    assert line.startswith(b"INFO {")
    s.close()


def test_raw_protocol_info_and_ping(ember_server):
    c = RawClient(ember_server.client_url)
    assert c.info["headers"] is True
    assert c.info["server_id"] == ember_server.id
    assert c.info["version"] == ember.NATS_VERSION
    assert c.info["port"] == ember_server.port
    c.flush()
    c.close()


def test_tcp_request_to_inprocess_responder(ember_server, ember_conn):
    ember_conn.subscribe("hello.world", cb=lambda m: m.respond(b"hello there"))
    with RawClient(ember_server.client_url) as c:
        for _ in range(20):
            assert c.request("hello.world", b"hi").data == b"hello there"


def test_inprocess_request_to_tcp_responder(ember_server, ember_conn):
    c = RawClient(ember_server.client_url)
    sid = c.subscribe("tcp.svc")
    c.flush()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                m = c.next_msg(0.05, sid=sid)
            except ember.TimeoutError:
                continue
            c.publish(m.reply, b"tcp says " + m.data)

    t = threading.Thread(target=serve)
    t.start()
    try:
        r = ember_conn.request("tcp.svc", b"hi", timeout=2)
        assert r.data == b"tcp says hi"
    finally:
        stop.set()
        t.join()
        c.close()


def test_pubsub_both_directions_with_headers(ember_server, ember_conn):
    c = RawClient(ember_server.client_url)
    sid = c.subscribe("to.tcp.>")
    c.flush()
    sub = ember_conn.subscribe("to.inproc")
    ember_conn.publish("to.tcp.a", b"payload", headers={"K": ["1", "2"]})
    m = c.next_msg(2, sid=sid)
    assert m.subject == "to.tcp.a" and m.data == b"payload"
    assert m.headers.startswith(b"NATS/1.0\r\n") and b"K: 1\r\nK: 2\r\n" in m.headers
    c.publish("to.inproc", b"back", headers={"X-Trace": "abc"})
    c.flush()
    m2 = sub.next_msg(2)
    assert m2.data == b"back" and m2.headers["X-Trace"] == "abc"
    c.close()


def test_no_responders_over_tcp(ember_server):
    with RawClient(ember_server.client_url) as c:
        with pytest.raises(ember.NoRespondersError):
            c.request("nobody", b"")


def test_tcp_dispatch_and_poll_delivery(ember_server, ember_conn):
    got = []
    ember_conn.subscribe("t.d", cb=lambda m: got.append(("d", m.data)))
    ember_conn.subscribe("t.p", cb=lambda m: got.append(("p", m.data)), mode="poll")
    with RawClient(ember_server.client_url) as c:
        c.publish("t.d", b"1")
        c.publish("t.p", b"2")
        c.flush()
    wait_for(lambda: ("d", b"1") in got)
    assert ember_conn.poll(1) == 1
    assert ("p", b"2") in got


# ---------------------------------------------------------------- official C client

NATS_CDEF = """
typedef int natsStatus;
typedef struct __natsConnection natsConnection;
typedef struct __natsMsg natsMsg;
typedef struct __natsSubscription natsSubscription;
natsStatus natsConnection_ConnectTo(natsConnection **nc, const char *urls);
natsStatus natsConnection_Request(natsMsg **replyMsg, natsConnection *nc, const char *subj,
                                  const void *data, int dataLen, int64_t timeout);
natsStatus natsConnection_Publish(natsConnection *nc, const char *subj, const void *data,
                                  int dataLen);
natsStatus natsConnection_Flush(natsConnection *nc);
natsStatus natsConnection_SubscribeSync(natsSubscription **sub, natsConnection *nc,
                                        const char *subject);
natsStatus natsSubscription_NextMsg(natsMsg **nextMsg, natsSubscription *sub, int64_t timeout);
natsStatus natsMsg_Create(natsMsg **newMsg, const char *subj, const char *reply,
                          const char *data, int dataLen);
natsStatus natsMsgHeader_Add(natsMsg *msg, const char *key, const char *value);
natsStatus natsMsgHeader_Get(natsMsg *msg, const char *key, const char **value);
natsStatus natsConnection_PublishMsg(natsConnection *nc, natsMsg *msg);
const char *natsMsg_GetData(const natsMsg *msg);
int natsMsg_GetDataLength(const natsMsg *msg);
const char *natsMsg_GetSubject(const natsMsg *msg);
const char *natsMsg_GetReply(const natsMsg *msg);
void natsMsg_Destroy(natsMsg *msg);
void natsSubscription_Destroy(natsSubscription *sub);
void natsConnection_Destroy(natsConnection *nc);
const char *natsStatus_GetText(natsStatus s);
"""


@pytest.fixture(scope="module")
def libnats():
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef(NATS_CDEF)
    for name in ("libnats.so.3.4", "libnats.so"):
        try:
            return ffi, ffi.dlopen(name)
        except OSError:
            continue
    pytest.skip("libnats (the official NATS C client) is not installed")


def _text(ffi, nats, s):
    return ffi.string(nats.natsStatus_GetText(s)).decode()


def test_official_c_client_request_reply(libnats, ember_server, ember_conn):
    ffi, nats = libnats
    ember_conn.subscribe("hello.world", cb=lambda m: m.respond(b"hello there"))
    ncp = ffi.new("natsConnection **")
    assert nats.natsConnection_ConnectTo(ncp, ember_server.client_url.encode()) == 0
    nc = ncp[0]
    try:
        rp = ffi.new("natsMsg **")
        for _ in range(10):
            s = nats.natsConnection_Request(rp, nc, b"hello.world", b"hi", 2, 2000)
            assert s == 0, _text(ffi, nats, s)
            data = ffi.unpack(nats.natsMsg_GetData(rp[0]), nats.natsMsg_GetDataLength(rp[0]))
            nats.natsMsg_Destroy(rp[0])
            assert data == b"hello there"
        s = nats.natsConnection_Request(rp, nc, b"nobody.here", b"", 0, 2000)
        assert "no responders" in _text(ffi, nats, s).lower()
    finally:
        nats.natsConnection_Destroy(nc)


def test_official_c_client_pubsub_with_headers(libnats, ember_server, ember_conn):
    ffi, nats = libnats
    ncp = ffi.new("natsConnection **")
    assert nats.natsConnection_ConnectTo(ncp, ember_server.client_url.encode()) == 0
    nc = ncp[0]
    subp = ffi.new("natsSubscription **")
    try:
        assert nats.natsConnection_SubscribeSync(subp, nc, b"to.c.*") == 0
        assert nats.natsConnection_Flush(nc) == 0
        ember_conn.publish("to.c.x", b"from python", headers={"Who": "ember"})
        mp = ffi.new("natsMsg **")
        assert nats.natsSubscription_NextMsg(mp, subp[0], 2000) == 0
        m = mp[0]
        assert ffi.string(nats.natsMsg_GetSubject(m)) == b"to.c.x"
        assert ffi.unpack(nats.natsMsg_GetData(m), nats.natsMsg_GetDataLength(m)) == \
            b"from python"
        vp = ffi.new("const char **")
        assert nats.natsMsgHeader_Get(m, b"Who", vp) == 0
        assert ffi.string(vp[0]) == b"ember"
        nats.natsMsg_Destroy(m)

        sub = ember_conn.subscribe("to.py")
        assert nats.natsMsg_Create(mp, b"to.py", ffi.NULL, b"from C", 6) == 0
        assert nats.natsMsgHeader_Add(mp[0], b"K", b"v") == 0
        assert nats.natsConnection_PublishMsg(nc, mp[0]) == 0
        nats.natsMsg_Destroy(mp[0])
        assert nats.natsConnection_Flush(nc) == 0
        got = sub.next_msg(2)
        assert got.data == b"from C" and got.headers["K"] == "v"
    finally:
        if subp[0] != ffi.NULL:
            nats.natsSubscription_Destroy(subp[0])
        nats.natsConnection_Destroy(nc)
