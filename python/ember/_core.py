"""Internal helpers: the cffi handle registry, argument conversion, exception reporting,
and the message and header types."""
from __future__ import annotations

import gc
import math
import sys
import traceback
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, MutableMapping, Optional,
                    Sequence, Tuple, Union)

from ._ember import ffi, lib
from .errors import ClosedError, InvalidArgumentError, check

NULL = ffi.NULL

# ------------------------------------------------------------------ handle registry
#
# A callback subscription's state object is passed to C as an ffi.new_handle() pointer.
# The handle is kept alive here until the library lets go of it: its ember_free_fn (a C
# helper, so that no broker thread ever needs the GIL) pushes the pointer onto a free
# list that reap() drains.

_handles: Dict[int, Any] = {}


def new_handle(obj: Any) -> Any:
    h = ffi.new_handle(obj)
    _handles[int(ffi.cast("uintptr_t", h))] = h
    return h


def reap() -> int:
    """Forget the handles the library has released; returns how many."""
    buf = ffi.new("void *[64]")
    total = 0
    while True:
        n = lib.emberpy_reap(buf, 64)
        for i in range(n):
            _handles.pop(int(ffi.cast("uintptr_t", buf[i])), None)
        total += n
        if n < 64:
            return total


def _reap_before_gc(phase: str, info: Dict[str, Any]) -> None:
    # released handles may be all that keeps a reference cycle alive: drop them first
    if phase == "start" and lib is not None:
        try:
            reap()
        except Exception:  # pragma: no cover - interpreter teardown
            pass


gc.callbacks.append(_reap_before_gc)


def live_handles() -> int:
    """Number of callback states the library still holds (for leak tests)."""
    reap()
    return len(_handles)


# ------------------------------------------------------------------ reporting

_hook_args_type: Any = None


def _unraisable_args_type() -> Any:
    global _hook_args_type
    if _hook_args_type is None:
        captured: List[Any] = []
        old = sys.unraisablehook
        sys.unraisablehook = captured.append
        try:
            class _Probe:
                def __del__(self) -> None:
                    raise RuntimeError("probe")
            _Probe()
        finally:
            sys.unraisablehook = old
        _hook_args_type = type(captured[0]) if captured else False
    return _hook_args_type


def report_exception(exc: BaseException, obj: Any, what: str = "ember callback") -> None:
    """Report an exception raised where it cannot propagate (a callback run by the
    library): through ``sys.unraisablehook``, so it is printed (or captured by pytest)
    rather than swallowed."""
    try:
        t = _unraisable_args_type()
        if t:
            sys.unraisablehook(t((type(exc), exc, exc.__traceback__,
                                  f"Exception ignored in {what}", obj)))
            return
    except BaseException:  # pragma: no cover - a broken hook: fall back to stderr
        pass
    try:
        sys.stderr.write(f"Exception ignored in {what} {obj!r}:\n")
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    except BaseException:  # pragma: no cover
        pass


# ------------------------------------------------------------------ conversions

BytesLike = Union[bytes, bytearray, memoryview, str]


