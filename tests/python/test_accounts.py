"""Accounts from a config file: in-process connections bound to an account (by name or by
an account user's credentials), isolation, imports, JetStream/KV per account."""
import pytest

import ember

CONF = """
jetstream { store_dir: "%s" }
accounts {
  A: {
    users: [ {user: a, password: pa} ]
    jetstream: enabled
    exports: [ {stream: "news.>"}, {service: "svc.echo"} ]
  }
  B: {
    users: [ {user: b, password: pb} ]
    jetstream: enabled
    imports: [
      {stream: {account: A, subject: "news.>"}, prefix: "a"}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
    ]
  }
}
"""


@pytest.fixture
def server(tmp_path):
    conf = tmp_path / "acc.conf"
    conf.write_text(CONF % (tmp_path / "js"))
    with ember.Server(dont_listen=True, config_file=conf) as s:
        yield s


def test_isolation_and_imports(server):
    a = server.connect(account="A")
    b = server.connect(user="b", password="pb")
    g = server.connect()
    sa = a.subscribe("x", mode="poll")
    sb = b.subscribe("x", mode="poll")
    sg = g.subscribe("x", mode="poll")
    b.publish("x", b"from-b")
    assert sb.next_msg(2).data == b"from-b"
    with pytest.raises(ember.TimeoutError):
        sa.next_msg(0.1)
    with pytest.raises(ember.TimeoutError):
        sg.next_msg(0.05)
    news = b.subscribe("a.news.>", mode="poll")
    a.publish("news.today", b"hl")
    m = news.next_msg(2)
    assert m.subject == "a.news.today" and m.data == b"hl"
    a.subscribe("svc.echo", cb=lambda msg: msg.respond(b"echo:" + msg.data), mode="inline")
    assert b.request("echo", b"hi", timeout=2).data == b"echo:hi"
    with pytest.raises(ember.NoRespondersError):
        g.request("echo", b"hi", timeout=1)
    for c in (a, b, g):
        c.close()


def test_account_binding_errors(server):
    with pytest.raises(ember.NotFoundError):
        server.connect(account="NOPE")
    with pytest.raises(ember.AuthorizationError):
        server.connect(user="a", password="pa", account="B")
    server.connect(user="a", password="pa", account="A").close()


def test_kv_per_account(server):
    a = server.connect(account="A")
    b = server.connect(account="B")
    ka = a.jetstream().create_key_value("cfg")
    kb = b.jetstream().create_key_value("cfg")
    ka.put("k", b"va")
    kb.put("k", b"vb")
    assert ka.get("k").value == b"va"
    assert kb.get("k").value == b"vb"
    g = server.connect()
    with pytest.raises(ember.Error):
        g.jetstream().key_value("cfg")
    for c in (a, b, g):
        c.close()
