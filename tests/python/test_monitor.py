"""Monitoring: Server.monitor(path) (nats-server's /varz, /connz, /subsz, /jsz, /leafz,
/healthz JSON without a port) and the HTTP port (http_port)."""
import json
import socket
import urllib.error
import urllib.request

import pytest

import ember


def test_monitor_function_in_process(tmp_path):
    with ember.Server(dont_listen=True, server_name="py-mon", jetstream=True,
                      store_dir=tmp_path) as srv:
        assert srv.monitor_url is None and srv.monitor_port == 0
        with srv.connect(name="py-client") as nc:
            sub = nc.subscribe("mon.>")
            for _ in range(3):
                nc.publish("mon.a", b"hello")
            nc.flush()
            v = srv.monitor("/varz")
            assert v["server_name"] == "py-mon" and v["server_id"] == srv.id
            assert v["connections"] == 1 and v["in_msgs"] >= 3
            assert v["http_port"] == 0 and "jetstream" in v
            c = srv.monitor("connz?subs=1")
            assert c["num_connections"] == 1
            conn = c["connections"][0]
            assert conn["name"] == "py-client" and conn["type"] == "in-process"
            assert conn["kind"] == "Client" and conn["subscriptions_list"] == ["mon.>"]
            s = srv.monitor("subsz?subs=1&test=mon.b")
            assert s["total"] == 1 and s["subscriptions_list"][0]["subject"] == "mon.>"
            j = srv.monitor("jsz")
            assert j["streams"] == 0 and j["accounts"] == 1
            assert srv.monitor("healthz") == {"status": "ok", "status_code": 200}
            h = srv.monitor("healthz?account=$G&stream=NOPE")
            assert h["status"] == "unavailable" and h["status_code"] == 404
            assert srv.monitor("leafz")["leafnodes"] == 0
            with pytest.raises(ember.InvalidArgumentError,
                               match="invalid sorting option: bogus"):
                srv.monitor("connz?sort=bogus")
            with pytest.raises(ember.NotFoundError):
                srv.monitor("/nope")
            sub.unsubscribe()
    with pytest.raises(ember.Error):
        srv.monitor("varz")


def test_monitor_http_port():
    with ember.Server(http_port=-1) as srv:
        url = srv.monitor_url
        assert url == "http://127.0.0.1:%d" % srv.monitor_port and srv.monitor_port > 0
        with urllib.request.urlopen(url + "/varz", timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json"
            v = json.loads(r.read())
        assert v["http_port"] == srv.monitor_port and v["port"] == srv.port
        with urllib.request.urlopen(url + "/connz", timeout=5) as r:
            assert json.loads(r.read())["num_connections"] == 0
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "/connz?limit=x", timeout=5)
        assert e.value.code == 400
        assert e.value.read() == (b"Error decoding int for 'limit': strconv.Atoi: "
                                  b"parsing \"x\": invalid syntax")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "/nothing", timeout=5)
        assert e.value.code == 404
        # garbage on the socket: an answer or a close, and the server goes on
        with socket.create_connection(("127.0.0.1", srv.monitor_port), timeout=5) as s:
            s.sendall(b"\x00\xff garbage \r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        assert srv.monitor("healthz")["status"] == "ok"
