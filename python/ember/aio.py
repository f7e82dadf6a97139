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

JetStream, key-value and object stores: ``nc.jetstream()`` gives a :class:`JetStream`
whose methods are coroutines.  ``await js.publish(...)`` uses the native asynchronous
publish (no thread: the acknowledgement completes a future on the loop); the other
calls, which block on the store, run in the loop's default executor.
``await kv.watch(...)`` returns a :class:`KeyWatcher` for ``async for``, delivered on
the loop's thread like subscriptions::

    js = nc.jetstream()
    await js.add_stream("ORDERS", subjects=["orders.>"])
    ack = await js.publish("orders.1", b"...")
    kv = await js.create_key_value("settings")
    await kv.put("theme", b"dark")
    print((await kv.get("theme")).value)
    store = await js.create_object_store("files")
    await store.put("a.bin", b"...")
    print(await store.get("a.bin"))
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import weakref
from typing import Any, Awaitable, Callable, List, Optional, Set, Tuple, Union

from . import connection as _conn_mod
from . import jetstream as _js_mod
from . import kv as _kv_mod
from . import obj as _obj_mod
from ._core import BytesLike, HeaderInput, Msg, report_exception
from .errors import ClosedError, SlowConsumerError, TimeoutError

__all__ = ["connect", "Connection", "Subscription", "JetStream", "KeyValue", "KeyWatcher",
           "ObjectStore"]

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

    def jetstream(self) -> "JetStream":
        """JetStream through this connection, with coroutine methods."""
        return JetStream(self)

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


# ------------------------------------------------------------------ JetStream


class JetStream:
    """The asyncio face of :class:`ember.JetStream` (see its methods for the arguments
    and errors).  ``publish`` completes through the native asynchronous publish; the
    other methods run the blocking call in the loop's default executor."""

    def __init__(self, aconn: Connection) -> None:
        self._aconn = aconn
        self._loop = aconn._loop
        self._js = aconn._conn.jetstream()

    @property
    def sync(self) -> "_js_mod.JetStream":
        """The underlying synchronous :class:`ember.JetStream`."""
        return self._js

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def publish(self, subject: str, data: Optional[BytesLike] = b"",
                      headers: Optional[HeaderInput] = None, **kwargs: Any
                      ) -> "_js_mod.PubAck":
        """Store a message; returns its :class:`ember.PubAck` once stored (keyword
        options as :meth:`ember.JetStream.publish`)."""
        fut = self._js.publish_async(subject, data, headers, **kwargs)
        return await asyncio.wrap_future(fut, loop=self._loop)

    async def add_stream(self, name: str, subjects: Any = None,
                         **kwargs: Any) -> "_js_mod.StreamInfo":
        return await self._run(self._js.add_stream, name, subjects, **kwargs)

    async def delete_stream(self, name: str) -> None:
        await self._run(self._js.delete_stream, name)

    async def purge_stream(self, name: str, subject: Optional[str] = None) -> int:
        return await self._run(self._js.purge_stream, name, subject)

    async def stream_info(self, name: str) -> "_js_mod.StreamInfo":
        return await self._run(self._js.stream_info, name)

    async def get_msg(self, stream: str, seq: Optional[int] = None, *,
                      last_by_subject: Optional[str] = None) -> "_js_mod.StoredMsg":
        return await self._run(self._js.get_msg, stream, seq,
                               last_by_subject=last_by_subject)

    async def delete_msg(self, stream: str, seq: int) -> None:
        await self._run(self._js.delete_msg, stream, seq)

    async def add_consumer(self, stream: str, durable: Optional[str] = None,
                           **kwargs: Any) -> str:
        return await self._run(self._js.add_consumer, stream, durable, **kwargs)

    async def delete_consumer(self, stream: str, consumer: str) -> None:
        await self._run(self._js.delete_consumer, stream, consumer)

    async def consumer_info(self, stream: str, consumer: str) -> "_js_mod.ConsumerInfo":
        return await self._run(self._js.consumer_info, stream, consumer)

    async def fetch(self, stream: str, consumer: str, batch: int = 1,
                    timeout: Optional[float] = 1.0) -> "List[_js_mod.JsMsg]":
        """Fetch from a pull consumer; the messages' ``ack()`` & co. are plain calls
        (they do not wait for anything)."""
        return await self._run(self._js.fetch, stream, consumer, batch, timeout)

    async def create_key_value(self, bucket: str, **kwargs: Any) -> "KeyValue":
        kv = await self._run(self._js.create_key_value, bucket, **kwargs)
        return KeyValue(self._aconn, kv)

    async def key_value(self, bucket: str) -> "KeyValue":
        kv = await self._run(self._js.key_value, bucket)
        return KeyValue(self._aconn, kv)

    async def delete_key_value(self, bucket: str) -> None:
        await self._run(self._js.delete_key_value, bucket)

    async def create_object_store(self, bucket: str, **kwargs: Any) -> "ObjectStore":
        store = await self._run(self._js.create_object_store, bucket, **kwargs)
        return ObjectStore(self._aconn, store)

    async def object_store(self, bucket: str) -> "ObjectStore":
        store = await self._run(self._js.object_store, bucket)
        return ObjectStore(self._aconn, store)

    async def delete_object_store(self, bucket: str) -> None:
        await self._run(self._js.delete_object_store, bucket)

    def __repr__(self) -> str:
        return f"<ember.aio.JetStream of {self._aconn!r}>"


