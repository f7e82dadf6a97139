"""asyncio integration.

An :class:`ember.aio.Connection` wraps an in-process :class:`ember.Connection` and
registers its pollable file descriptor (``Connection.fileno()``) with the event loop
(``loop.add_reader``).  Its subscriptions use "poll" delivery, so every message is
handed over on the loop's own thread, inside the loop's reader callback: no lock, no
thread hop, and the GIL is never entered from a thread asyncio does not know::

    import asyncio, ember, ember.aio

    async def main():
        with ember.Server(dont_listen=True) as srv:
            async with await ember.aio.connect(srv) as nc:
                async def hello(msg):
                    msg.respond(b"hello there")
                await nc.subscribe("hello.world", cb=hello)
                print((await nc.request("hello.world", b"hi")).data)

                sub = await nc.subscribe("events.>")
                nc.publish("events.1", b"x")
                async for msg in sub:
                    print(msg.subject, msg.data)
                    break

    asyncio.run(main())

:meth:`Connection.request` waits on a worker thread of the loop's default executor (the
C request call blocks), so that it keeps the library's exact semantics (no-responders
detection, one shared reply inbox) while the loop stays free.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from typing import Any, Awaitable, Callable, Optional, Set, Tuple, Union

from . import connection as _conn_mod
from ._core import BytesLike, HeaderInput, Msg, report_exception
from .errors import ClosedError, SlowConsumerError, TimeoutError

__all__ = ["connect", "Connection", "Subscription"]

_END = object()

AsyncMsgCallback = Callable[[Msg], Union[None, Awaitable[Any]]]


async def connect(server: Any, **kwargs: Any) -> "Connection":
    """Open an in-process connection to ``server`` (an :class:`ember.Server`) bound to
    the running event loop.  Keyword arguments go to :meth:`ember.Server.connect`."""
    return Connection(server.connect(**kwargs))


class Subscription:
    """A subscription serviced by the event loop: ``async for msg in sub``,
    ``await sub.next_msg(timeout)``, or a callback (plain or ``async def``)."""

    def __init__(self, aconn: "Connection", subject: str, queue: Optional[str],
                 cb: Optional[AsyncMsgCallback],
                 pending_limits: Optional[Tuple[int, int]]) -> None:
        self._aconn = aconn
        self._cb = cb
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self._ended = False
        self._py_dropped = 0  # dropped here: the loop's queue was full
        self._reported = 0
        self.subject = subject
        self.queue = queue
        ref = weakref.ref(self)

        def on_msg(msg: Msg) -> None:  # in the loop thread, inside Connection.poll()
            s = ref()
            if s is not None:
                s._deliver(msg)

        self._sub = aconn._conn.subscribe(subject, queue, cb=on_msg, mode="poll",
                                          pending_limits=pending_limits)
        self._limit = self._sub.pending_limits[0]

    def _deliver(self, msg: Msg) -> None:
        if self._ended:
            return
        cb = self._cb
        if cb is not None:
            r = cb(msg)
            if inspect.isawaitable(r):
                self._aconn._spawn(r)
            return
        if 0 < self._limit <= self._queue.qsize():
            self._py_dropped += 1
            return
        self._queue.put_nowait(msg)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_END)

    async def next_msg(self, timeout: Optional[float] = 1.0) -> Msg:
        """The next message (callback-less subscriptions), waiting up to ``timeout``
        seconds (None: forever).  Raises :class:`ember.TimeoutError`,
        :class:`ember.ClosedError` once unsubscribed or closed and empty, or
        :class:`ember.SlowConsumerError` once after messages were dropped."""
        if self._cb is not None:
            raise TypeError("subscription has a callback")
        dropped = self.dropped
        if dropped > self._reported:
            self._reported = dropped
            raise SlowConsumerError(f"slow consumer: {dropped} messages dropped")
        if not self._queue.empty():
            item = self._queue.get_nowait()
        else:
            try:
                if timeout is None:
                    item = await self._queue.get()
                else:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no message within {timeout} s") from None
        if item is _END:
            self._queue.put_nowait(_END)  # later calls end too
            raise ClosedError("subscription closed")
        return item

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Msg:
        try:
            return await self.next_msg(None)
        except ClosedError:
            raise StopAsyncIteration from None

    def unsubscribe(self) -> None:
        """Stop receiving; an ``async for`` over it ends after the queued messages."""
        self._sub.unsubscribe()
        self._aconn._subs.discard(self)
        self._end()

    def auto_unsubscribe(self, max_msgs: int) -> None:
        self._sub.auto_unsubscribe(max_msgs)

    @property
    def pending_limits(self) -> Tuple[int, int]:
        return self._sub.pending_limits

    @pending_limits.setter
    def pending_limits(self, limits: Tuple[int, int]) -> None:
        self._sub.pending_limits = limits
        self._limit = int(limits[0])

    @property
    def dropped(self) -> int:
        """Messages dropped by pending limits (in the library's queue or this one)."""
        try:
            lib_dropped = self._sub.dropped
        except ClosedError:
            lib_dropped = self._lib_dropped_last
        self._lib_dropped_last = lib_dropped
        return lib_dropped + self._py_dropped

    _lib_dropped_last = 0

    @property
    def pending(self) -> int:
        """Messages received and not yet read."""
        return self._queue.qsize() - (1 if self._ended else 0)

    def __repr__(self) -> str:
        return f"<ember.aio.Subscription {self.subject!r}>"


class Connection:
    """An in-process connection whose deliveries run on the asyncio event loop."""

    def __init__(self, conn: "_conn_mod.Connection",
                 loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self._conn = conn
        self._loop = loop or asyncio.get_running_loop()
        self._subs: Set[Subscription] = set()
        self._tasks: Set["asyncio.Future[Any]"] = set()
        self._fd = conn.fileno()
        self._reading = True
        self._loop.add_reader(self._fd, self._on_readable)

    @property
    def connection(self) -> "_conn_mod.Connection":
        """The underlying synchronous :class:`ember.Connection`."""
        return self._conn

    # ---------------------------------------------------------------- loop side
    def _on_readable(self) -> None:
        try:
            self._conn.poll(0)
        except ClosedError:
            self._detach()
        except BaseException as e:  # pragma: no cover - poll itself failed
            report_exception(e, self, "ember.aio reader")

    def _detach(self) -> None:
        if self._reading:
            self._reading = False
            try:
                self._loop.remove_reader(self._fd)
            except Exception:  # pragma: no cover - loop already closed
                pass
        for s in list(self._subs):
            s._end()
        self._subs.clear()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Future[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._conn._core.report(task.exception(), task)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- API
    def publish(self, subject: str, data: Optional[BytesLike] = b"",
                reply: Optional[str] = None, headers: Optional[HeaderInput] = None) -> None:
        """Publish (never blocks: in-process publishing is a function call)."""
        self._conn.publish(subject, data, reply, headers)

    async def subscribe(self, subject: str, queue: Optional[str] = None,
                        cb: Optional[AsyncMsgCallback] = None,
                        pending_limits: Optional[Tuple[int, int]] = None) -> Subscription:
        """Subscribe; ``cb`` may be a plain function or a coroutine function (each
        message then becomes a task).  Without ``cb``, iterate with ``async for``."""
        sub = Subscription(self, subject, queue, cb, pending_limits)
        self._subs.add(sub)
        return sub

    async def request(self, subject: str, data: Optional[BytesLike] = b"",
                      timeout: Optional[float] = 1.0,
                      headers: Optional[HeaderInput] = None) -> Msg:
        """Request/reply without blocking the loop.  Raises
        :class:`ember.NoRespondersError`, :class:`ember.TimeoutError`."""
        fn = functools.partial(self._conn.request, subject, data, timeout, headers)
        return await self._loop.run_in_executor(None, fn)

    async def flush(self, timeout: Optional[float] = 1.0) -> None:
        self._conn.flush(timeout)

    async def drain(self, timeout: Optional[float] = 5.0) -> None:
        """Deliver what is queued for this connection's subscriptions, unsubscribe, wait
        for callback tasks, then close."""
        try:
            while self._conn.poll(0) > 0:
                pass
        except ClosedError:
            pass
        self._detach()
        try:
            await self._loop.run_in_executor(None, self._conn.drain, timeout)
        except ClosedError:
            pass
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        self._detach()
        self._conn.close()

    @property
    def is_closed(self) -> bool:
        return self._conn.is_closed

    def fileno(self) -> int:
        return self._fd

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<ember.aio.Connection {self._conn!r}>"
