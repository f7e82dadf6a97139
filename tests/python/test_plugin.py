"""The pytest plugin: fixtures available through the pytest11 entry point and with
``-p ember.pytest_plugin``."""
import os
import subprocess
import sys
import textwrap

from ember.testing import RawClient


def test_fixtures_from_entry_point(ember_server, ember_conn, request):
    assert request.config.pluginmanager.has_plugin("ember.pytest_plugin")
    assert ember_server.ready(0)
    assert ember_server.client_url == f"nats://127.0.0.1:{ember_server.port}"
    sub = ember_conn.subscribe("fixture.test")
    with RawClient(ember_server.client_url) as c:
        c.publish("fixture.test", b"via tcp")
        c.flush()
    assert sub.next_msg(2).data == b"via tcp"


_seen_ports = []


def test_fresh_server_per_test_a(ember_server):
    _seen_ports.append((ember_server.id, ember_server.port))


def test_fresh_server_per_test_b(ember_server):
    _seen_ports.append((ember_server.id, ember_server.port))
    if len(_seen_ports) == 2:
        assert _seen_ports[0][0] != _seen_ports[1][0]


def test_plugin_loaded_with_dash_p(tmp_path):
    t = tmp_path / "test_uses_fixture.py"
    t.write_text(textwrap.dedent("""
        import ember
        from ember.testing import RawClient

        def test_it(ember_server, ember_conn):
            ember_conn.subscribe("hello.world", cb=lambda m: m.respond(b"hello there"))
            with RawClient(ember_server.client_url) as c:
                assert c.request("hello.world", b"hi").data == b"hello there"
            srv = ember_server
            assert isinstance(srv, ember.Server)
    """))
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(t)]
    p = subprocess.run(base[:3] + ["-p", "ember.pytest_plugin"] + base[3:], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed" in p.stdout
    # without the plugin the fixture does not exist
    p = subprocess.run(base, cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0 and "fixture 'ember_server' not found" in p.stdout
    # with autoload (entry point) and -p together: no double registration
    p = subprocess.run(base[:3] + ["-p", "ember.pytest_plugin"] + base[3:], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items()
                            if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"})
    assert p.returncode == 0, p.stdout + p.stderr


