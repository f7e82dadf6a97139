"""pytest fixtures: a fresh embedded NATS broker per test.

Installed with the package and registered through the ``pytest11`` entry point, so the
fixtures are available in every test session; without the entry point (e.g. with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), load it with ``pytest -p ember.pytest_plugin``.

Fixtures:

``ember_server``
    An :class:`ember.Server` listening on 127.0.0.1 on a free port (``port=-1``),
    with JetStream enabled on a fresh temporary store directory, ready for
    connections.  ``ember_server.client_url`` (``nats://127.0.0.1:<port>``)
    works with any NATS client, so tests of code that uses nats.py, nats.go or the C
    client can run against a broker that lives and dies with the test.
``ember_conn``
    An in-process :class:`ember.Connection` to ``ember_server``.

Example::

    def test_service(ember_server, ember_conn):
        ember_conn.subscribe("svc.echo", cb=lambda m: m.respond(m.data))
        assert ember_conn.request("svc.echo", b"hi").data == b"hi"
        start_my_service(nats_url=ember_server.client_url)
"""
from __future__ import annotations

from typing import Iterator

import pytest

import ember


@pytest.fixture
def ember_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ember.Server]:
    """A fresh embedded broker on 127.0.0.1, any free port, JetStream enabled with its
    store in a temporary directory of its own; closed after the test."""
    store = tmp_path_factory.mktemp("ember-jetstream")
    srv = ember.Server(port=-1, host="127.0.0.1", jetstream=True, store_dir=str(store))
    try:
        srv.wait_ready(5.0)
        yield srv
    finally:
        srv.close()


@pytest.fixture
def ember_conn(ember_server: ember.Server) -> Iterator[ember.Connection]:
    """An in-process connection to ``ember_server``; closed after the test."""
    conn = ember_server.connect(name="pytest")
    try:
        yield conn
    finally:
        conn.close()
