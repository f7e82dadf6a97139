"""Leaf nodes from Python: Server(leafnodes=...) both as a leaf and as a hub, and the
leafnodes block of a config file. Two embedded servers on loopback; no outside peer."""
import shutil
import subprocess
import time

import pytest

import ember
from conftest import wait_for


def test_leaf_joins_hub_both_ways(tmp_path):
    with ember.Server(dont_listen=True, leafnodes={"port": -1, "host": "127.0.0.1"}) as hub:
        assert hub.leafnode_port > 0
        url = "nats-leaf://127.0.0.1:%d" % hub.leafnode_port
        with ember.Server(dont_listen=True, jetstream=True, store_dir=tmp_path,
                          jetstream_domain="embedded", leafnodes=url) as leaf:
            wait_for(lambda: leaf.leafnode_count == 1 and hub.leafnode_count == 1)
            lc = leaf.connect()
            lc.subscribe("hello.world", cb=lambda m: m.respond(b"hello there"))
            hc = hub.connect()
            # the hub's request reaches the leaf's in-process responder
            def ask():
                try:
                    return hc.request("hello.world", b"hi", timeout=0.5).data
                except (ember.TimeoutError, ember.NoRespondersError):
                    return None
            wait_for(lambda: ask() == b"hello there")
            # and the reverse direction, with headers
            hc.subscribe("cloud.echo", cb=lambda m: m.respond(m.data, headers=m.headers))
            def ask_back():
                try:
                    return lc.request("cloud.echo", b"up", timeout=0.5,
                                      headers={"X-From": "leaf"})
                except (ember.TimeoutError, ember.NoRespondersError):
                    return None
            wait_for(lambda: ask_back() is not None)
            r = ask_back()
            assert r.data == b"up" and r.headers.get("X-From") == "leaf"
            # the embedded JetStream through the domain prefix, from the hub
            info = hc.request("$JS.embedded.API.INFO", b"", timeout=2).data
            assert b'"domain":"embedded"' in info
            # the client JetStream API stays local: the hub has none to answer
            with pytest.raises((ember.TimeoutError, ember.NoRespondersError)):
                hc.request("$JS.API.INFO", b"", timeout=0.3)
        wait_for(lambda: hub.leafnode_count == 0)


def test_leaf_options_refused():
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(dont_listen=True, leafnodes={"remotes": ["http://x"]})
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(dont_listen=True, leafnodes={"bogus": 1})
    with pytest.raises(ember.InvalidArgumentError):
        ember.Server(dont_listen=True, leafnodes=[{"urls": ["nats-leaf://h:1"], "nope": 1}])


def test_leafnodes_from_config_file(tmp_path):
    with ember.Server(dont_listen=True, leafnodes={"port": -1, "host": "127.0.0.1"}) as hub:
        conf = tmp_path / "leaf.conf"
        conf.write_text(
            "server_name: from-file\n"
            "leafnodes {\n  reconnect: \"250ms\"\n"
            "  remotes = [ { url: \"nats-leaf://127.0.0.1:%d\" } ]\n}\n" % hub.leafnode_port)
        with ember.Server(dont_listen=True, config_file=conf) as leaf:
            wait_for(lambda: leaf.leafnode_count == 1)
            assert leaf.name == "from-file"
    bad = tmp_path / "bad.conf"
    bad.write_text("leafnodes { remotes = [ { urls: 7 } ] }\n")
    with pytest.raises(ember.InvalidArgumentError) as e:
        ember.Server(dont_listen=True, config_file=bad)
    assert "bad.conf:1" in str(e.value)


@pytest.mark.skipif(not shutil.which("nats-server"), reason="Debian's nats-server not installed")
def test_leaf_demo_example_against_nats_server(tmp_path):
    """examples/python/leaf_demo.py (DEMO.md steps 6-10) against nats-server as the hub."""
    import os
    import socket
    import sys

    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p
    cport, lport = free_port(), free_port()
    conf = tmp_path / "hub.conf"
    conf.write_text('listen: "127.0.0.1:%d"\njetstream { store_dir: "%s" }\n'
                    'leafnodes { listen: "127.0.0.1:%d" }\n' % (cport, tmp_path / "hub", lport))
    hub = subprocess.Popen([shutil.which("nats-server"), "-c", str(conf)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python",
                               "leaf_demo.py")
        r = subprocess.run([sys.executable, example, "nats-leaf://127.0.0.1:%d" % lport,
                            "nats://127.0.0.1:%d" % cport, str(tmp_path / "store")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "all steps done" in r.stdout
    finally:
        hub.terminate()
        hub.wait(5)


def test_inprocess_credentials_and_permissions(tmp_path):
    """An in-process connection given credentials gets its user's permissions."""
    conf = tmp_path / "auth.conf"
    conf.write_text('authorization { users = [ { user: app, password: pw,\n'
                    '  permissions { publish: "ok.>", subscribe: "ok.>" } } ] }\n')
    with ember.Server(dont_listen=True, config_file=conf) as srv:
        with pytest.raises(ember.AuthorizationError):
            srv.connect(user="app", password="nope")
        c = srv.connect(user="app", password="pw")
        c.publish("ok.a", b"x")
        with pytest.raises(ember.PermissionsError) as e:
            c.publish("no", b"x")
        assert 'Permissions Violation for Publish to "no"' in str(e.value)
        with pytest.raises(ember.PermissionsError):
            c.subscribe("no.>")
        host = srv.connect()  # the host's own connection: not checked
        host.publish("no", b"x")
