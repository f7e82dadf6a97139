"""In-process connections and subscriptions."""
from __future__ import annotations

import threading
from typing import (TYPE_CHECKING, Any, Callable, Iterator, List, NamedTuple, Optional,
                    Set, Tuple)

from ._core import (NULL, BytesLike, HeaderInput, Msg, build_msg, msg_from_ptr, new_handle,
                    payload, reap, report_exception, subj, to_ms)
from ._ember import ffi, lib
from .errors import ClosedError, InvalidArgumentError, StateError, TimeoutError, error_for

if TYPE_CHECKING:  # pragma: no cover
    from .jetstream import JetStream
    from .server import Server, _ServerCore

__all__ = ["Connection", "Subscription", "ConnectionStats", "SubscriptionStats", "MODES"]

#: Delivery modes accepted by :meth:`Connection.subscribe`.
MODES = {
    "dispatch": lib.EMBER_DELIVER_DISPATCH,
    "poll": lib.EMBER_DELIVER_POLL,
    "inline": lib.EMBER_DELIVER_INLINE,
}
_MODE_NAMES = {v: k for k, v in MODES.items()}
_ETIMEDOUT = lib.EMBER_ETIMEDOUT

# Blocking waits with no timeout are done in slices so that Ctrl-C (handled by Python
# between C calls) can interrupt them.
_SLICE_MS = 250


class ConnectionStats(NamedTuple):
    in_msgs: int     #: messages delivered to this connection
    in_bytes: int
    out_msgs: int    #: messages published by this connection
    out_bytes: int
    dropped: int     #: messages dropped by pending limits


class SubscriptionStats(NamedTuple):
    delivered: int       #: messages handed to the host
    pending_msgs: int
    pending_bytes: int
    dropped: int


MsgCallback = Callable[[Msg], Any]


class _SubState:
    """What a callback subscription's C userdata handle points to."""

    __slots__ = ("cb", "core", "closed", "sub_ref")

    def __init__(self, cb: MsgCallback, core: "_ConnCore") -> None:
        self.cb = cb
        self.core = core
        self.closed = False
        self.sub_ref: Any = None

    def __repr__(self) -> str:
        return f"<ember subscription callback {self.cb!r}>"


def _run_callback(st: _SubState, cmsg: Any) -> None:
    if st.closed:
        return
    try:
        msg = msg_from_ptr(cmsg, st.core)
        st.cb(msg)
    except BaseException as e:  # reported, never swallowed silently
        st.core.report(e, st)


@ffi.def_extern()
def _emberpy_on_msg(ud: Any, csub: Any, cmsg: Any) -> None:
    """C calls this for DISPATCH (dispatcher thread), POLL (inside ember_conn_poll) and
    INLINE (the publishing Python thread) subscriptions; cffi takes the GIL."""
    _run_callback(ffi.from_handle(ud), cmsg)


def _pump_main(core: "_ConnCore", fq: Any) -> None:
    """Binding-owned thread: runs INLINE callbacks for messages published by threads
    that are not Python's (TCP clients on the broker's event loop)."""
    hp = ffi.new("void **")
    mp = ffi.new("ember_msg **")
    while True:
        rc = lib.emberpy_fq_pop(fq, -1, hp, mp)
        if rc < 0:
            break
        if rc == 0:
            continue
        try:
            _run_callback(ffi.from_handle(hp[0]), mp[0])
        finally:
            lib.ember_msg_release(mp[0])
    if core.pump_frees_fq:
        lib.emberpy_fq_free(fq)


