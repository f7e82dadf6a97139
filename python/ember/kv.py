"""Key-value buckets (ADR-8) over the native API (``ember_kv_*``).

    js = conn.jetstream()
    kv = js.create_key_value("settings", history=5)
    rev = kv.put("theme", b"dark")
    kv.get("theme").value                  # b'dark'
    kv.update("theme", b"light", last=rev)
    for entry in kv.watch("theme"):        # None marks the end of the initial values
        ...

A missing key (never set, deleted or purged) raises :class:`ember.NotFoundError` from
:meth:`KeyValue.get`; a bucket is the stream ``KV_<bucket>``, shared with NATS clients
over the wire.
"""
from __future__ import annotations

import concurrent.futures
import enum
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional

from ._core import NULL, BytesLike, new_handle, payload, reap, subj
from ._ember import ffi, lib
from .errors import ClosedError, InvalidArgumentError, TimeoutError, error_for
from .jetstream import StreamInfo, submit_async, to_datetime

if TYPE_CHECKING:  # pragma: no cover
    import datetime

    from .connection import Connection, _ConnCore

__all__ = ["KeyValue", "Entry", "KvOp", "KeyWatcher"]


class KvOp(str, enum.Enum):
    """The operation of a key-value entry (compares equal to its string)."""
    PUT = "PUT"
    DEL = "DEL"
    PURGE = "PURGE"

    def __str__(self) -> str:
        return self.value


_OPS = {lib.EMBER_KV_PUT: KvOp.PUT, lib.EMBER_KV_DEL: KvOp.DEL,
        lib.EMBER_KV_PURGE: KvOp.PURGE}


@dataclass(frozen=True)
class Entry:
    """One entry of a bucket: a value (``operation`` PUT) or a delete / purge marker.

    ``delta`` is set by watches: the number of entries still to come in the initial
    values after this one (0 otherwise)."""
    bucket: str
    key: str
    value: bytes
    revision: int
    created_ns: int
    delta: int
    operation: KvOp

    @property
    def created(self) -> "datetime.datetime":
        """When this revision was written (UTC)."""
        return to_datetime(self.created_ns)


def _entry(e: Any) -> Entry:
    return Entry(ffi.string(e.bucket).decode("utf-8", "replace"),
                 ffi.string(e.key).decode("utf-8", "replace"),
                 ffi.unpack(ffi.cast("const char *", e.value), e.len),
                 e.revision, e.created_ns, e.delta, _OPS.get(e.op, KvOp.PUT))


# ------------------------------------------------------------------ watch

_END = object()
WatchCallback = Callable[[Optional[Entry]], Any]


class _WatchState:
    """What a watch's C userdata handle points to; also the connection's record of a
    running watch (stopped before the connection is freed)."""

    __slots__ = ("cb", "q", "core", "ptr", "__weakref__")

    def __init__(self, cb: Optional[WatchCallback], core: "_ConnCore") -> None:
        self.cb = cb
        self.q: Optional["queue.SimpleQueue[Any]"] = None if cb is not None else queue.SimpleQueue()
        self.core = core
        self.ptr: Any = None

    def ended(self) -> None:
        if self.q is not None:
            self.q.put(_END)

    def __repr__(self) -> str:
        return f"<ember key-value watch callback {self.cb!r}>"


@ffi.def_extern()
def _emberpy_on_kv(ud: Any, e: Any) -> None:
    """C calls this on the connection's dispatcher thread (DISPATCH) or inside
    ember_conn_poll (POLL); cffi takes the GIL."""
    st: _WatchState = ffi.from_handle(ud)
    try:
        entry = None if e == NULL else _entry(e)
        if st.cb is not None:
            st.cb(entry)
        else:
            st.q.put(entry)  # type: ignore[union-attr]
    except BaseException as exc:  # reported, never swallowed silently
        st.core.report(exc, st)


def stop_watch(core: "_ConnCore", st: _WatchState) -> None:
    """Stop a watch once (any thread, also from its own callback); the connection's
    pointer must still be valid (inside a guarded call, or from _ConnCore.finish)."""
    with core.lock:
        ptr = st.ptr
        if ptr is None:
            return
        st.ptr = None
        core.watchers.discard(st)
    lib.ember_kv_watch_stop(ptr)
    st.ended()


