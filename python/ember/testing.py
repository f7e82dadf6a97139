"""A tiny NATS client over a raw TCP socket, speaking the text protocol.

No Python NATS client is packaged with Ember; this one is enough for tests, the demo and
the benchmark to reach a server over the network exactly as an outside client would:
``INFO`` / ``CONNECT`` / ``PUB`` / ``HPUB`` / ``SUB`` / ``UNSUB`` / ``PING`` / ``PONG`` and
``MSG`` / ``HMSG``, with no-responders (status 503) for requests.  Not thread-safe.
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Dict, List, NamedTuple, Optional
from urllib.parse import urlparse

from .errors import ClosedError, Error, NoRespondersError, TimeoutError

__all__ = ["RawClient", "RawMsg", "ProtocolError"]


class ProtocolError(Error):
    """The server sent ``-ERR`` or something this client does not understand."""


class RawMsg(NamedTuple):
    subject: str
    sid: int
    reply: Optional[str]
    headers: Optional[bytes]  #: the raw header block (``NATS/1.0...\\r\\n\\r\\n``) or None
    data: bytes

    @property
    def status(self) -> int:
        """The status code of the header line (503: no responders), else 0."""
        if not self.headers:
            return 0
        first = self.headers.split(b"\r\n", 1)[0].split()
        return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


class RawClient:
    """Connect to ``url`` (``nats://host:port``) and complete the handshake (CONNECT, then
    PING/PONG).  Raises :class:`ProtocolError` on ``-ERR`` (e.g. authorization)."""

    def __init__(self, url: str, timeout: float = 5.0, name: str = "ember-raw",
                 user: Optional[str] = None, password: Optional[str] = None,
                 token: Optional[str] = None, headers: bool = True, verbose: bool = False):
        u = urlparse(url)
        host = u.hostname or "127.0.0.1"
        port = u.port or 4222
        if u.username and user is None and password is None:
            if u.password is None:
                token = u.username
            else:
                user, password = u.username, u.password
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buf = bytearray()
        self._pending: List[RawMsg] = []
        self._next_sid = 1
        self._inbox_prefix: Optional[str] = None
        self._inbox_sid = 0
        self._req_n = 0
        line = self._read_line()
        if not line.startswith(b"INFO "):
            raise ProtocolError(f"expected INFO, got {line[:80]!r}")
        self.info: Dict = json.loads(line[5:])
        connect = {"verbose": verbose, "pedantic": False, "lang": "python-raw",
                   "version": "0.1", "protocol": 1, "headers": headers,
                   "no_responders": headers, "name": name}
        if user is not None:
            connect["user"] = user
            connect["pass"] = password
        if token is not None:
            connect["auth_token"] = token
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        self._wait_pong()

    # ------------------------------------------------------------ I/O
    def _send(self, b: bytes) -> None:
        try:
            self.sock.sendall(b)
        except OSError as e:
            raise ClosedError(f"connection lost: {e}") from None

    def _fill(self, deadline: Optional[float]) -> None:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(left)
        else:
            self.sock.settimeout(None)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("timed out") from None
        except OSError as e:
            raise ClosedError(f"connection lost: {e}") from None
        if not chunk:
            raise ClosedError("connection closed by the server")
        self._buf += chunk

    def _read_line(self, deadline: Optional[float] = None) -> bytes:
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 2]
                return line
            self._fill(deadline)

    def _read_exact(self, n: int, deadline: Optional[float]) -> bytes:
        while len(self._buf) < n + 2:
            self._fill(deadline)
        b = bytes(self._buf[:n])
        del self._buf[:n + 2]
        return b

    def _read_op(self, deadline: Optional[float]) -> Optional[RawMsg]:
        """Read one protocol operation; returns a message or None (anything else)."""
        line = self._read_line(deadline)
        if line.startswith(b"MSG "):
            p = line.split()
            subject, sid = p[1].decode(), int(p[2])
            reply = p[3].decode() if len(p) == 5 else None
            data = self._read_exact(int(p[-1]), deadline)
            return RawMsg(subject, sid, reply, None, data)
        if line.startswith(b"HMSG "):
            p = line.split()
            subject, sid = p[1].decode(), int(p[2])
            reply = p[3].decode() if len(p) == 6 else None
            hlen, total = int(p[-2]), int(p[-1])
            body = self._read_exact(total, deadline)
            return RawMsg(subject, sid, reply, body[:hlen], body[hlen:])
        if line == b"PING":
            self._send(b"PONG\r\n")
            return None
        if line == b"PONG":
            self._pongs += 1
            return None
        if line.startswith(b"-ERR"):
            raise ProtocolError(line[5:].decode(errors="replace").strip().strip("'"))
        if line.startswith(b"+OK") or line.startswith(b"INFO "):
            return None
        raise ProtocolError(f"unexpected {line[:80]!r}")

    _pongs = 0

    def _wait_pong(self, timeout: Optional[float] = None) -> None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        want = self._pongs + 1
        while self._pongs < want:
            m = self._read_op(deadline)
            if m is not None:
                self._pending.append(m)

    # ------------------------------------------------------------ API
    def publish(self, subject: str, data: bytes = b"", reply: Optional[str] = None,
                headers: Optional[Dict[str, str]] = None) -> None:
        self._send(self.encode_pub(subject, data, reply, headers))

    @staticmethod
    def encode_pub(subject: str, data: bytes = b"", reply: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None) -> bytes:
        """The PUB/HPUB bytes for one message (to batch several in one send)."""
        r = f" {reply}" if reply else ""
        if headers:
            h = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            hb = h.encode()
            return (f"HPUB {subject}{r} {len(hb)} {len(hb) + len(data)}\r\n".encode() + hb +
                    data + b"\r\n")
        return f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n"

    def send_raw(self, b: bytes) -> None:
        self._send(b)

    def subscribe(self, subject: str, queue: Optional[str] = None) -> int:
        sid = self._next_sid
        self._next_sid += 1
        q = f" {queue}" if queue else ""
        self._send(f"SUB {subject}{q} {sid}\r\n".encode())
        return sid

    def unsubscribe(self, sid: int, max_msgs: Optional[int] = None) -> None:
        m = f" {max_msgs}" if max_msgs else ""
        self._send(f"UNSUB {sid}{m}\r\n".encode())

    def flush(self, timeout: Optional[float] = None) -> None:
        """PING and wait for the PONG: the server processed everything sent before."""
        self._send(b"PING\r\n")
        self._wait_pong(timeout)

    def next_msg(self, timeout: Optional[float] = 1.0, sid: Optional[int] = None) -> RawMsg:
        """The next MSG/HMSG (for ``sid`` if given), answering PINGs meanwhile."""
        for i, m in enumerate(self._pending):
            if sid is None or m.sid == sid:
                return self._pending.pop(i)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            m = self._read_op(deadline)
            if m is None:
                continue
            if sid is None or m.sid == sid:
                return m
            self._pending.append(m)

    def request(self, subject: str, data: bytes = b"", timeout: float = 1.0,
                headers: Optional[Dict[str, str]] = None) -> RawMsg:
        """Request/reply over one wildcard inbox subscription, as the official clients do.
        Raises :class:`NoRespondersError` on a 503 status, :class:`TimeoutError`."""
        if self._inbox_prefix is None:
            self._inbox_prefix = "_INBOX." + os.urandom(8).hex()
            self._inbox_sid = self.subscribe(self._inbox_prefix + ".*")
        self._req_n += 1
        reply = f"{self._inbox_prefix}.{self._req_n}"
        self.publish(subject, data, reply, headers)
        deadline = time.monotonic() + timeout
        while True:
            m = self.next_msg(max(0.0, deadline - time.monotonic()), sid=self._inbox_sid)
            if m.subject != reply:
                continue  # a late reply to an earlier request
            if m.status == 503:
                raise NoRespondersError(f"no responders available for request on {subject!r}")
            return m

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover
            pass

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
