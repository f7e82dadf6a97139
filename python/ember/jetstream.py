"""JetStream over the native API: streams, durable publish, stored-message reads, pull
consumers with acknowledgements, key-value buckets (:mod:`ember.kv`) and object stores
(:mod:`ember.obj`).

Everything here calls the stream engine directly (``ember_js_*`` in ``ember.h``): no JSON
and no wire protocol on the in-process path.  The wire API (``$JS.API.*``) shares the
same streams, consumers and buckets, so NATS clients over TCP see what the host stores
and the other way round.

    js = conn.jetstream()
    js.add_stream("ORDERS", subjects=["orders.>"])
    ack = js.publish("orders.1", b"...", msg_id="o-1")      # durable when it returns
    js.add_consumer("ORDERS", durable="worker")
    for msg in js.fetch("ORDERS", "worker", batch=10, timeout=1.0):
        handle(msg.data)
        msg.ack()
"""
from __future__ import annotations

import concurrent.futures
import datetime as _dt
import itertools
import math
import threading
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence,
                    Tuple, Union)

from ._core import (NULL, BytesLike, HeaderInput, Headers, Msg, build_msg, headers_of,
                    payload, subj)
from ._ember import ffi, lib
from .errors import InvalidArgumentError, StateError, error_for

if TYPE_CHECKING:  # pragma: no cover
    from .connection import Connection, _ConnCore
    from .kv import KeyValue
    from .obj import ObjectStore

__all__ = ["JetStream", "PubAck", "StreamInfo", "StoredMsg", "JsMsg", "MsgMetadata",
           "ConsumerInfo", "STORAGE", "RETENTION", "DISCARD", "DELIVER_POLICY",
           "ACK_POLICY"]

#: Accepted values of the string options (see :meth:`JetStream.add_stream` and
#: :meth:`JetStream.add_consumer`).
STORAGE = {"file": lib.EMBER_STORAGE_FILE, "memory": lib.EMBER_STORAGE_MEMORY}
RETENTION = {"limits": lib.EMBER_RETENTION_LIMITS, "interest": lib.EMBER_RETENTION_INTEREST,
             "workqueue": lib.EMBER_RETENTION_WORKQUEUE}
DISCARD = {"old": lib.EMBER_DISCARD_OLD, "new": lib.EMBER_DISCARD_NEW}
DELIVER_POLICY = {
    "all": lib.EMBER_DELIVER_POLICY_ALL,
    "last": lib.EMBER_DELIVER_POLICY_LAST,
    "new": lib.EMBER_DELIVER_POLICY_NEW,
    "by_start_sequence": lib.EMBER_DELIVER_POLICY_BY_START_SEQUENCE,
    "last_per_subject": lib.EMBER_DELIVER_POLICY_LAST_PER_SUBJECT,
}
ACK_POLICY = {"explicit": lib.EMBER_ACK_EXPLICIT, "none": lib.EMBER_ACK_NONE,
              "all": lib.EMBER_ACK_ALL}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_GET_HEADERS = ("Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp")
_NAME_CAP = 256