def to_ms(timeout: Optional[float]) -> int:
    """Seconds (float) to milliseconds for the C API; None means wait forever (-1)."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    ms = math.ceil(timeout * 1000.0)
    return ms if ms < 2**31 - 1 else 2**31 - 2


def subj(s: Union[str, bytes], what: str = "subject") -> bytes:
    if type(s) is str:
        b = s.encode()
    elif isinstance(s, (bytes, bytearray)):
        b = bytes(s)
    else:
        raise InvalidArgumentError(f"{what} must be a str, not {type(s).__name__}")
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} contains a NUL byte")
    return b


def payload(data: Optional[BytesLike]) -> Tuple[Any, int]:
    """(pointer-compatible object, length) for a payload argument."""
    if type(data) is bytes:
        return data, len(data)
    if data is None:
        return b"", 0
    if isinstance(data, str):
        b = data.encode()
        return b, len(b)
    try:
        mv = memoryview(data)
    except TypeError:
        raise InvalidArgumentError(
            f"data must be bytes-like or str, not {type(data).__name__}") from None
    n = mv.nbytes
    if n == 0:
        return b"", 0
    if not mv.c_contiguous:
        b = mv.tobytes()
        return b, n
    return ffi.from_buffer("char[]", mv), n


def cstr(p: Any) -> Optional[str]:
    if p == NULL:
        return None
    return ffi.string(p).decode("utf-8", "replace")


# ------------------------------------------------------------------ headers

HeaderInput = Union["Headers", Mapping[str, Union[str, Sequence[str]]],
                    Iterable[Tuple[str, str]]]


class Headers(MutableMapping[str, str]):
    """NATS message headers: a mapping where a key may have several values.

    ``h["K"]`` is the first value of ``K`` (``KeyError`` if absent), ``h.get_all("K")``
    every value, ``h.add("K", "v")`` appends one, ``h["K"] = "v"`` replaces them all.
    Iteration yields each key once, in order of first appearance.  Keys keep their case
    and lookups are case-sensitive, as in nats.go.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Optional[HeaderInput] = None, **kw: Union[str, Sequence[str]]):
        self._items: List[Tuple[str, str]] = []
        if items is not None:
            self.extend(items)
        if kw:
            self.extend(kw)

    def extend(self, items: HeaderInput) -> None:
        """Append every value of ``items`` (a Headers, a mapping whose values are a string
        or a list of strings, or an iterable of (key, value) pairs)."""
        if isinstance(items, Headers):
            self._items.extend(items._items)
            return
        if isinstance(items, Mapping):
            for k, v in items.items():
                if isinstance(v, (list, tuple)):
                    for x in v:
                        self.add(k, x)
                else:
                    self.add(k, v)
            return
        for k, v in items:
            self.add(k, v)

    def add(self, key: str, value: str) -> None:
        """Append a value for key."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError("header keys and values must be str")
        self._items.append((key, value))

    def get_all(self, key: str) -> List[str]:
        """All values of key, in order ([] if absent)."""
        return [v for k, v in self._items if k == key]

    def multi_items(self) -> List[Tuple[str, str]]:
        """Every (key, value) pair, in order, repeated keys included."""
        return list(self._items)

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError("header keys and values must be str")
        out: List[Tuple[str, str]] = []
        placed = False
        for k, v in self._items:
            if k == key:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((k, v))
        if not placed:
            out.append((key, value))
        self._items = out

    def __delitem__(self, key: str) -> None:
        n = len(self._items)
        self._items = [(k, v) for k, v in self._items if k != key]
        if len(self._items) == n:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for k, _ in self._items:
            if k not in seen:
                seen.add(k)
                yield k

    def __len__(self) -> int:
        return len({k for k, _ in self._items})

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def header_pairs(headers: HeaderInput) -> List[Tuple[str, str]]:
    if isinstance(headers, Headers):
        return headers._items
    return Headers(headers)._items


def headers_of(p: Any) -> Headers:
    h = Headers()
    kv = ffi.new("const char *[2]")
    i = 0
    items = h._items
    while lib.ember_msg_header_at(p, i, kv, kv + 1):
        items.append((ffi.string(kv[0]).decode("utf-8", "replace"),
                      ffi.string(kv[1]).decode("utf-8", "replace")))
        i += 1
    return h


def build_msg(subject: bytes, reply: Optional[bytes], data: Any, n: int,
              headers: Optional[HeaderInput]) -> Any:
    """An owned ember_msg (release with lib.ember_msg_release)."""
    out = ffi.new("ember_msg **")
    check(lib.ember_msg_new(out, subject, reply if reply else NULL, data, n))
    m = out[0]
    try:
        if headers is not None:
            for k, v in header_pairs(headers):
                check(lib.ember_msg_header_add(m, k.encode(), v.encode()))
    except BaseException:
        lib.ember_msg_release(m)
        raise
    return m


# ------------------------------------------------------------------ messages


class Msg:
    """A received message.

    Attributes:
        subject: the subject it was published to.
        reply: the reply subject, or None.
        data: the payload (bytes).
        headers: a :class:`Headers` mapping, or None when the message has none.
        status: the status code of the header line (``NATS/1.0 503`` gives 503), else 0.
    """

    __slots__ = ("subject", "reply", "data", "headers", "status", "_core")

    def __init__(self, subject: str, data: bytes = b"", reply: Optional[str] = None,
                 headers: Optional[Headers] = None, status: int = 0, _core: Any = None):
        self.subject = subject
        self.data = data
        self.reply = reply
        self.headers = headers
        self.status = status
        self._core = _core

    def respond(self, data: Optional[BytesLike] = b"",
                headers: Optional[HeaderInput] = None) -> None:
        """Publish ``data`` to this message's reply subject, on the connection that
        received it.  Raises :class:`InvalidArgumentError` when there is no reply
        subject, :class:`ClosedError` when that connection is closed."""
        if not self.reply:
            raise InvalidArgumentError("message has no reply subject")
        core = self._core
        if core is None:
            raise ClosedError("message was not received on a connection")
        core.publish(self.reply.encode(), data, None, headers)

    def __repr__(self) -> str:
        d = self.data if len(self.data) <= 64 else self.data[:64] + b"..."
        extra = f", reply={self.reply!r}" if self.reply else ""
        if self.headers is not None:
            extra += f", headers={self.headers!r}"
        return f"<Msg subject={self.subject!r}{extra} data={d!r}>"


_string = ffi.string
_unpack = ffi.unpack
_view = lib.emberpy_msg_view
_new_msg = Msg.__new__


def msg_from_ptr(p: Any, core: Any) -> Msg:
    """A Python Msg copied out of an ember_msg (which stays owned by the caller)."""
    v = _view(p)
    r = v.reply
    h = v.hdr
    m = _new_msg(Msg)
    m.subject = _string(v.subject).decode("utf-8", "replace")
    m.reply = None if r == NULL else _string(r).decode("utf-8", "replace")
    m.data = _unpack(v.data, v.len)
    if h == NULL:
        m.headers = None
        m.status = 0
    else:
        m.headers = headers_of(p)
        m.status = lib.ember_msg_status(p)
    m._core = core
    return m