class _ConnCore:
    """Owns the ember_conn pointer and guards it: every call registers itself in
    ``active`` and the pointer is closed only when no call is running, so closing from
    one thread while another is inside a call can never free memory under it."""

    __slots__ = ("ptr", "server", "active", "closing", "done", "lock", "fq", "pump",
                 "pump_frees_fq", "error_cb", "limits", "poll_lock", "watchers",
                 "obj_writers", "__weakref__")

    def __init__(self, ptr: Any, server: "_ServerCore", error_cb: Optional[Callable],
                 limits: Tuple[int, int]) -> None:
        self.ptr = ptr
        self.server = server
        self.active: List[None] = []
        self.closing = False
        self.done = False
        self.lock = threading.RLock()  # re-entrant: a finalizer run by the GC may close
        self.fq: Any = None
        self.pump: Optional[threading.Thread] = None
        self.pump_frees_fq = False
        self.error_cb = error_cb
        self.limits = limits
        self.poll_lock = threading.Lock()  # ember_conn_poll: one thread at a time
        self.watchers: Set[Any] = set()    # running key-value watches (kv._WatchState)
        self.obj_writers: Set[Any] = set() # open object-store writers (obj.ObjectWriter)

    # -- guard
    def enter(self) -> None:
        self.active.append(None)
        if self.closing:
            self.leave()
            raise ClosedError("connection closed")

    def leave(self) -> None:
        act = self.active
        act.pop()
        if self.closing and not act:
            self.finish()

    def close(self) -> None:
        self.active.append(None)
        try:
            with self.lock:
                if self.closing:
                    return
                self.closing = True
            if len(self.active) > 1:
                # other threads are inside calls: wake them (request, next_msg, poll
                # return ECLOSED); the last one to leave completes the close
                lib.ember_conn_drain(self.ptr, 0)
        finally:
            self.leave()

    def finish(self) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            fq, pump = self.fq, self.pump
        me = threading.current_thread()
        # key-value watches hold a subscription of this connection: stop them while the
        # connection's pointer is still valid (ember_conn_close frees its subscriptions)
        if self.watchers:
            from .kv import stop_watch
            for st in list(self.watchers):
                stop_watch(self, st)
        # open object-store writers use the connection too: abort them (purging what
        # they stored) while it is still valid
        for w in list(self.obj_writers):
            w._conn_closing()
        if fq is not None:
            lib.emberpy_fq_close(fq)
            if pump is not None and pump is not me:
                pump.join()
        lib.ember_conn_close(self.ptr)
        reap()
        if fq is not None:
            if pump is me:
                self.pump_frees_fq = True  # the pump thread frees it when it exits
            else:
                lib.emberpy_fq_free(fq)
        self.server.conn_done(self)

    # -- inline delivery from foreign threads
    def ensure_pump(self) -> None:
        with self.lock:
            if self.fq is not None:
                return
            fq = lib.emberpy_fq_new(self.limits[0] if self.limits[0] > 0 else 0)
            if fq == NULL:
                raise MemoryError("cannot allocate the inline delivery queue")
            self.fq = fq
            t = threading.Thread(target=_pump_main, args=(self, fq), daemon=True,
                                 name="ember-inline")
            self.pump = t
        t.start()

    def report(self, exc: BaseException, obj: Any) -> None:
        cb = self.error_cb
        if cb is not None:
            try:
                cb(exc)
                return
            except BaseException as e2:  # the error callback failed too
                report_exception(e2, cb, "ember error callback")
        report_exception(exc, obj)

    # -- publish (shared by Connection.publish and Msg.respond)
    def publish(self, subject: bytes, data: Optional[BytesLike], reply: Optional[bytes],
                headers: Optional[HeaderInput]) -> None:
        d, n = payload(data)
        act = self.active
        act.append(None)
        try:
            if self.closing:
                raise ClosedError("connection closed")
            if headers is None:
                rc = lib.emberpy_publish(self.ptr, subject, reply if reply else NULL, d, n)
            else:
                m = build_msg(subject, reply, d, n, headers)
                rc = lib.emberpy_publish_msg(self.ptr, m)
                err = error_for(rc) if rc else None
                lib.ember_msg_release(m)
                if err is not None:
                    raise err
            if rc:
                raise error_for(rc)
        finally:
            act.pop()
            if self.closing and not act:
                self.finish()