class KeyWatcher:
    """A running watch (:meth:`KeyValue.watch`).

    Without a callback, iterate over it (``for entry in watcher``) or call
    :meth:`updates`: each :class:`Entry` comes in order, and ``None`` once, marking the
    end of the initial values (the latest entry of every matching key, deletes and
    purges included).  Iteration ends after :meth:`stop` or when the connection closes.
    Dropping the last reference to a callback-less watcher stops it; a callback watcher
    runs until :meth:`stop` or until its connection closes.
    """

    def __init__(self, kv: "KeyValue", st: _WatchState, keys: str, mode: str) -> None:
        self._kv = kv
        self._st = st
        self.keys = keys
        self.mode = mode

    @property
    def has_callback(self) -> bool:
        return self._st.cb is not None

    @property
    def is_running(self) -> bool:
        return self._st.ptr is not None

    def updates(self, timeout: Optional[float] = 1.0) -> Optional[Entry]:
        """The next entry (or None: the end-of-initial-values marker), waiting up to
        ``timeout`` seconds (None: forever).  Raises :class:`ember.TimeoutError`, or
        :class:`ember.ClosedError` once stopped and everything queued was read."""
        q = self._st.q
        if q is None:
            raise TypeError("watcher has a callback")
        try:
            if timeout is None:
                item = q.get()
            else:
                item = q.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError(f"no key-value update within {timeout} s") from None
        if item is _END:
            q.put(_END)  # later calls end too
            raise ClosedError("watcher stopped")
        return item

    def __iter__(self) -> Iterator[Optional[Entry]]:
        return self

    def __next__(self) -> Optional[Entry]:
        try:
            return self.updates(None)
        except ClosedError:
            raise StopIteration from None

    def stop(self) -> None:
        """Stop watching (idempotent; also from the watch's own callback).  Entries
        already queued can still be read."""
        core = self._st.core
        try:
            core.enter()
        except ClosedError:
            return  # closing: the connection stops its watches
        try:
            stop_watch(core, self._st)
        finally:
            core.leave()

    def __enter__(self) -> "KeyWatcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:
        st = getattr(self, "_st", None)
        if st is not None and st.cb is None and st.ptr is not None:
            try:
                self.stop()
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<ember.KeyWatcher {self._kv.bucket!r} {self.keys!r} {state}>"


# ------------------------------------------------------------------ KeyValue


