"""Typed exceptions for Ember's status codes.

Every failing call raises a subclass of :class:`ember.Error`.  The message is the
library's detailed text for the failure (``ember_last_error()``), ``code`` the negative
``EMBER_E*`` status and ``status`` its short name (``ember_strerror()``).
"""
from __future__ import annotations

import builtins
from typing import Dict, Optional, Type

from ._ember import ffi, lib

__all__ = [
    "Error",
    "InvalidArgumentError",
    "TimeoutError",
    "NoRespondersError",
    "ClosedError",
    "MaxPayloadError",
    "NotFoundError",
    "ExistsError",
    "WrongSequenceError",
    "SlowConsumerError",
    "EmberIOError",
    "NoMemoryError",
    "LimitError",
    "StateError",
]


class Error(Exception):
    """Base class of every Ember error.

    Attributes:
        code: the negative ``EMBER_E*`` status code (0 when raised by Python code).
        status: the short name of the code, e.g. ``"timeout"``.
    """

    code: int = 0

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message or self.status)

    @property
    def status(self) -> str:
        return ffi.string(lib.ember_strerror(self.code)).decode("utf-8", "replace")


class InvalidArgumentError(Error, ValueError):
    """An invalid argument: a bad subject, option, or a call the object doesn't allow."""
    code = lib.EMBER_EINVAL


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - mirrors EMBER_ETIMEDOUT
    """A bounded wait ran out (request, next_msg, drain, ready)."""
    code = lib.EMBER_ETIMEDOUT


class NoRespondersError(Error):
    """A request matched no subscriber."""
    code = lib.EMBER_ENORESPONDERS


class ClosedError(Error):
    """The connection, subscription or server is closed."""
    code = lib.EMBER_ECLOSED


class MaxPayloadError(Error):
    """The message is larger than the server's ``max_payload``."""
    code = lib.EMBER_EMAXPAYLOAD


class NotFoundError(Error, LookupError):
    """The requested object does not exist."""
    code = lib.EMBER_ENOTFOUND


class ExistsError(Error):
    """The object already exists."""
    code = lib.EMBER_EEXISTS


class WrongSequenceError(Error):
    """An expected sequence or revision did not match."""
    code = lib.EMBER_EWRONGSEQ


class SlowConsumerError(Error):
    """Pending limits were hit and messages were dropped."""
    code = lib.EMBER_ESLOWCONSUMER


class EmberIOError(Error, OSError):
    """An operating-system level failure (listening on a port, file I/O)."""
    code = lib.EMBER_EIO


class NoMemoryError(Error, MemoryError):
    """The library ran out of memory."""
    code = lib.EMBER_ENOMEM


class LimitError(Error):
    """A configured limit (connections, subscriptions) was reached."""
    code = lib.EMBER_ELIMIT


class StateError(Error):
    """The object is in the wrong state for this call (e.g. started twice)."""
    code = lib.EMBER_ESTATE


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, TimeoutError, NoRespondersError, ClosedError,
                MaxPayloadError, NotFoundError, ExistsError, WrongSequenceError,
                SlowConsumerError, EmberIOError, NoMemoryError, LimitError, StateError)
}


def error_for(code: int, detail: Optional[str] = None) -> Error:
    """The exception for status ``code`` with the calling thread's last error text."""
    if detail is None:
        detail = ffi.string(lib.ember_last_error()).decode("utf-8", "replace")
    if not detail:
        detail = ffi.string(lib.ember_strerror(code)).decode("utf-8", "replace")
    cls = _BY_CODE.get(code, Error)
    return cls(detail, code)


def check(rc: int) -> int:
    """Raise the typed error for a negative status; return ``rc`` otherwise."""
    if rc < 0:
        raise error_for(rc)
    return rc