class KeyValue:
    """The asyncio face of :class:`ember.KeyValue`: the same methods as coroutines
    (run in the loop's default executor, except :meth:`put`, which awaits
    :meth:`ember.KeyValue.put_async`); :meth:`watch` is delivered on the loop."""

    def __init__(self, aconn: Connection, kv: "_kv_mod.KeyValue") -> None:
        self._aconn = aconn
        self._loop = aconn._loop
        self._kv = kv
        self.bucket = kv.bucket

    @property
    def sync(self) -> "_kv_mod.KeyValue":
        """The underlying synchronous :class:`ember.KeyValue`."""
        return self._kv

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._loop.run_in_executor(None, functools.partial(fn, *args))

    async def get(self, key: str, revision: Optional[int] = None) -> "_kv_mod.Entry":
        return await self._run(self._kv.get, key, revision)

    async def put(self, key: str, value: Optional[BytesLike]) -> int:
        """Write a value; returns its revision once durable.  Puts awaited together
        (``asyncio.gather``) share fsyncs: no executor thread waits for any of them."""
        fut = self._kv.put_async(key, value)
        return await asyncio.wrap_future(fut, loop=self._loop)

    async def create(self, key: str, value: Optional[BytesLike]) -> int:
        return await self._run(self._kv.create, key, value)

    async def update(self, key: str, value: Optional[BytesLike], last: int) -> int:
        return await self._run(self._kv.update, key, value, last)

    async def delete(self, key: str) -> None:
        await self._run(self._kv.delete, key)

    async def purge(self, key: str) -> None:
        await self._run(self._kv.purge, key)

    async def keys(self) -> List[str]:
        return await self._run(self._kv.keys)

    async def history(self, key: str) -> "List[_kv_mod.Entry]":
        return await self._run(self._kv.history, key)

    async def watch(self, keys: str = ">") -> "KeyWatcher":
        """Watch keys; iterate with ``async for`` (``None`` marks the end of the
        initial values) or ``await watcher.updates(timeout)``."""
        w = KeyWatcher(self._aconn)
        w._sync = self._kv.watch(keys, cb=w._on_entry, mode="poll")
        self._aconn._subs.add(w)  # type: ignore[arg-type]
        return w

    def close(self) -> None:
        self._kv.close()

    def __repr__(self) -> str:
        return f"<ember.aio.KeyValue {self.bucket!r}>"


class ObjectStore:
    """The asyncio face of :class:`ember.ObjectStore`: put, get, info, list and delete as
    coroutines (run in the loop's default executor, as they block on the store).  For
    streaming, use :attr:`sync`'s ``get_reader`` / ``open_writer`` in an executor."""

    def __init__(self, aconn: Connection, store: "_obj_mod.ObjectStore") -> None:
        self._aconn = aconn
        self._loop = aconn._loop
        self._store = store
        self.bucket = store.bucket

    @property
    def sync(self) -> "_obj_mod.ObjectStore":
        """The underlying synchronous :class:`ember.ObjectStore`."""
        return self._store

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def put(self, name: str, data: Any, **kwargs: Any) -> "_obj_mod.ObjectInfo":
        return await self._run(self._store.put, name, data, **kwargs)

    async def get(self, name: str) -> bytes:
        return await self._run(self._store.get, name)

    async def info(self, name: str) -> "_obj_mod.ObjectInfo":
        return await self._run(self._store.info, name)

    async def list(self) -> List[str]:
        return await self._run(self._store.list)

    async def delete(self, name: str) -> None:
        await self._run(self._store.delete, name)

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f"<ember.aio.ObjectStore {self.bucket!r}>"


class KeyWatcher:
    """A key-value watch delivered on the event loop's thread."""

    def __init__(self, aconn: Connection) -> None:
        self._aconn = aconn
        self._queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self._ended = False
        self._sync: Optional["_kv_mod.KeyWatcher"] = None

    def _on_entry(self, entry: Optional["_kv_mod.Entry"]) -> None:  # loop thread
        if not self._ended:
            self._queue.put_nowait(entry)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_END)

    async def updates(self, timeout: Optional[float] = 1.0) -> Optional["_kv_mod.Entry"]:
        """The next entry (None: end of the initial values).  Raises
        :class:`ember.TimeoutError`, or :class:`ember.ClosedError` once stopped."""
        try:
            if timeout is None:
                item = await self._queue.get()
            else:
                item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no key-value update within {timeout} s") from None
        if item is _END:
            self._queue.put_nowait(_END)
            raise ClosedError("watcher stopped")
        return item

    def __aiter__(self) -> "KeyWatcher":
        return self

    async def __anext__(self) -> Optional["_kv_mod.Entry"]:
        try:
            return await self.updates(None)
        except ClosedError:
            raise StopAsyncIteration from None

    def stop(self) -> None:
        """Stop watching; an ``async for`` ends after the queued entries."""
        if self._sync is not None:
            self._sync.stop()
        self._aconn._subs.discard(self)  # type: ignore[arg-type]
        self._end()

    async def __aenter__(self) -> "KeyWatcher":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ember.aio.KeyWatcher {self._sync!r}>"