class Connection:
    """An in-process connection to an embedded :class:`ember.Server`: no socket, no
    protocol; publishing is a function call into the broker.

    Create one with :meth:`ember.Server.connect`.  Use it as a context manager, or call
    :meth:`close`.  All methods are thread-safe.  Connections keep their server alive.
    """

    __slots__ = ("_core", "_server", "name", "__weakref__")

    def __init__(self, server: "Server", core: _ConnCore, name: Optional[str]) -> None:
        self._server = server
        self._core = core
        self.name = name

    # ---------------------------------------------------------------- publishing
    def publish(self, subject: str, data: Optional[BytesLike] = b"",
                reply: Optional[str] = None, headers: Optional[HeaderInput] = None) -> None:
        """Publish ``data`` (bytes-like; str is UTF-8 encoded) to ``subject``.

        ``reply`` sets the reply subject; ``headers`` (a :class:`Headers` or a mapping
        whose values are a string or a list of strings) adds NATS headers.  INLINE
        subscribers run before this returns.  Raises :class:`MaxPayloadError`,
        :class:`InvalidArgumentError` (bad subject), :class:`ClosedError`.
        """
        core = self._core
        if type(subject) is str and type(data) is bytes and reply is None and headers is None \
                and "\0" not in subject:
            # the common case, inlined: str subject, bytes payload
            act = core.active
            act.append(None)
            try:
                if core.closing:
                    raise ClosedError("connection closed")
                rc = lib.emberpy_publish(core.ptr, subject.encode(), NULL, data, len(data))
                err = error_for(rc) if rc else None
            finally:
                act.pop()
                if core.closing and not act:
                    core.finish()
            if err is not None:
                raise err
            return
        core.publish(subj(subject), data, subj(reply, "reply") if reply else None, headers)

    def request(self, subject: str, data: Optional[BytesLike] = b"",
                timeout: Optional[float] = 1.0,
                headers: Optional[HeaderInput] = None) -> Msg:
        """Send a request and wait up to ``timeout`` seconds (None: forever) for the first
        reply.  Raises :class:`NoRespondersError` when nobody subscribes to ``subject``,
        :class:`TimeoutError` when no reply came in time."""
        core = self._core
        s = subj(subject)
        d, n = payload(data)
        ms = to_ms(timeout)
        out = ffi.new("ember_msg **")
        act = core.active
        act.append(None)
        try:
            if core.closing:
                raise ClosedError("connection closed")
            if headers is None:
                rc = lib.emberpy_request(core.ptr, s, d, n, ms, out)
            else:
                m = build_msg(s, None, d, n, headers)
                rc = lib.emberpy_request_msg(core.ptr, m, ms, out)
                if rc:
                    err = error_for(rc)
                lib.ember_msg_release(m)
                if rc:
                    raise err
            if rc:
                raise error_for(rc)
        finally:
            act.pop()
            if core.closing and not act:
                core.finish()
        p = out[0]
        try:
            return msg_from_ptr(p, core)
        finally:
            lib.ember_msg_release(p)

    # ---------------------------------------------------------------- subscribing
    def subscribe(self, subject: str, queue: Optional[str] = None,
                  cb: Optional[MsgCallback] = None, mode: str = "dispatch",
                  pending_limits: Optional[Tuple[int, int]] = None) -> "Subscription":
        """Subscribe to ``subject`` (wildcards ``*`` and ``>`` allowed), optionally in
        queue group ``queue``.

        With ``cb``, each message is passed to ``cb(msg)``; ``mode`` says where it runs:

        * ``"dispatch"`` (default): on the connection's dispatcher thread, owned by the
          library, one message at a time;
        * ``"poll"``: inside :meth:`poll` on the thread that calls it (see also
          :mod:`ember.aio`);
        * ``"inline"``: in the publisher's thread during its :meth:`publish` call when
          the publisher is Python code on an in-process connection (the fastest path);
          messages from TCP clients or other non-Python threads run on a thread owned by
          the binding instead, so the broker never waits for the GIL.

        Without ``cb`` (modes "dispatch" or "poll"), read messages with
        :meth:`Subscription.next_msg` or by iterating over the subscription.

        Exceptions raised by ``cb`` go to the connection's ``error_cb`` if set, else to
        :func:`sys.unraisablehook` (printed with a traceback).
        """
        if mode not in MODES:
            raise InvalidArgumentError(
                f"invalid delivery mode {mode!r} (expected 'dispatch', 'poll' or 'inline')")
        if cb is not None and not callable(cb):
            raise InvalidArgumentError("cb must be callable")
        m = MODES[mode]
        core = self._core
        s = subj(subject)
        q = subj(queue, "queue") if queue else NULL
        core.enter()
        try:
            st: Optional[_SubState] = None
            h = NULL
            if cb is not None:
                st = _SubState(cb, core)
                if m == lib.EMBER_DELIVER_INLINE:
                    core.ensure_pump()
                h = new_handle(st)
            out = ffi.new("ember_sub **")
            rc = lib.emberpy_subscribe(out, core.ptr, s, q, m, 1 if cb is not None else 0, h,
                                       core.fq if core.fq is not None else NULL)
            if rc:
                err = error_for(rc)
                reap()
                raise err
            sub = Subscription(self, out[0], st, subject, queue, mode)
            if pending_limits is not None:
                sub.pending_limits = pending_limits
            return sub
        finally:
            core.leave()

    # ---------------------------------------------------------------- JetStream
    def jetstream(self) -> "JetStream":
        """The server's JetStream through this connection: streams, publish with
        acknowledgement, consumers and key-value buckets (:class:`ember.JetStream`).
        The server needs ``jetstream=True``; otherwise its calls raise
        :class:`StateError`."""
        from .jetstream import JetStream
        return JetStream(self)

    # ---------------------------------------------------------------- host-driven delivery
    def poll(self, timeout: Optional[float] = 0) -> int:
        """Run pending "poll"-mode callbacks on this thread, waiting up to ``timeout``
        seconds (0: don't wait, None: until at least one) for the first.  Returns the
        number of callbacks run.  Only one thread may poll a connection at a time
        (another raises :class:`StateError`); a callback must not call poll itself."""
        core = self._core
        ms = to_ms(timeout)
        if not core.poll_lock.acquire(blocking=False):
            raise StateError("another thread is polling this connection")
        try:
            while True:
                step = _SLICE_MS if ms < 0 else ms
                core.enter()
                try:
                    rc = lib.emberpy_poll(core.ptr, step)
                    if rc < 0:
                        raise error_for(rc)
                finally:
                    core.leave()
                if rc > 0 or ms >= 0:
                    return rc
        finally:
            core.poll_lock.release()

    def fileno(self) -> int:
        """A file descriptor that is readable while "poll"-mode messages are pending
        (or once the connection closed): for select/selectors/asyncio.  Call
        :meth:`poll` when it is readable."""
        core = self._core
        core.enter()
        try:
            fd = lib.ember_conn_fd(core.ptr)
        finally:
            core.leave()
        if fd < 0:
            raise error_for(lib.EMBER_EINVAL)
        return fd

    # ---------------------------------------------------------------- lifecycle
    def flush(self, timeout: Optional[float] = 1.0) -> None:
        """Wait until everything published so far was handed to its subscribers'
        queues (in-process publishing is synchronous: returns at once unless closed)."""
        core = self._core
        core.enter()
        try:
            rc = lib.ember_conn_flush(core.ptr, to_ms(timeout))
            if rc:
                raise error_for(rc)
        finally:
            core.leave()

    def drain(self, timeout: Optional[float] = 5.0) -> None:
        """Unsubscribe everything, let the dispatcher deliver what is queued (up to
        ``timeout`` seconds), then close.  Raises :class:`TimeoutError` if messages were
        still queued at the deadline (the connection is closed anyway)."""
        core = self._core
        core.enter()
        try:
            rc = lib.ember_conn_drain(core.ptr, to_ms(timeout))
            err = error_for(rc) if rc else None
        finally:
            core.leave()
        core.close()
        if err is not None and not isinstance(err, ClosedError):
            raise err

    def close(self) -> None:
        """Close: unsubscribe all, stop the dispatcher (waiting for a running callback
        unless called from it) and free the connection.  Idempotent.  If other threads
        are inside calls on this connection, they are woken (their calls raise
        :class:`ClosedError`) and the last of them completes the close."""
        self._core.close()

    @property
    def is_closed(self) -> bool:
        """True once closed, drained, or when its server shut down."""
        core = self._core
        if core.closing:
            return True
        try:
            core.enter()
        except ClosedError:
            return True
        try:
            return bool(lib.ember_conn_is_closed(core.ptr))
        finally:
            core.leave()

    def stats(self) -> ConnectionStats:
        """Message and byte counters of this connection."""
        core = self._core
        st = ffi.new("ember_conn_stats *")
        core.enter()
        try:
            lib.ember_conn_get_stats(core.ptr, st)
        finally:
            core.leave()
        return ConnectionStats(st.in_msgs, st.in_bytes, st.out_msgs, st.out_bytes, st.dropped)

    @property
    def server(self) -> "Server":
        return self._server

    def new_inbox(self) -> str:
        """A unique inbox subject (``_INBOX.<random>``)."""
        import secrets
        return "_INBOX." + secrets.token_hex(11)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and not core.closing:
            try:
                core.close()
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        state = "closed" if self._core.closing else "open"
        name = f" {self.name!r}" if self.name else ""
        return f"<ember.Connection{name} {state}>"


