"""Object stores (ADR-20) over the native API (``ember_obj_*``).

    js = conn.jetstream()
    store = js.create_object_store("files")
    info = store.put("report.pdf", b"...")               # or a file opened in "rb"
    store.get("report.pdf")                               # b'...'
    with store.get_reader("report.pdf") as r:             # a readable binary file
        shutil.copyfileobj(r, out)
    store.list()                                          # ['report.pdf']
    store.delete("report.pdf")

A bucket is the stream ``OBJ_<bucket>`` with the chunks on ``$O.<bucket>.C.<nuid>`` and
the metadata on ``$O.<bucket>.M.<base64url(name)>``, exactly as the NATS clients keep
it, so nats.js / nats.go object stores over TCP read what the host stores and the
other way round.  A missing (or deleted) object raises :class:`ember.NotFoundError`;
data that does not match the object's SHA-256 digest raises
:class:`ember.EmberIOError` ("digest mismatch").
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, List, Optional, Union

from ._core import NULL, BytesLike, cstr, payload, subj
from ._ember import ffi, lib
from .errors import ClosedError, InvalidArgumentError, error_for
from .jetstream import StreamInfo, to_datetime

if TYPE_CHECKING:  # pragma: no cover
    import datetime

    from .connection import Connection

__all__ = ["ObjectStore", "ObjectInfo", "ObjectReader", "ObjectWriter"]

#: Bytes read from a file-like object per write when putting it.
_READ_SIZE = 128 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """An object's metadata (the JSON the NATS clients keep on the metadata subject).

    ``revision`` is the stream sequence of the metadata message and ``mtime_ns`` its
    time; a deleted object has ``deleted`` True, size 0 and an empty digest.  A link made
    by a client has ``link_bucket`` (and ``link_name``, None for a link to a bucket)."""
    bucket: str
    name: str
    description: str
    nuid: str
    digest: str
    size: int
    chunks: int
    chunk_size: int
    mtime_ns: int
    revision: int
    deleted: bool
    link_bucket: Optional[str] = None
    link_name: Optional[str] = None

    @property
    def mtime(self) -> "datetime.datetime":
        """When the metadata was stored (UTC)."""
        return to_datetime(self.mtime_ns)

    @property
    def is_link(self) -> bool:
        return self.link_bucket is not None


def _info(p: Any) -> ObjectInfo:
    return ObjectInfo(cstr(p.bucket) or "", cstr(p.name) or "", cstr(p.description) or "",
                      cstr(p.nuid) or "", cstr(p.digest) or "", int(p.size), int(p.chunks),
                      int(p.chunk_size), int(p.mtime_ns), int(p.revision), bool(p.deleted),
                      cstr(p.link_bucket), cstr(p.link_name))


def _take_info(out: Any) -> ObjectInfo:
    p = out[0]
    try:
        return _info(p)
    finally:
        lib.ember_obj_info_free(p)


def _put_options(description: Optional[str], chunk_size: Optional[int], keep: List[Any]) -> Any:
    if description is None and chunk_size is None:
        return NULL
    po = ffi.new("ember_obj_put_options *")
    lib.ember_obj_put_options_init(po)
    if description is not None:
        d = ffi.new("char[]", subj(description, "description"))
        keep.append(d)
        po.description = d
    if chunk_size is not None:
        if not 1 <= int(chunk_size) < 2**32:
            raise InvalidArgumentError("chunk_size must be 1 .. 2**32-1 bytes")
        po.chunk_size = int(chunk_size)
    keep.append(po)
    return po


class ObjectReader(io.RawIOBase):
    """A streaming read of one object (:meth:`ObjectStore.get_reader`): a readable,
    non-seekable binary file.  The data comes chunk by chunk straight from the store; the
    size and SHA-256 digest are checked at the end, so the read that would return ``b""``
    raises :class:`ember.EmberIOError` instead when they do not match (the error then
    repeats).  ``info`` is the object's :class:`ObjectInfo`.  Use it from one thread at a
    time; close it (or use ``with``) to free it early."""

    def __init__(self, store: "ObjectStore", ptr: Any) -> None:
        super().__init__()
        self._core = store._core
        self._ptr = ptr
        self._lock = threading.Lock()
        self.info = _info(lib.ember_obj_reader_info(ptr))

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:  # type: ignore[override]
        mv = memoryview(b).cast("B")
        n = mv.nbytes
        if n == 0:
            return 0
        core = self._core
        core.enter()  # the reader reads through the connection
        try:
            with self._lock:
                if self._ptr is None:
                    raise ValueError("I/O operation on closed object reader")
                rc = lib.ember_obj_reader_read(self._ptr, ffi.from_buffer(mv), n)
        finally:
            core.leave()
        if rc < 0:
            raise error_for(int(rc))
        return int(rc)

    def readall(self) -> bytes:
        out = bytearray()
        buf = bytearray(max(_READ_SIZE, min(self.info.size + 1, 8 * 1024 * 1024)))
        while True:
            n = self.readinto(buf)
            if not n:
                return bytes(out)
            out += memoryview(buf)[:n]

    def close(self) -> None:
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.ember_obj_reader_close(ptr)
        super().close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:
            self._ptr = None
            try:
                lib.ember_obj_reader_close(ptr)
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        return f"<ember.ObjectReader {self.info.bucket!r} {self.info.name!r}>"


class ObjectWriter:
    """A streaming put (:meth:`ObjectStore.open_writer`): :meth:`write` pieces of any
    size, then :meth:`commit` (the object appears, replacing any of that name) or
    :meth:`abort` (what was stored is purged).  As a context manager it commits when the
    block ends normally and aborts on an exception.  A writer still open when its
    connection closes is aborted.  Use it from one thread at a time."""

    def __init__(self, store: "ObjectStore", ptr: Any, name: str) -> None:
        self._core = store._core
        self._ptr = ptr
        self._lock = threading.Lock()
        self.name = name
        self.info: Optional[ObjectInfo] = None
        with self._core.lock:
            self._core.obj_writers.add(self)

    def _take(self) -> Any:
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            with self._core.lock:
                self._core.obj_writers.discard(self)
        return ptr

    def _conn_closing(self) -> None:
        # from the connection's finish, while its pointer is still valid
        ptr = self._take()
        if ptr is not None:
            lib.ember_obj_writer_abort(ptr)

    def write(self, data: BytesLike) -> int:
        """Store data (copied); returns its length."""
        d, n = payload(data)
        core = self._core
        core.enter()
        try:
            with self._lock:
                if self._ptr is None:
                    raise ClosedError("object writer already committed or aborted")
                rc = lib.emberpy_obj_writer_write(self._ptr, d, n)
        finally:
            core.leave()
        if rc:
            raise error_for(rc)
        return n

    def commit(self) -> ObjectInfo:
        """Store the rest and the metadata; returns the new object's info.  On an error
        (also one a write raised before) nothing of the object stays."""
        core = self._core
        core.enter()
        try:
            ptr = self._take()
            if ptr is None:
                raise ClosedError("object writer already committed or aborted")
            out = ffi.new("ember_obj_info **")
            rc = lib.emberpy_obj_writer_commit(ptr, out)
        finally:
            core.leave()
        if rc:
            raise error_for(rc)
        self.info = _take_info(out)
        return self.info

    def abort(self) -> None:
        """Discard the object (idempotent)."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return  # the connection is closing: it aborts its open writers
        try:
            ptr = self._take()
            if ptr is not None:
                lib.ember_obj_writer_abort(ptr)
        finally:
            core.leave()

    @property
    def is_open(self) -> bool:
        return self._ptr is not None

    def __enter__(self) -> "ObjectWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            if self._ptr is not None:
                self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "done"
        return f"<ember.ObjectWriter {self.name!r} {state}>"


