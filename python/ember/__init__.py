"""Ember: an embeddable NATS-compatible message broker, from Python.

>>> import ember
>>> with ember.Server(dont_listen=True) as srv:
...     conn = srv.connect()                         # in-process: no socket
...     _ = conn.subscribe("hello.world", cb=lambda m: m.respond(b"hello there"))
...     conn.request("hello.world", b"hi").data
b'hello there'

With ``Server(jetstream=True, store_dir=...)``, ``conn.jetstream()`` gives streams,
consumers, key-value buckets and object stores (:mod:`ember.jetstream`, :mod:`ember.kv`,
:mod:`ember.obj`).

See ``docs/python.md`` for the full guide.  :mod:`ember.aio` integrates with asyncio;
:mod:`ember.pytest_plugin` provides the ``ember_server`` and ``ember_conn`` fixtures.
"""
from __future__ import annotations

from ._core import Headers, Msg
from ._ember import ffi as _ffi, lib as _lib
from .connection import (MODES, Connection, ConnectionStats, Subscription,
                         SubscriptionStats)
from .errors import (AuthorizationError, ClosedError, EmberIOError, Error, ExistsError,
                     InvalidArgumentError, PermissionsError,
                     LimitError, MaxPayloadError, NoMemoryError, NoRespondersError,
                     NotFoundError, SlowConsumerError, StateError, TimeoutError,
                     WrongSequenceError)
from .jetstream import (ConsumerInfo, JetStream, JsMsg, MsgMetadata, PubAck, StoredMsg,
                        StreamInfo)
from .kv import Entry, KeyValue, KeyWatcher, KvOp
from .obj import ObjectInfo, ObjectReader, ObjectStore, ObjectWriter
from .server import LOG_LEVELS, Server, ServerStats

#: Version of the core library (``ember_version()``).
__version__: str = _ffi.string(_lib.ember_version()).decode()
#: The nats-server version Ember advertises to clients.
NATS_VERSION = "2.11.0"

LOG_FATAL: int = _lib.EMBER_LOG_FATAL
LOG_ERROR: int = _lib.EMBER_LOG_ERROR
LOG_WARN: int = _lib.EMBER_LOG_WARN
LOG_INFO: int = _lib.EMBER_LOG_INFO
LOG_DEBUG: int = _lib.EMBER_LOG_DEBUG
LOG_TRACE: int = _lib.EMBER_LOG_TRACE


def version() -> str:
    """The core library's version string."""
    return __version__


__all__ = [
    "Server", "ServerStats", "Connection", "ConnectionStats", "Subscription",
    "SubscriptionStats", "Msg", "Headers", "MODES", "LOG_LEVELS",
    "JetStream", "PubAck", "StreamInfo", "StoredMsg", "JsMsg", "MsgMetadata", "ConsumerInfo",
    "KeyValue", "Entry", "KvOp", "KeyWatcher",
    "ObjectStore", "ObjectInfo", "ObjectReader", "ObjectWriter",
    "Error", "InvalidArgumentError", "TimeoutError", "NoRespondersError", "ClosedError",
    "MaxPayloadError", "NotFoundError", "ExistsError", "WrongSequenceError",
    "SlowConsumerError", "EmberIOError", "NoMemoryError", "LimitError", "StateError",
    "AuthorizationError", "PermissionsError",
    "LOG_FATAL", "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG", "LOG_TRACE",
    "version", "NATS_VERSION",
]
