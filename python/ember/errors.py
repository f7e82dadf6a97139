"""Typed exceptions for Ember's status codes.

Every failing call raises a subclass of :class:`ember.Error`.  The message is the
library's detailed text for the failure (``ember_last_error()``), ``code`` the negative
``EMBER_E*`` status and ``status`` its short name (``ember_strerror()``).  JetStream and
key-value failures reported by the stream engine end with nats-server's error code in
parentheses (``"wrong last sequence: 4 (10071)"``), available as ``err_code``.
"""
from __future__ import annotations

import builtins
import re
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

    @property
    def err_code(self) -> Optional[int]:
        """nats-server's JetStream error code (``10071`` for "wrong last sequence"), when
        the library reported one at the end of the message; else None."""
        m = _ERR_CODE.search(str(self))
        return int(m.group(1)) if m else None


_ERR_CODE = re.compile(r"\((\d{4,6})\)\s*$")


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
    """The requested object does not exist (a stream, consumer, message, bucket or key;
    a deleted or purged key too)."""
    code = lib.EMBER_ENOTFOUND


class ExistsError(Error):
    """The object already exists (a stream or consumer name in use with another
    configuration)."""
    code = lib.EMBER_EEXISTS


class WrongSequenceError(Error):
    """An expected sequence or revision did not match: a JetStream expectation
    (``expected_last_seq``, ``expected_stream``, ...) or a key-value ``create`` /
    ``update``."""
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
    """A configured limit was reached: connections, subscriptions, or a stream limit that
    refused a message (``discard="new"``, ``max_msg_size``)."""
    code = lib.EMBER_ELIMIT


class StateError(Error):
    """The object is in the wrong state for this call (e.g. started twice, JetStream not
    enabled, a JetStream message acknowledged twice)."""
    code = lib.EMBER_ESTATE


class AuthorizationError(Error, PermissionError):
    """Credentials refused ("Authorization Violation")."""
    code = lib.EMBER_EAUTH


class PermissionsError(Error, PermissionError):
    """The connection's user may not publish or subscribe there ("Permissions Violation
    for Publish to ..." / "... for Subscription to ...")."""
    code = lib.EMBER_EPERM


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, TimeoutError, NoRespondersError, ClosedError,
                MaxPayloadError, NotFoundError, ExistsError, WrongSequenceError,
                SlowConsumerError, EmberIOError, NoMemoryError, LimitError, StateError,
                AuthorizationError, PermissionsError)
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