class ObjectStore:
    """An object store bucket (:meth:`ember.JetStream.create_object_store` or
    :meth:`ember.JetStream.object_store`).  Thread-safe.

    Object names are any non-empty string up to 2048 bytes (UTF-8); an invalid one
    raises :class:`ember.InvalidArgumentError`.  Writes are durable when they return.
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

    # Every call holds the handle (_acquire/_release), as KeyValue does.
    def _acquire(self) -> Any:
        with self._lock:
            ptr = self._ptr
            if ptr is None or self._closed:
                raise ClosedError("object store handle closed")
            self._users += 1
            return ptr

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            ptr = self._ptr if self._closed and self._users == 0 else None
            if ptr is not None:
                self._ptr = None
        if ptr is not None:
            lib.ember_obj_close(ptr)

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

    # ---------------------------------------------------------------- writes
    def put(self, name: str, data: Union[None, BytesLike, BinaryIO], *,
            description: Optional[str] = None, chunk_size: Optional[int] = None
            ) -> ObjectInfo:
        """Store an object from bytes (a ``str`` is UTF-8 encoded) or from a binary
        file-like object (anything with ``read(n)``, read to its end), replacing any
        object of that name; returns its :class:`ObjectInfo`.  ``chunk_size`` defaults to
        the bucket handle's (128 KiB unless the bucket was created with another)."""
        nb = subj(name, "object name")
        keep: List[Any] = []
        opts = _put_options(description, chunk_size, keep)
        if data is not None and hasattr(data, "read") and not isinstance(
                data, (bytes, bytearray, memoryview, str)):
            w = self._open_writer(nb, name, opts)
            try:
                while True:
                    piece = data.read(_READ_SIZE)  # type: ignore[union-attr]
                    if not piece:
                        break
                    w.write(piece)
            except BaseException:
                w.abort()
                raise
            return w.commit()
        d, n = payload(data)  # type: ignore[arg-type]
        out = ffi.new("ember_obj_info **")
        self._call(lib.emberpy_obj_put, nb, d, n, opts, out)
        return _take_info(out)

    def _open_writer(self, nb: bytes, name: str, opts: Any) -> ObjectWriter:
        out = ffi.new("ember_obj_writer **")
        self._call(lib.ember_obj_writer_open, nb, opts, out)
        return ObjectWriter(self, out[0], name)

    def open_writer(self, name: str, *, description: Optional[str] = None,
                    chunk_size: Optional[int] = None) -> ObjectWriter:
        """Start a streaming put of ``name`` (see :class:`ObjectWriter`)."""
        keep: List[Any] = []
        opts = _put_options(description, chunk_size, keep)
        return self._open_writer(subj(name, "object name"), name, opts)

    def delete(self, name: str) -> None:
        """Delete an object: a deleted marker replaces its metadata and its chunks are
        purged.  :class:`ember.NotFoundError` when it is missing or already deleted."""
        self._call(lib.emberpy_obj_delete, subj(name, "object name"))

    # ---------------------------------------------------------------- reads
    def get(self, name: str) -> bytes:
        """The whole object (links made by clients are followed).  Raises
        :class:`ember.NotFoundError` for a missing or deleted object and
        :class:`ember.EmberIOError` when the data does not match its digest."""
        data = ffi.new("void **")
        n = ffi.new("size_t *")
        self._call(lib.ember_obj_get, subj(name, "object name"), data, n, NULL)
        try:
            return ffi.unpack(ffi.cast("char *", data[0]), n[0])
        finally:
            lib.emberpy_free(data[0])

    def get_reader(self, name: str) -> ObjectReader:
        """A streaming read of the object (see :class:`ObjectReader`)."""
        out = ffi.new("ember_obj_reader **")
        self._call(lib.ember_obj_reader_open, subj(name, "object name"), out)
        return ObjectReader(self, out[0])

    def info(self, name: str) -> ObjectInfo:
        """The object's metadata, also of a deleted object (``deleted`` True).
        :class:`ember.NotFoundError` when the bucket never had an object of that name."""
        out = ffi.new("ember_obj_info **")
        self._call(lib.ember_obj_get_info, subj(name, "object name"), out)
        return _take_info(out)

    def list(self) -> List[str]:
        """The names of the objects that are not deleted, sorted."""
        out = ffi.new("char ***")
        n = ffi.new("size_t *")
        self._call(lib.ember_obj_list, out, n)
        arr = out[0]
        try:
            return [ffi.string(arr[i]).decode("utf-8", "replace") for i in range(n[0])]
        finally:
            lib.emberpy_free(arr)

    # ---------------------------------------------------------------- misc
    def status(self) -> StreamInfo:
        """The state of the bucket's stream ``OBJ_<bucket>`` (``bytes`` counts chunks and
        metadata)."""
        from .jetstream import JetStream
        return JetStream(self._conn).stream_info("OBJ_" + self.bucket)

    def close(self) -> None:
        """Free the handle (the bucket stays).  Idempotent; calls running on other
        threads finish first.  Open readers and writers keep working."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ptr = self._ptr if self._users == 0 else None
            if ptr is not None:
                self._ptr = None
        if ptr is not None:
            lib.ember_obj_close(ptr)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "ObjectStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:
            self._ptr = None
            try:
                lib.ember_obj_close(ptr)
            except Exception:  # pragma: no cover - interpreter teardown
                pass

    def __repr__(self) -> str:
        return f"<ember.ObjectStore {self.bucket!r}>"