def to_datetime(ns: int) -> _dt.datetime:
    """Nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    return _EPOCH + _dt.timedelta(microseconds=ns // 1000)


def _choice(table: Dict[str, int], value: str, what: str) -> int:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"invalid {what} {value!r} (expected one of {', '.join(map(repr, table))})"
        ) from None


def _ms(seconds: Optional[float], what: str) -> int:
    """Seconds to whole milliseconds (0 for None); a positive value never becomes 0."""
    if seconds is None:
        return 0
    if seconds < 0 or math.isnan(seconds):
        raise InvalidArgumentError(f"{what} must be >= 0 seconds")
    ms = int(round(seconds * 1000.0))
    return 1 if ms == 0 and seconds > 0 else ms


def _int(v: Optional[int], default: int) -> int:
    return default if v is None else int(v)


# ------------------------------------------------------------------ result types


@dataclass(frozen=True)
class PubAck:
    """A publish acknowledgement: the message is stored (durably, for a file stream).

    ``stream`` is the stream's name when it is known to the binding (when the publish
    gave ``expected_stream``), else None: the native acknowledgement carries only the
    sequence.  ``duplicate`` is True when the ``msg_id`` was seen within the stream's
    duplicate window (nothing was stored; ``seq`` is the original's)."""
    stream: Optional[str]
    seq: int
    duplicate: bool = False


@dataclass(frozen=True)
class StreamInfo:
    """The state of a stream (``ember_js_stream_info``)."""
    name: str
    msgs: int
    bytes: int
    first_seq: int
    last_seq: int
    num_subjects: int
    consumers: int


@dataclass(frozen=True)
class ConsumerInfo:
    """The state of a consumer (``ember_js_consumer_info``)."""
    stream: str
    name: str
    num_pending: int            #: not yet delivered, matching the filter
    num_ack_pending: int        #: delivered, not yet acknowledged
    num_redelivered: int
    delivered_stream_seq: int
    ack_floor_stream_seq: int


@dataclass(frozen=True)
class MsgMetadata:
    """JetStream metadata of a message delivered by a consumer (from its ack subject)."""
    stream: Optional[str]
    consumer: Optional[str]
    stream_seq: int
    consumer_seq: int
    num_delivered: int
    num_pending: int
    timestamp_ns: int

    @property
    def timestamp(self) -> _dt.datetime:
        """When the message was stored (UTC)."""
        return to_datetime(self.timestamp_ns)


@dataclass(frozen=True)
class StoredMsg:
    """A message read from a stream with :meth:`JetStream.get_msg`.

    ``headers`` are the headers it was published with (None when it had none); the
    ``Nats-Stream``, ``Nats-Subject``, ``Nats-Sequence`` and ``Nats-Time-Stamp`` headers
    of a direct get are given as the attributes ``stream``, ``subject``, ``seq`` and
    ``time`` instead."""
    stream: str
    subject: str
    seq: int
    data: bytes
    headers: Optional[Headers]
    timestamp_ns: int

    @property
    def time(self) -> _dt.datetime:
        """When the message was stored (UTC)."""
        return to_datetime(self.timestamp_ns)


class JsMsg(Msg):
    """A message fetched from a pull consumer (:meth:`JetStream.fetch`).

    Besides :class:`Msg`'s attributes (``subject`` is the stream subject, ``reply`` the
    ack subject) it has ``metadata`` (:class:`MsgMetadata`) and the acknowledgements
    :meth:`ack`, :meth:`nak`, :meth:`in_progress` and :meth:`term`.  ``ack``, ``nak``
    and ``term`` end the message's processing: a second one raises
    :class:`ember.StateError`.
    """

    __slots__ = ("metadata", "_acked")

    def _ack_op(self, fn: Any, *extra: Any, final: bool = True) -> None:
        if self._acked:
            raise StateError("message already acknowledged")
        core = self._core
        if core is None or not self.reply:
            raise InvalidArgumentError("not a JetStream message")
        m = build_msg(subj(self.subject), self.reply.encode(), b"", 0, None)
        try:
            core.enter()
            try:
                rc = fn(core.ptr, m, *extra)
                err = error_for(rc) if rc else None
            finally:
                core.leave()
        finally:
            lib.ember_msg_release(m)
        if err is not None:
            raise err
        if final:
            self._acked = True

    def ack(self) -> None:
        """Acknowledge: processed, never redelivered."""
        self._ack_op(lib.ember_js_ack)

    def nak(self, delay: Optional[float] = None) -> None:
        """Negative acknowledgement: redeliver, at once or after ``delay`` seconds."""
        self._ack_op(lib.ember_js_nak, _ms(delay, "delay"))

    def in_progress(self) -> None:
        """Still working on it: restart the consumer's ack wait (may be repeated)."""
        self._ack_op(lib.ember_js_in_progress, final=False)

    def term(self) -> None:
        """Terminate: never redeliver, even though it was not processed."""
        self._ack_op(lib.ember_js_term)

    @property
    def is_acked(self) -> bool:
        """True after :meth:`ack`, :meth:`nak` or :meth:`term`."""
        return self._acked

    def __repr__(self) -> str:
        md = self.metadata
        d = self.data if len(self.data) <= 64 else self.data[:64] + b"..."
        return (f"<JsMsg subject={self.subject!r} stream_seq={md.stream_seq} "
                f"delivered={md.num_delivered} data={d!r}>")


def _ack_names(reply: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    # $JS.ACK.<stream>.<consumer>.<...7> or $JS.ACK.<domain>.<hash>.<stream>.<consumer>...
    if not reply:
        return None, None
    t = reply.split(".")
    if len(t) == 9:
        return t[2], t[3]
    if len(t) >= 11:
        return t[4], t[5]
    return None, None


def _meta(p: Any) -> Tuple[int, int, int, int, int]:
    md = ffi.new("ember_js_meta *")
    if lib.ember_js_msg_meta(p, md) != 0:
        return 0, 0, 0, 0, 0
    return (md.stream_seq, md.consumer_seq, md.num_delivered, md.num_pending,
            md.timestamp_ns)


def _jsmsg_from_ptr(p: Any, core: "_ConnCore") -> JsMsg:
    v = lib.emberpy_msg_view(p)
    m = JsMsg.__new__(JsMsg)
    m.subject = ffi.string(v.subject).decode("utf-8", "replace")
    m.reply = None if v.reply == NULL else ffi.string(v.reply).decode("utf-8", "replace")
    m.data = ffi.unpack(v.data, v.len)
    if v.hdr == NULL:
        m.headers = None
        m.status = 0
    else:
        m.headers = headers_of(p)
        m.status = lib.ember_msg_status(p)
    m._core = core
    m._acked = False
    sseq, cseq, ndel, npend, ts = _meta(p)
    stream, consumer = _ack_names(m.reply)
    m.metadata = MsgMetadata(stream, consumer, sseq, cseq, ndel, npend, ts)
    return m


def _stored_from_ptr(p: Any, stream: str) -> StoredMsg:
    v = lib.emberpy_msg_view(p)
    subject = ffi.string(v.subject).decode("utf-8", "replace")
    data = ffi.unpack(v.data, v.len)
    seq, _, _, _, ts = _meta(p)
    headers: Optional[Headers] = None
    if v.hdr != NULL:
        h = headers_of(p)
        h._items = [(k, val) for k, val in h._items if k not in _GET_HEADERS]
        headers = h if h._items else None
    return StoredMsg(stream, subject, seq, data, headers, ts)


# ------------------------------------------------------------------ async acks
#
# ember_js_publish_async calls its function on the store's flusher thread (or in the
# publishing call).  The binding's C function only queues (token, status, seq, error
# text); one Python thread of the binding ("ember-js-acks") pops the queue and completes
# the Futures, so no library thread ever waits for the GIL.

# token -> (Future, result of (seq, duplicate)): a PubAck, or a KV revision
_pending: Dict[int, Tuple["concurrent.futures.Future[Any]", Callable[[int, bool], Any]]] = {}
_tokens = itertools.count(1)
_pump_lock = threading.Lock()
_pump_thread: Optional[threading.Thread] = None


def _ack_pump() -> None:
    item = ffi.new("emberpy_ack *")
    while True:
        if not lib.emberpy_ackq_pop(-1, item):
            continue
        err_text = None
        if item.err != NULL:
            err_text = ffi.string(item.err).decode("utf-8", "replace")
            lib.emberpy_free(item.err)
        fut, result = _pending.pop(item.token, (None, None))
        if fut is None or result is None:  # pragma: no cover - a token the binding did not issue
            continue
        if item.status == 0:
            fut.set_result(result(int(item.seq), bool(item.duplicate)))
        else:
            fut.set_exception(error_for(item.status, err_text))


def _ensure_pump() -> None:
    global _pump_thread
    if _pump_thread is not None:
        return
    with _pump_lock:
        if _pump_thread is None:
            t = threading.Thread(target=_ack_pump, daemon=True, name="ember-js-acks")
            t.start()
            _pump_thread = t


def submit_async(call: Callable[[int], None],
                 result: Callable[[int, bool], Any]) -> "concurrent.futures.Future[Any]":
    """Start an asynchronous store write: ``call(token)`` makes the C call that
    completes through the ack queue; the Future gets ``result(seq, duplicate)`` or
    the typed error.  ``call`` raising means nothing was attempted."""
    _ensure_pump()
    fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()  # not cancellable: the store decides
    token = next(_tokens)
    _pending[token] = (fut, result)
    try:
        call(token)
    except BaseException:
        _pending.pop(token, None)
        raise
    return fut


def pending_async_acks() -> int:
    """Number of asynchronous publishes not yet acknowledged (for tests)."""
    return len(_pending)


# ------------------------------------------------------------------ JetStream


def _js_headers(headers: Optional[HeaderInput], msg_id: Optional[str],
                expected_last_seq: Optional[int], expected_last_subject_seq: Optional[int],
                expected_stream: Optional[str], expected_last_msg_id: Optional[str],
                ttl: Union[None, float, str]) -> Optional[Headers]:
    extra: List[Tuple[str, str]] = []
    if msg_id is not None:
        extra.append(("Nats-Msg-Id", str(msg_id)))
    if expected_stream is not None:
        extra.append(("Nats-Expected-Stream", str(expected_stream)))
    if expected_last_seq is not None:
        extra.append(("Nats-Expected-Last-Sequence", str(int(expected_last_seq))))
    if expected_last_subject_seq is not None:
        extra.append(("Nats-Expected-Last-Subject-Sequence",
                      str(int(expected_last_subject_seq))))
    if expected_last_msg_id is not None:
        extra.append(("Nats-Expected-Last-Msg-Id", str(expected_last_msg_id)))
    if ttl is not None:
        if isinstance(ttl, str):
            extra.append(("Nats-TTL", ttl))
        else:
            if ttl <= 0:
                raise InvalidArgumentError("ttl must be > 0 seconds (or a string: 'never')")
            if float(ttl).is_integer():
                extra.append(("Nats-TTL", f"{int(ttl)}s"))
            else:
                extra.append(("Nats-TTL", f"{int(round(ttl * 1000))}ms"))
    if headers is None and not extra:
        return None
    h = Headers(headers) if headers is not None else Headers()
    for k, v in extra:
        h[k] = v
    return h


class JetStream:
    """JetStream of the server behind an in-process connection
    (:meth:`ember.Connection.jetstream`).  All methods are thread-safe; they block only
    on the store (a durable publish waits for its fsync) and on the waits they are
    given.  Calls on a server without JetStream raise :class:`ember.StateError`."""

    __slots__ = ("_conn", "_core")

    def __init__(self, conn: "Connection") -> None:
        self._conn = conn
        self._core = conn._core

    @property
    def connection(self) -> "Connection":
        return self._conn

    def _call(self, fn: Any, *args: Any) -> int:
        core = self._core
        core.enter()
        try:
            rc = fn(core.ptr, *args)
            err = error_for(rc) if rc < 0 else None
        finally:
            core.leave()
        if err is not None:
            raise err
        return rc

    # ---------------------------------------------------------------- streams
    def add_stream(self, name: str, subjects: Union[None, str, Sequence[str]] = None, *,
                   storage: str = "file", retention: str = "limits",
                   max_msgs: Optional[int] = None, max_bytes: Optional[int] = None,
                   max_age: Optional[float] = None,
                   max_msgs_per_subject: Optional[int] = None,
                   max_msg_size: Optional[int] = None, discard: str = "old",
                   duplicate_window: Optional[float] = None, allow_direct: bool = False,
                   allow_rollup: bool = False, deny_delete: bool = False,
                   deny_purge: bool = False, allow_msg_ttl: bool = False,
                   description: Optional[str] = None) -> StreamInfo:
        """Create a stream (creating it again with the same configuration succeeds) and
        return its :class:`StreamInfo`.

        Args:
            name: the stream's name.
            subjects: the subjects it stores (wildcards allowed); None: its name.
            storage: ``"file"`` (default; durable, recovered on restart) or
                ``"memory"``.
            retention: ``"limits"`` (default), ``"interest"`` or ``"workqueue"``.
            max_msgs, max_bytes, max_msgs_per_subject, max_msg_size: limits
                (None: unlimited).
            max_age: seconds a message is kept (None: forever).
            discard: ``"old"`` (default: drop the oldest at a limit) or ``"new"``
                (refuse the publish with :class:`ember.LimitError`).
            duplicate_window: seconds ``msg_id`` values are remembered (None: 2
                minutes, or ``max_age`` when smaller).
            allow_direct, allow_rollup, deny_delete, deny_purge, allow_msg_ttl,
            description: as nats-server's stream configuration.

        Raises :class:`ember.ExistsError` when the name is in use with another
        configuration, :class:`ember.InvalidArgumentError` for an invalid one.
        """
        keep: List[Any] = []
        cfg = ffi.new("ember_stream_config *")
        lib.ember_stream_config_init(cfg)
        nb = subj(name, "stream name")
        cfg.name = keep_str(keep, nb)
        if subjects is not None:
            if isinstance(subjects, (str, bytes)):
                subjects = [subjects]  # type: ignore[list-item]
            subs = [keep_str(keep, subj(s)) for s in subjects]  # type: ignore[arg-type]
            if subs:
                arr = ffi.new("const char *[]", subs)
                keep.append(arr)
                cfg.subjects = arr
                cfg.nsubjects = len(subs)
        if description is not None:
            cfg.description = keep_str(keep, subj(description, "description"))
        cfg.storage = _choice(STORAGE, storage, "storage")
        cfg.retention = _choice(RETENTION, retention, "retention")
        cfg.discard = _choice(DISCARD, discard, "discard policy")
        cfg.max_msgs = _int(max_msgs, -1)
        cfg.max_bytes = _int(max_bytes, -1)
        cfg.max_age_ms = _ms(max_age, "max_age")
        cfg.max_msgs_per_subject = _int(max_msgs_per_subject, -1)
        cfg.max_msg_size = _int(max_msg_size, -1)
        cfg.duplicate_window_ms = _ms(duplicate_window, "duplicate_window")
        cfg.allow_direct = bool(allow_direct)
        cfg.allow_rollup = bool(allow_rollup)
        cfg.deny_delete = bool(deny_delete)
        cfg.deny_purge = bool(deny_purge)
        cfg.allow_msg_ttl = bool(allow_msg_ttl)
        self._call(lib.ember_js_stream_create, cfg)
        return self.stream_info(name)

    def delete_stream(self, name: str) -> None:
        """Delete a stream, its consumers and messages (:class:`ember.NotFoundError`
        when there is none)."""
        self._call(lib.ember_js_stream_delete, subj(name, "stream name"))

    def purge_stream(self, name: str, subject: Optional[str] = None) -> int:
        """Remove every message of the stream (or only those on ``subject``, wildcards
        allowed); returns how many were removed."""
        out = ffi.new("uint64_t *")
        self._call(lib.ember_js_stream_purge, subj(name, "stream name"),
                   subj(subject) if subject is not None else NULL, out)
        return int(out[0])

    def stream_info(self, name: str) -> StreamInfo:
        """The stream's state (:class:`ember.NotFoundError` when there is none)."""
        out = ffi.new("ember_stream_info *")
        self._call(lib.ember_js_stream_info, subj(name, "stream name"), out)
        return StreamInfo(name, out.msgs, out.bytes, out.first_seq, out.last_seq,
                          out.num_subjects, out.consumers)

    # ---------------------------------------------------------------- publish
    def _build(self, subject: str, data: Optional[BytesLike],
               headers: Optional[HeaderInput]) -> Any:
        d, n = payload(data)
        return build_msg(subj(subject), None, d, n, headers)

    def publish(self, subject: str, data: Optional[BytesLike] = b"",
                headers: Optional[HeaderInput] = None, *, msg_id: Optional[str] = None,
                expected_last_seq: Optional[int] = None,
                expected_last_subject_seq: Optional[int] = None,
                expected_stream: Optional[str] = None,
                expected_last_msg_id: Optional[str] = None,
                ttl: Union[None, float, str] = None) -> PubAck:
        """Store a message in the stream whose subjects match ``subject`` and return once
        it is stored (for a file stream: fsync'd, unless the server has a
        ``sync_interval``).  Core subscribers of the subject receive it too.

        Args:
            msg_id: ``Nats-Msg-Id``: a second publish with the same id within the
                duplicate window stores nothing (``PubAck.duplicate``).
            expected_last_seq, expected_last_subject_seq, expected_stream,
            expected_last_msg_id: optimistic concurrency (``Nats-Expected-*``);
                a mismatch raises :class:`ember.WrongSequenceError`.
            ttl: per-message TTL in seconds (or a string such as ``"never"``); the
                stream needs ``allow_msg_ttl``.

        Raises :class:`ember.NotFoundError` when no stream takes the subject,
        :class:`ember.LimitError` when a limit refused the message,
        :class:`ember.MaxPayloadError` when it is over ``max_payload``.
        """
        h = _js_headers(headers, msg_id, expected_last_seq, expected_last_subject_seq,
                        expected_stream, expected_last_msg_id, ttl)
        m = self._build(subject, data, h)
        ack = ffi.new("ember_pub_ack *")
        try:
            self._call(lib.emberpy_js_publish, m, ack)
        finally:
            lib.ember_msg_release(m)
        return PubAck(expected_stream, ack.seq, bool(ack.duplicate))

    def publish_async(self, subject: str, data: Optional[BytesLike] = b"",
                      headers: Optional[HeaderInput] = None, *,
                      msg_id: Optional[str] = None,
                      expected_last_seq: Optional[int] = None,
                      expected_last_subject_seq: Optional[int] = None,
                      expected_stream: Optional[str] = None,
                      expected_last_msg_id: Optional[str] = None,
                      ttl: Union[None, float, str] = None
                      ) -> "concurrent.futures.Future[PubAck]":
        """Like :meth:`publish` without waiting for the store: returns a
        :class:`concurrent.futures.Future` that completes with the :class:`PubAck` (or
        the typed error) once the message is stored.  Many publishes in flight share
        one fsync (group commit), so this is the fast way to write a batch::

            futs = [js.publish_async("events.x", b"...") for _ in range(1000)]
            acks = [f.result() for f in futs]

        The Future completes on a thread of the binding (``ember-js-acks``), where its
        done-callbacks run; ``asyncio.wrap_future`` bridges it to asyncio.  Errors
        found before anything was attempted (no stream, bad subject, closed) raise
        here instead.
        """
        h = _js_headers(headers, msg_id, expected_last_seq, expected_last_subject_seq,
                        expected_stream, expected_last_msg_id, ttl)
        m = self._build(subject, data, h)
        try:
            return submit_async(
                lambda token: self._call(lib.emberpy_js_publish_async, m, token),
                lambda seq, dup: PubAck(expected_stream, seq, dup))
        finally:
            lib.ember_msg_release(m)

    # ---------------------------------------------------------------- messages
    def get_msg(self, stream: str, seq: Optional[int] = None, *,
                last_by_subject: Optional[str] = None) -> StoredMsg:
        """Read a stored message by sequence, or the last one on ``last_by_subject``
        (wildcards allowed).  Raises :class:`ember.NotFoundError` when there is no such
        message (or stream)."""
        if (seq is None) == (last_by_subject is None):
            raise InvalidArgumentError("give exactly one of seq and last_by_subject")
        out = ffi.new("ember_msg **")
        sb = subj(stream, "stream name")
        if seq is not None:
            if seq < 0:
                raise InvalidArgumentError("seq must be >= 0")
            self._call(lib.ember_js_get, sb, int(seq), out)
        else:
            self._call(lib.ember_js_get_last, sb, subj(last_by_subject), out)  # type: ignore[arg-type]
        p = out[0]
        try:
            return _stored_from_ptr(p, stream)
        finally:
            lib.ember_msg_release(p)

    def get_last_msg(self, stream: str, subject: str) -> StoredMsg:
        """The last message of ``stream`` on ``subject`` (as
        ``get_msg(stream, last_by_subject=subject)``)."""
        return self.get_msg(stream, last_by_subject=subject)

    def delete_msg(self, stream: str, seq: int) -> None:
        """Delete (erase) one message; :class:`ember.NotFoundError` when it is not
        there."""
        if seq < 0:
            raise InvalidArgumentError("seq must be >= 0")
        self._call(lib.ember_js_delete_msg, subj(stream, "stream name"), int(seq))

    # ---------------------------------------------------------------- consumers
    def add_consumer(self, stream: str, durable: Optional[str] = None, *,
                     filter_subject: Optional[str] = None, deliver_policy: str = "all",
                     opt_start_seq: Optional[int] = None, ack_policy: str = "explicit",
                     ack_wait: Optional[float] = None, max_deliver: Optional[int] = None,
                     max_ack_pending: Optional[int] = None,
                     inactive_threshold: Optional[float] = None) -> str:
        """Create (or find identical) a pull consumer on ``stream``; returns its name
        (``durable``, or a generated one for an ephemeral consumer, which the server
        removes after ``inactive_threshold`` seconds without fetches).

        Args:
            filter_subject: only messages on this subject (wildcards allowed).
            deliver_policy: ``"all"`` (default), ``"last"``, ``"new"``,
                ``"by_start_sequence"`` (with ``opt_start_seq``) or
                ``"last_per_subject"``.
            ack_policy: ``"explicit"`` (default), ``"none"`` or ``"all"``.
            ack_wait: seconds before an unacknowledged message is redelivered
                (None: 30).
            max_deliver: deliveries per message (None: unlimited).
            max_ack_pending: messages delivered and not yet acknowledged (None: 1000).
        """
        keep: List[Any] = []
        cfg = ffi.new("ember_consumer_config *")
        lib.ember_consumer_config_init(cfg)
        if durable is not None:
            cfg.durable_name = keep_str(keep, subj(durable, "durable name"))
        if filter_subject is not None:
            cfg.filter_subject = keep_str(keep, subj(filter_subject))
        cfg.deliver_policy = _choice(DELIVER_POLICY, deliver_policy, "deliver_policy")
        if deliver_policy == "by_start_sequence":
            if opt_start_seq is None or opt_start_seq < 1:
                raise InvalidArgumentError(
                    "deliver_policy 'by_start_sequence' needs opt_start_seq >= 1")
            cfg.opt_start_seq = int(opt_start_seq)
        elif opt_start_seq is not None:
            raise InvalidArgumentError(
                "opt_start_seq needs deliver_policy='by_start_sequence'")
        cfg.ack_policy = _choice(ACK_POLICY, ack_policy, "ack_policy")
        cfg.ack_wait_ms = _ms(ack_wait, "ack_wait")
        if max_deliver is not None:
            cfg.max_deliver = int(max_deliver)
        if max_ack_pending is not None:
            cfg.max_ack_pending = int(max_ack_pending)
        cfg.inactive_threshold_ms = _ms(inactive_threshold, "inactive_threshold")
        name = ffi.new("char[]", _NAME_CAP)
        self._call(lib.ember_js_consumer_create, subj(stream, "stream name"), cfg, name,
                   _NAME_CAP)
        return ffi.string(name).decode()

    def delete_consumer(self, stream: str, consumer: str) -> None:
        """Delete a consumer (:class:`ember.NotFoundError` when there is none)."""
        self._call(lib.ember_js_consumer_delete, subj(stream, "stream name"),
                   subj(consumer, "consumer name"))

    def consumer_info(self, stream: str, consumer: str) -> ConsumerInfo:
        """The consumer's state (:class:`ember.NotFoundError` when there is none)."""
        out = ffi.new("ember_consumer_info *")
        self._call(lib.ember_js_consumer_info, subj(stream, "stream name"),
                   subj(consumer, "consumer name"), out)
        return ConsumerInfo(stream, consumer, out.num_pending, out.num_ack_pending,
                            out.num_redelivered, out.delivered_stream_seq,
                            out.ack_floor_stream_seq)

    def fetch(self, stream: str, consumer: str, batch: int = 1,
              timeout: Optional[float] = 1.0) -> List[JsMsg]:
        """Fetch up to ``batch`` messages from a pull consumer, waiting up to
        ``timeout`` seconds for the first (0: only what is there now; None: until one
        arrives).  Returns a list, empty when nothing came in time.  Acknowledge each
        message as the consumer's ack policy requires.  Raises
        :class:`ember.NotFoundError` when the stream or consumer does not exist."""
        batch = int(batch)
        if batch < 1:
            raise InvalidArgumentError("batch must be >= 1")
        if timeout is not None and timeout < 0:
            raise InvalidArgumentError("timeout must be >= 0 (or None)")
        sb = subj(stream, "stream name")
        cb = subj(consumer, "consumer name")
        arr = ffi.new("ember_msg *[]", batch)
        while True:
            ms = 250 if timeout is None else _ms(timeout, "timeout")
            n = self._call(lib.ember_js_fetch, sb, cb, arr, batch, ms)
            if n > 0 or timeout is not None:
                break
        core = self._core
        out: List[JsMsg] = []
        try:
            for i in range(n):
                out.append(_jsmsg_from_ptr(arr[i], core))
        finally:
            for i in range(n):
                lib.ember_msg_release(arr[i])
        return out

    # ---------------------------------------------------------------- key-value
    def create_key_value(self, bucket: str, *, history: int = 1,
                         ttl: Optional[float] = None, max_bytes: int = -1,
                         max_value_size: int = -1, storage: str = "file",
                         description: Optional[str] = None) -> "KeyValue":
        """Create a key-value bucket (or open it when it exists with the same
        configuration) and return a :class:`ember.kv.KeyValue`.

        Args:
            bucket: letters, digits, ``-`` and ``_``.
            history: values kept per key (1-64).
            ttl: seconds values live (None: forever).
            max_bytes, max_value_size: limits (-1: unlimited).
            storage: ``"file"`` (default) or ``"memory"``.

        The bucket is the stream ``KV_<bucket>`` on ``$KV.<bucket>.>`` (ADR-8), shared
        with NATS clients over the wire.  Raises :class:`ember.ExistsError` when it
        exists with another configuration.
        """
        from .kv import KeyValue
        keep: List[Any] = []
        cfg = ffi.new("ember_kv_config *")
        lib.ember_kv_config_init(cfg)
        cfg.bucket = keep_str(keep, subj(bucket, "bucket name"))
        if description is not None:
            cfg.description = keep_str(keep, subj(description, "description"))
        cfg.history = int(history)
        cfg.ttl_ms = _ms(ttl, "ttl")
        cfg.max_bytes = int(max_bytes)
        cfg.max_value_size = int(max_value_size)
        cfg.storage = _choice(STORAGE, storage, "storage")
        out = ffi.new("ember_kv **")
        self._call(lib.ember_kv_bucket_create, cfg, out)
        return KeyValue(self._conn, out[0], bucket)

    def key_value(self, bucket: str) -> "KeyValue":
        """Open an existing bucket (:class:`ember.NotFoundError` when there is none)."""
        from .kv import KeyValue
        out = ffi.new("ember_kv **")
        self._call(lib.ember_kv_bucket_open, subj(bucket, "bucket name"), out)
        return KeyValue(self._conn, out[0], bucket)

    def delete_key_value(self, bucket: str) -> None:
        """Delete a bucket and everything in it (:class:`ember.NotFoundError` when there
        is none)."""
        self._call(lib.ember_kv_bucket_delete, subj(bucket, "bucket name"))

    # ---------------------------------------------------------------- object store
    def create_object_store(self, bucket: str, *, ttl: Optional[float] = None,
                            max_bytes: int = -1, storage: str = "file",
                            description: Optional[str] = None,
                            chunk_size: Optional[int] = None) -> "ObjectStore":
        """Create an object store bucket (or open it when it exists with the same
        configuration) and return a :class:`ember.obj.ObjectStore`.

        Args:
            bucket: letters, digits, ``-`` and ``_``.
            ttl: seconds objects live (None: forever).
            max_bytes: limit of the bucket's stream (-1: unlimited).
            storage: ``"file"`` (default) or ``"memory"``.
            chunk_size: chunk size of the objects put through the returned handle
                (None: 128 KiB; at most the server's ``max_payload``).

        The bucket is the stream ``OBJ_<bucket>`` on ``$O.<bucket>.C.>`` and
        ``$O.<bucket>.M.>`` (ADR-20), shared with NATS clients over the wire.  Raises
        :class:`ember.ExistsError` when it exists with another configuration.
        """
        from .obj import ObjectStore
        keep: List[Any] = []
        cfg = ffi.new("ember_obj_config *")
        lib.ember_obj_config_init(cfg)
        cfg.bucket = keep_str(keep, subj(bucket, "bucket name"))
        if description is not None:
            cfg.description = keep_str(keep, subj(description, "description"))
        cfg.ttl_ms = _ms(ttl, "ttl")
        cfg.max_bytes = int(max_bytes)
        cfg.storage = _choice(STORAGE, storage, "storage")
        if chunk_size is not None:
            if not 1 <= int(chunk_size) < 2**32:
                raise InvalidArgumentError("chunk_size must be 1 .. 2**32-1 bytes")
            cfg.chunk_size = int(chunk_size)
        out = ffi.new("ember_obj **")
        self._call(lib.ember_obj_bucket_create, cfg, out)
        return ObjectStore(self._conn, out[0], bucket)

    def object_store(self, bucket: str) -> "ObjectStore":
        """Open an existing object store (:class:`ember.NotFoundError` when there is
        none)."""
        from .obj import ObjectStore
        out = ffi.new("ember_obj **")
        self._call(lib.ember_obj_bucket_open, subj(bucket, "bucket name"), out)
        return ObjectStore(self._conn, out[0], bucket)

    def delete_object_store(self, bucket: str) -> None:
        """Delete an object store and every object in it (:class:`ember.NotFoundError`
        when there is none)."""
        self._call(lib.ember_obj_bucket_delete, subj(bucket, "bucket name"))

    def __repr__(self) -> str:
        return f"<ember.JetStream of {self._conn!r}>"


def keep_str(keep: List[Any], b: bytes) -> Any:
    p = ffi.new("char[]", b)
    keep.append(p)
    return p