class KeyValue:
    """A key-value bucket (:meth:`ember.JetStream.create_key_value` or
    :meth:`ember.JetStream.key_value`).  Thread-safe.

    Keys are letters, digits and ``-/_=.``, not starting or ending with ``.``; an
    invalid key raises :class:`ember.InvalidArgumentError`.  Values are bytes (a
    ``str`` is UTF-8 encoded).  Writes are durable when they return
    (:meth:`put_async` when its Future completes).
    """

    def __init__(self, conn: "Connection", ptr: Any, bucket: str) -> None:
        self._conn = conn
        self._core = conn._core
        self._ptr = ptr
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False
        self.bucket = bucket

    @property
    def connection(self) -> "Connection":
        return self._conn

    # Every call holds the handle (_acquire/_release): close() frees it at once when no
    # call is running, else the last running call frees it.
    def _acquire(self) -> Any:
        with self._lock:
            ptr = self._ptr
            if ptr is None or self._closed:
                raise ClosedError("key-value handle closed")
            self._users += 1
            return ptr

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            ptr = self._ptr if self._closed and self._users == 0 else None
            if ptr is not None:
                self._ptr = None
        if ptr is not None:
            lib.ember_kv_close(ptr)

    def _call(self, fn: Any, *args: Any) -> int:
        core = self._core
        core.enter()
        try:
            ptr = self._acquire()
            try:
                rc = fn(ptr, *args)
                err = error_for(rc) if rc < 0 else None
            finally:
                self._release()
        finally:
            core.leave()
        if err is not None:
            raise err
        return rc

    # ---------------------------------------------------------------- reads
    def get(self, key: str, revision: Optional[int] = None) -> Entry:
        """The latest value of ``key`` (or its entry at ``revision``).  Raises
        :class:`ember.NotFoundError` when the key has no value (never set, deleted or
        purged), or when ``revision`` is not one of this key's."""
        out = ffi.new("ember_kv_entry **")
        kb = subj(key, "key")
        if revision is None:
            self._call(lib.ember_kv_get, kb, out)
        else:
            if revision < 0:
                raise InvalidArgumentError("revision must be >= 0")
            self._call(lib.ember_kv_get_revision, kb, int(revision), out)
        e = out[0]
        try:
            return _entry(e)
        finally:
            lib.ember_kv_entry_free(e)

    def keys(self) -> List[str]:
        """The keys that have a value, sorted ([] for an empty bucket)."""
        out = ffi.new("char ***")
        n = ffi.new("size_t *")
        self._call(lib.ember_kv_keys, out, n)
        arr = out[0]
        try:
            return [ffi.string(arr[i]).decode("utf-8", "replace") for i in range(n[0])]
        finally:
            lib.emberpy_free(arr)

    def history(self, key: str) -> List[Entry]:
        """Every kept entry of ``key``, oldest first, delete and purge markers
        included.  Raises :class:`ember.NotFoundError` when there is none."""
        out = ffi.new("ember_kv_entry ***")
        n = ffi.new("size_t *")
        self._call(lib.ember_kv_history, subj(key, "key"), out, n)
        arr, cnt = out[0], n[0]
        try:
            return [_entry(arr[i]) for i in range(cnt)]
        finally:
            lib.ember_kv_entries_free(arr, cnt)

    # ---------------------------------------------------------------- writes
    def put(self, key: str, value: Optional[BytesLike]) -> int:
        """Write a value; returns its revision."""
        d, n = payload(value)
        rev = ffi.new("uint64_t *")
        self._call(lib.emberpy_kv_put, subj(key, "key"), d, n, rev)
        return int(rev[0])

    def put_async(self, key: str, value: Optional[BytesLike]
                  ) -> "concurrent.futures.Future[int]":
        """Like :meth:`put` without waiting for the store: the value is in the bucket
        when this returns, and the :class:`concurrent.futures.Future` completes with
        its revision (or the typed error) once it is durable.  Puts in flight share
        one fsync (group commit), so this is the fast way to write many keys::

            futs = [kv.put_async(f"player.{i}", b"...") for i in range(1000)]
            revs = [f.result() for f in futs]

        The Future completes on the binding's ``ember-js-acks`` thread.  Errors found
        before anything was written (invalid key, closed handle, deleted bucket)
        raise here instead."""
        d, n = payload(value)
        k = subj(key, "key")
        return submit_async(
            lambda token: self._call(lib.emberpy_kv_put_async, k, d, n, token),
            lambda seq, dup: seq)

    def create(self, key: str, value: Optional[BytesLike]) -> int:
        """Write only if ``key`` has no value (never set, deleted or purged); returns
        the revision.  Raises :class:`ember.WrongSequenceError` when it has one."""
        d, n = payload(value)
        rev = ffi.new("uint64_t *")
        self._call(lib.emberpy_kv_create, subj(key, "key"), d, n, rev)
        return int(rev[0])

    def update(self, key: str, value: Optional[BytesLike], last: int) -> int:
        """Write only if ``key``'s latest revision is ``last`` (compare-and-set);
        returns the new revision.  Raises :class:`ember.WrongSequenceError` if not."""
        d, n = payload(value)
        rev = ffi.new("uint64_t *")
        if last < 0:
            raise InvalidArgumentError("last must be >= 0")
        self._call(lib.emberpy_kv_update, subj(key, "key"), d, n, int(last), rev)
        return int(rev[0])

    def delete(self, key: str) -> None:
        """Delete ``key``: a DEL marker (its history is kept)."""
        self._call(lib.emberpy_kv_delete, subj(key, "key"))

    def purge(self, key: str) -> None:
        """Purge ``key``: a PURGE marker that replaces its history."""
        self._call(lib.emberpy_kv_purge, subj(key, "key"))

    # ---------------------------------------------------------------- watch
    def watch(self, keys: str = ">", cb: Optional[WatchCallback] = None,
              mode: str = "dispatch") -> KeyWatcher:
        """Watch the keys matching ``keys`` (a key, or a filter such as ``"cfg.*"`` or
        ``">"``): first the latest entry of every matching key (deletes and purges
        included), then ``None`` once (end of the initial values), then every change as
        it happens.

        With ``cb``, ``cb(entry_or_None)`` runs on the connection's dispatcher thread
        (``mode="dispatch"``, the default) or inside :meth:`ember.Connection.poll`
        (``mode="poll"``); exceptions go to the connection's ``error_cb`` or
        :func:`sys.unraisablehook`.  Without ``cb``, read the returned
        :class:`KeyWatcher` by iterating over it or with :meth:`KeyWatcher.updates`.
        Stop with :meth:`KeyWatcher.stop` (or ``with kv.watch(...) as w:``).
        """
        modes = {"dispatch": lib.EMBER_DELIVER_DISPATCH, "poll": lib.EMBER_DELIVER_POLL}
        if mode not in modes:
            raise InvalidArgumentError(f"invalid watch mode {mode!r} "
                                       "(expected 'dispatch' or 'poll')")
        if cb is not None and not callable(cb):
            raise InvalidArgumentError("cb must be callable")
        kb = subj(keys, "keys")
        core = self._core
        st = _WatchState(cb, core)
        out = ffi.new("ember_kv_watcher **")
        core.enter()
        try:
            ptr = self._acquire()
            try:
                h = new_handle(st)
                rc = lib.emberpy_kv_watch(ptr, kb, modes[mode], h, out)
                err = error_for(rc) if rc else None
            finally:
                self._release()
            if err is not None:
                reap()  # the library released the handle
                raise err
            with core.lock:
                st.ptr = out[0]
                core.watchers.add(st)
        finally:
            core.leave()
        return KeyWatcher(self, st, keys, mode)

    # ---------------------------------------------------------------- misc
    def status(self) -> StreamInfo:
        """The state of the bucket's stream ``KV_<bucket>`` (``msgs`` counts every
        kept entry, markers included)."""
        from .jetstream import JetStream
        return JetStream(self._conn).stream_info("KV_" + self.bucket)

    def close(self) -> None:
        """Free the handle (the bucket stays).  Idempotent; running watches go on.
        Calls running on other threads finish first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ptr = self._ptr if self._users == 0 else None
            if ptr is not None:
                self._ptr = None
        if ptr is not None:
            lib.ember_kv_close(ptr)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "KeyValue":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:
            self._ptr = None
            try:
                lib.ember_kv_close(ptr)
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        return f"<ember.KeyValue {self.bucket!r}>"