class Subscription:
    """A subscription of an in-process :class:`Connection`.

    Callback-less subscriptions are read with :meth:`next_msg` or by iteration
    (``for msg in sub``), which ends when the subscription or connection closes.
    Dropping the last reference to a callback-less subscription unsubscribes it;
    callback subscriptions live until :meth:`unsubscribe` or the connection closes.
    """

    __slots__ = ("_conn", "_core", "_ptr", "_state", "subject", "queue", "mode", "_limits",
                 "_unsubscribed", "__weakref__")

    def __init__(self, conn: Connection, ptr: Any, state: Optional[_SubState], subject: str,
                 queue: Optional[str], mode: str) -> None:
        self._conn = conn
        self._core = conn._core
        self._ptr = ptr
        self._state = state
        self.subject = subject
        self.queue = queue
        self.mode = mode
        self._limits = conn._core.limits
        self._unsubscribed = False

    @property
    def connection(self) -> Connection:
        return self._conn

    @property
    def has_callback(self) -> bool:
        return self._state is not None

    def next_msg(self, timeout: Optional[float] = 1.0) -> Msg:
        """The next message of a callback-less subscription, waiting up to ``timeout``
        seconds (None: forever).  Raises :class:`TimeoutError`, :class:`ClosedError`
        (unsubscribed, or connection closed, and nothing left), or
        :class:`SlowConsumerError` once after messages were dropped."""
        core = self._core
        ms = to_ms(timeout)
        out = ffi.new("ember_msg **")
        ptr = self._ptr
        while True:
            step = _SLICE_MS if ms < 0 else ms
            core.enter()
            try:
                # After an auto-unsubscribe the library leaves the queue open (next_msg
                # would time out instead of reporting ECLOSED): once the subscription is
                # no longer valid, take what is queued without waiting, then report closed.
                if step != 0 and not lib.ember_sub_is_valid(ptr):
                    step = 0
                rc = lib.ember_sub_next_msg(ptr, out, step)
                if rc == _ETIMEDOUT and not lib.ember_sub_is_valid(ptr):
                    err: Optional[Exception] = ClosedError("subscription closed")
                else:
                    err = error_for(rc) if rc else None
            finally:
                core.leave()
            if rc == 0:
                break
            if ms < 0 and isinstance(err, TimeoutError):
                continue
            raise err  # type: ignore[misc]
        p = out[0]
        try:
            return msg_from_ptr(p, core)
        finally:
            lib.ember_msg_release(p)

    def __iter__(self) -> Iterator[Msg]:
        return self

    def __next__(self) -> Msg:
        try:
            return self.next_msg(None)
        except ClosedError:
            raise StopIteration from None

    def unsubscribe(self) -> None:
        """Stop receiving; messages already queued are discarded.  Idempotent; a no-op
        once the connection is closed."""
        if self._state is not None:
            self._state.closed = True
        self._unsubscribed = True
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return
        try:
            rc = lib.ember_sub_unsubscribe(self._ptr)
            if rc:
                raise error_for(rc)
        finally:
            core.leave()

    def auto_unsubscribe(self, max_msgs: int) -> None:
        """Unsubscribe automatically once ``max_msgs`` messages in total were delivered."""
        core = self._core
        core.enter()
        try:
            rc = lib.ember_sub_auto_unsubscribe(self._ptr, int(max_msgs))
            if rc:
                raise error_for(rc)
        finally:
            core.leave()

    @property
    def pending_limits(self) -> Tuple[int, int]:
        """(messages, bytes) that may wait for this subscription before new messages are
        dropped (slow consumer); a negative value means unlimited."""
        return self._limits

    @pending_limits.setter
    def pending_limits(self, limits: Tuple[int, int]) -> None:
        msgs, nbytes = limits
        core = self._core
        core.enter()
        try:
            rc = lib.ember_sub_set_pending_limits(self._ptr, int(msgs), int(nbytes))
            if rc:
                raise error_for(rc)
        finally:
            core.leave()
        self._limits = (int(msgs), int(nbytes))

    def stats(self) -> SubscriptionStats:
        core = self._core
        st = ffi.new("ember_sub_stats *")
        core.enter()
        try:
            lib.ember_sub_get_stats(self._ptr, st)
        finally:
            core.leave()
        return SubscriptionStats(st.delivered, st.pending_msgs, st.pending_bytes, st.dropped)

    @property
    def delivered(self) -> int:
        return self.stats().delivered

    @property
    def pending(self) -> int:
        return self.stats().pending_msgs

    @property
    def dropped(self) -> int:
        return self.stats().dropped

    @property
    def is_valid(self) -> bool:
        """False once unsubscribed (also automatically) or the connection closed."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return False
        try:
            return bool(lib.ember_sub_is_valid(self._ptr))
        finally:
            core.leave()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unsubscribe()

    def __del__(self) -> None:
        # nobody can read a callback-less subscription any more: stop queueing for it
        if getattr(self, "_state", 1) is None and not self._unsubscribed:
            try:
                self.unsubscribe()
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        q = f" queue={self.queue!r}" if self.queue else ""
        return f"<ember.Subscription {self.subject!r}{q} mode={self.mode}>"
