"""The embedded broker."""
from __future__ import annotations

import atexit
import json as _json
import logging as _logging
import os
import signal
import threading
import time
import weakref
from typing import Any, Callable, List, NamedTuple, Optional, Set, Union

from ._core import NULL, cstr, reap, report_exception, to_ms
from ._ember import ffi, lib
from .connection import Connection, _ConnCore
from .errors import (ClosedError, EmberIOError, Error, InvalidArgumentError, StateError,
                     TimeoutError,
                     error_for)

__all__ = ["Server", "ServerStats", "LOG_LEVELS"]

#: Log level names accepted wherever a level is (ints EMBER_LOG_* work too).
LOG_LEVELS = {
    "fatal": lib.EMBER_LOG_FATAL,
    "error": lib.EMBER_LOG_ERROR,
    "warn": lib.EMBER_LOG_WARN,
    "warning": lib.EMBER_LOG_WARN,
    "info": lib.EMBER_LOG_INFO,
    "debug": lib.EMBER_LOG_DEBUG,
    "trace": lib.EMBER_LOG_TRACE,
}

_TO_PY_LEVEL = {
    lib.EMBER_LOG_FATAL: _logging.CRITICAL,
    lib.EMBER_LOG_ERROR: _logging.ERROR,
    lib.EMBER_LOG_WARN: _logging.WARNING,
    lib.EMBER_LOG_INFO: _logging.INFO,
    lib.EMBER_LOG_DEBUG: _logging.DEBUG,
    lib.EMBER_LOG_TRACE: _logging.DEBUG,
}

LogCallback = Callable[[int, str], Any]


def _level(level: Union[str, int]) -> int:
    if isinstance(level, int):
        return level
    try:
        return LOG_LEVELS[level.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(f"invalid log level {level!r}") from None


def _ready_error() -> Error:
    # ember_server_ready_for_connections returns a bool: the kind of failure is only in
    # the detail text of this thread's last error.
    detail = ffi.string(lib.ember_last_error()).decode("utf-8", "replace")
    low = detail.lower()
    if "not ready" in low or "timed out" in low or "timeout" in low:
        return TimeoutError(detail or "server not ready in time")
    if "shut down" in low or "closed" in low:
        return ClosedError(detail)
    if "not started" in low:
        return StateError(detail)
    return EmberIOError(detail or "server could not start")


class ServerStats(NamedTuple):
    in_msgs: int
    out_msgs: int
    in_bytes: int
    out_bytes: int
    connections: int         #: current, TCP + in-process
    total_connections: int
    subscriptions: int
    slow_consumers: int


_live: "weakref.WeakSet[_ServerCore]" = weakref.WeakSet()


def _set_leafnodes(opts: Any, spec: Any, s: Callable[[Optional[str]], Any],
                   keep: List[Any]) -> None:
    """Fill the leaf options from ``Server(leafnodes=...)``."""
    if isinstance(spec, (str, os.PathLike)):
        spec = {"remotes": [os.fspath(spec)]}
    elif isinstance(spec, (list, tuple)):
        spec = {"remotes": list(spec)}
    if not isinstance(spec, dict):
        raise InvalidArgumentError("leafnodes must be a URL, a list of URLs or a dict")
    unknown = set(spec) - {"remotes", "port", "host", "user", "password", "reconnect"}
    if unknown:
        raise InvalidArgumentError("leafnodes: unknown key(s) %s" % ", ".join(sorted(unknown)))
    remotes = spec.get("remotes") or []
    if isinstance(remotes, str):
        remotes = [remotes]
    if remotes:
        arr = ffi.new("ember_leaf_remote[]", len(remotes))
        keep.append(arr)

        def joined(v: Any) -> Optional[str]:
            if v is None:
                return None
            return v if isinstance(v, str) else ",".join(v)

        for i, r in enumerate(remotes):
            if isinstance(r, str):
                r = {"urls": [r]}
            if not isinstance(r, dict):
                raise InvalidArgumentError("leafnodes: each remote is a URL or a dict")
            bad = set(r) - {"url", "urls", "user", "password", "token", "deny_imports",
                            "deny_exports", "tls", "tls_ca_file", "tls_cert_file",
                            "tls_key_file", "tls_insecure", "credentials", "nkey_seed"}
            if bad:
                raise InvalidArgumentError(
                    "leafnodes remote: unknown key(s) %s" % ", ".join(sorted(bad)))
            arr[i].urls = s(joined(r.get("urls", r.get("url"))))
            arr[i].username = s(r.get("user"))
            arr[i].password = s(r.get("password"))
            arr[i].auth_token = s(r.get("token"))
            arr[i].deny_imports = s(joined(r.get("deny_imports")))
            arr[i].deny_exports = s(joined(r.get("deny_exports")))
            arr[i].tls = bool(r.get("tls", False))
            arr[i].tls_ca_file = s(r.get("tls_ca_file"))
            arr[i].tls_cert_file = s(r.get("tls_cert_file"))
            arr[i].tls_key_file = s(r.get("tls_key_file"))
            arr[i].tls_insecure = bool(r.get("tls_insecure", False))
            creds = r.get("credentials")
            arr[i].credentials = s(os.fspath(creds) if creds is not None else None)
            arr[i].nkey_seed = s(r.get("nkey_seed"))
        opts.leaf_remotes = arr
        opts.leaf_remotes_count = len(remotes)
    if spec.get("port") is not None:
        opts.leaf_port = int(spec["port"])
    if spec.get("host") is not None:
        opts.leaf_host = s(spec["host"])
    opts.leaf_username = s(spec.get("user"))
    opts.leaf_password = s(spec.get("password"))
    if spec.get("reconnect") is not None:
        opts.leaf_reconnect_ms = int(float(spec["reconnect"]) * 1000)


def _log_pump(core: "_ServerCore", q: Any) -> None:
    lvl = ffi.new("int *")
    line = ffi.new("char **")
    while True:
        rc = lib.emberpy_logq_pop(q, -1, lvl, line)
        if rc < 0:
            break
        if rc == 0:
            continue
        try:
            text = ffi.string(line[0]).decode("utf-8", "replace")
        finally:
            lib.emberpy_str_free(line[0])
        fn = core.log_fn
        if fn is None:
            continue
        try:
            fn(lvl[0], text)
        except BaseException as e:
            report_exception(e, fn, "ember log callback")


class _ServerCore:
    """Owns the ember_server pointer.  Freed once closed and every connection of it has
    been closed (ember.h requires that order); server calls in flight are guarded like
    connection calls."""

    def __init__(self, ptr: Any) -> None:
        self.ptr = ptr
        self.lock = threading.RLock()  # re-entrant: GC finalizers may run under it
        self.conns: Set[_ConnCore] = set()
        self.active: List[None] = []
        self.closing = False
        self.freed = False
        self.logq: Any = None
        self.log_thread: Optional[threading.Thread] = None
        self.log_fn: Optional[LogCallback] = None
        _live.add(self)

    def enter(self) -> None:
        self.active.append(None)
        if self.freed:
            self.active.pop()
            raise ClosedError("server closed")

    def leave(self) -> None:
        self.active.pop()
        if self.closing and not self.active:
            self.maybe_free()

    def add_conn(self, c: _ConnCore) -> None:
        with self.lock:
            self.conns.add(c)
            closing = self.closing
        if closing:
            c.close()

    def conn_done(self, c: _ConnCore) -> None:
        with self.lock:
            self.conns.discard(c)
        if self.closing:
            self.maybe_free()

    def close(self) -> None:
        self.active.append(None)
        try:
            with self.lock:
                if self.closing:
                    return
                self.closing = True
                conns = list(self.conns)
            # shut down first: every in-process connection becomes closed, so calls
            # blocked in other threads return
            lib.ember_server_shutdown(self.ptr)
            for c in conns:
                c.close()
        finally:
            self.leave()

    def maybe_free(self) -> None:
        with self.lock:
            if self.freed or not self.closing or self.conns or self.active:
                return
            self.freed = True
            q, t = self.logq, self.log_thread
        lib.ember_server_shutdown(self.ptr)
        if q is not None:
            lib.emberpy_logq_install(q, self.ptr, -1)
        lib.ember_server_free(self.ptr)
        if q is not None:
            lib.emberpy_logq_close(q)  # the pump prints what is left, then ends
            if t is not None and t is not threading.current_thread():
                t.join()
                lib.emberpy_logq_free(q)
            # else: a log callback closed the server; the queue is left (a few bytes)
        reap()

    def __del__(self) -> None:
        try:
            if not self.freed:
                self.close()
        except Exception:  # pragma: no cover
            pass


class Server:
    """An embedded NATS-compatible broker.

    ``Server(...)`` creates the broker and starts it on its own threads (pass
    ``start=False`` to start later); :meth:`ready` waits until it accepts connections.
    As a context manager it waits up to 5 seconds for readiness on entry (raising if
    the server could not start) and closes everything on exit.

    Args:
        port: client port; -1 (default) picks any free port (see :attr:`client_url`),
            0 means 4222.
        host: interface to listen on (default "127.0.0.1"; nats-server's is "0.0.0.0").
        dont_listen: open no client port at all: only in-process connections work.
        server_name: the server's name (default: its id).
        logging: False (silent, the default), True (nats-server style lines on stderr),
            a callable ``fn(level: int, line: str)``, or a :class:`logging.Logger`.
            Callables run on a thread of the binding, never on a broker thread.
        log_level: "info" (default), "debug", "trace", ... or an EMBER_LOG_* int.
        max_payload, max_control_line, max_pending, max_connections, max_subscriptions,
        max_pings_out: limits (nats-server's defaults when None).
        ping_interval, write_deadline, auth_timeout: seconds (defaults when None).
        user, password, token: single-user or token authentication for TCP clients.
        no_header_support: do not advertise header support.
        start: start at once (default); False: call :meth:`start` later.

    JetStream (keyword-only):

        jetstream: enable JetStream (streams, consumers, key-value buckets); reach it with
            :meth:`ember.Connection.jetstream` or over the wire (``$JS.API.*``).
        store_dir: directory of the file store (default: ``$TMPDIR/nats/jetstream``, as
            nats-server).  A server started again on the same directory recovers its
            file streams and buckets.
        jetstream_domain: the JetStream domain (e.g. ``"embedded"``), for leaf nodes.

    Configuration and leaf nodes (keyword-only):

        config_file: a nats-server format configuration file, loaded first; the other
            arguments given explicitly override what it sets.
        leafnodes: join NATS systems as a leaf node, and/or accept leafs. A URL or a list
            of URLs (``"nats-leaf://[user:password@]host:7422"``), each one remote; or a
            dict ``{"remotes": [url | {"urls": [...], "user", "password", "token",
            "deny_imports": [...], "deny_exports": [...], "tls": bool, "tls_ca_file",
            "tls_cert_file", "tls_key_file", "credentials" (a .creds file), "nkey_seed"}],
            "port": int (accept leafs on
            it; -1 any free port), "host": str, "user", "password" (what accepted leafs
            must send), "reconnect": seconds}``.  See :attr:`leafnode_count`.
        http_port: serve nats-server's monitoring endpoints (``/varz``, ``/connz``,
            ``/subsz``, ``/jsz``, ``/leafz``, ``/healthz``) over HTTP on this port (-1: any
            free port; see :attr:`monitor_url`). :meth:`monitor` gives the same JSON
            without a port.
        http_host: interface of the monitoring port (default: ``host``).
        max_memory: bytes memory streams may use (default: 75% of RAM, as nats-server).
        max_store: bytes file streams may use (default: 1 TiB).
        sync_interval: seconds; None or 0 (default): a publish is acknowledged only
            after its message was fsync'd (group commit).  > 0: acknowledged once written
            to the OS and fsync'd at most every ``sync_interval`` seconds (faster; a power
            loss can lose acknowledged messages, a process kill cannot).
    """

    def __init__(self, port: int = -1, host: Optional[str] = "127.0.0.1",
                 dont_listen: bool = False, server_name: Optional[str] = None,
                 logging: Union[bool, LogCallback, _logging.Logger, None] = False,
                 log_level: Union[str, int] = "info",
                 max_payload: Optional[int] = None, max_control_line: Optional[int] = None,
                 max_pending: Optional[int] = None, max_connections: Optional[int] = None,
                 max_subscriptions: Optional[int] = None,
                 ping_interval: Optional[float] = None, max_pings_out: Optional[int] = None,
                 write_deadline: Optional[float] = None,
                 auth_timeout: Optional[float] = None,
                 user: Optional[str] = None, password: Optional[str] = None,
                 token: Optional[str] = None, no_header_support: bool = False,
                 start: bool = True, *, jetstream: bool = False,
                 store_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                 jetstream_domain: Optional[str] = None,
                 max_memory: Optional[int] = None, max_store: Optional[int] = None,
                 sync_interval: Optional[float] = None,
                 config_file: Optional[Union[str, "os.PathLike[str]"]] = None,
                 leafnodes: Any = None, http_port: Optional[int] = None,
                 http_host: Optional[str] = None) -> None:
        opts = ffi.new("ember_server_options *")
        lib.ember_server_options_init(opts)
        keep: List[Any] = []
        cfg = ffi.NULL
        if config_file is not None:
            pcfg = ffi.new("ember_config **")
            rc = lib.ember_config_load(pcfg, os.fspath(config_file).encode(), opts)
            if rc:
                raise error_for(rc)
            cfg = ffi.gc(pcfg[0], lib.ember_config_free)
            keep.append(cfg)
            # what the file set stays unless given here
            if port == -1 and opts.port != 0:
                port = opts.port
            if host == "127.0.0.1" and opts.host != NULL:
                host = None

        def s(v: Optional[str]) -> Any:
            if v is None:
                return NULL
            b = ffi.new("char[]", v.encode())
            keep.append(b)
            return b

        opts.port = int(port)
        if host is not None:
            opts.host = s(host)
        nofile = config_file is None
        if dont_listen or nofile:
            opts.dont_listen = bool(dont_listen)
        if server_name is not None or nofile:
            opts.server_name = s(server_name)
        if max_payload is not None:
            opts.max_payload = int(max_payload)
        if max_control_line is not None:
            opts.max_control_line = int(max_control_line)
        if max_pending is not None:
            opts.max_pending = int(max_pending)
        if max_connections is not None:
            opts.max_connections = int(max_connections)
        if max_subscriptions is not None:
            opts.max_subscriptions = int(max_subscriptions)
        if ping_interval is not None:
            opts.ping_interval_ms = int(ping_interval * 1000)
        if max_pings_out is not None:
            opts.max_pings_out = int(max_pings_out)
        if write_deadline is not None:
            opts.write_deadline_ms = int(write_deadline * 1000)
        if auth_timeout is not None:
            opts.auth_timeout_ms = int(auth_timeout * 1000)
        if user is not None or nofile:
            opts.username = s(user)
        if password is not None or nofile:
            opts.password = s(password)
        if token is not None or nofile:
            opts.auth_token = s(token)
        if no_header_support or nofile:
            opts.no_header_support = bool(no_header_support)
        if jetstream or config_file is None:
            opts.jetstream = bool(jetstream)
        if store_dir is not None:
            opts.store_dir = s(os.fspath(store_dir))
        if jetstream_domain is not None or config_file is None:
            opts.jetstream_domain = s(jetstream_domain)
        if leafnodes is not None:
            _set_leafnodes(opts, leafnodes, s, keep)
        if http_port is not None:
            opts.http_port = int(http_port)
        if http_host is not None:
            opts.http_host = s(http_host)
        if max_memory is not None:
            opts.jetstream_max_memory = int(max_memory)
        if max_store is not None:
            opts.jetstream_max_store = int(max_store)
        if sync_interval is not None:
            if sync_interval < 0:
                raise InvalidArgumentError("sync_interval must be >= 0")
            opts.jetstream_sync_interval_ms = int(round(sync_interval * 1000))
        out = ffi.new("ember_server **")
        rc = lib.ember_server_new(out, opts)
        del keep  # ember_server_new copied every string
        if rc:
            raise error_for(rc)
        self._core = _ServerCore(out[0])
        self._dont_listen = bool(opts.dont_listen)
        self._jetstream = bool(opts.jetstream)
        self._store_dir = os.fspath(store_dir) if store_dir is not None else None
        self._started = False
        try:
            if logging is True:
                self.log_to_stderr(log_level)
            elif isinstance(logging, _logging.Logger):
                self.set_logger(logging, log_level)
            elif callable(logging):
                self.set_logger(logging, log_level)
            elif logging not in (False, None):
                raise InvalidArgumentError(
                    "logging must be a bool, a callable(level, line) or a logging.Logger")
            if start:
                self.start()
        except BaseException:
            self._core.close()
            raise

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the server's thread; returns at once (see :meth:`ready`)."""
        core = self._core
        core.enter()
        try:
            rc = lib.ember_server_start(core.ptr)
            if rc:
                raise error_for(rc)
            self._started = True
        finally:
            core.leave()

    def ready(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds until the server accepts connections.  False
        when it timed out or could not start (e.g. the port is taken)."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return False
        try:
            return bool(lib.ember_server_ready_for_connections(core.ptr, to_ms(timeout)))
        finally:
            core.leave()

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Like :meth:`ready`, raising the typed error (with the library's reason, e.g.
        the listen failure) instead of returning False."""
        core = self._core
        core.enter()
        try:
            if not lib.ember_server_ready_for_connections(core.ptr, to_ms(timeout)):
                raise _ready_error()
        finally:
            core.leave()

    def shutdown(self) -> None:
        """Stop accepting, close every connection (in-process ones become closed: their
        calls raise :class:`ClosedError`) and stop the server's threads.  Idempotent.
        The object still needs :meth:`close` (or garbage collection) to free it."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return
        try:
            lib.ember_server_shutdown(core.ptr)
        finally:
            core.leave()

    def close(self) -> None:
        """Shut down, close every connection of this server and free it.  Idempotent."""
        self._core.close()

    def wait_for_shutdown(self, timeout: Optional[float] = None,
                          handle_signals: bool = False) -> bool:
        """Block until the server has shut down (or ``timeout`` seconds passed: then
        False).  With ``handle_signals`` (main thread only), SIGINT and SIGTERM shut the
        server down, as ``nats-server`` does."""
        old = {}
        if handle_signals:
            if threading.current_thread() is not threading.main_thread():
                raise InvalidArgumentError("handle_signals needs the main thread")

            def on_signal(signum: int, frame: Any) -> None:
                self.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, on_signal)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            if self._started and not self._core.closing:
                # a server still starting is not "shut down": wait for it to be ready
                self.ready(5.0 if deadline is None else max(0.0, min(5.0, timeout or 0.0)))
            while True:
                if self._core.freed or not self._running():
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)

    def _running(self) -> bool:
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return False
        try:
            return bool(lib.ember_server_ready_for_connections(core.ptr, 0))
        finally:
            core.leave()

    # ---------------------------------------------------------------- connections
    def connect(self, name: Optional[str] = None, no_echo: bool = False,
                pending_msgs_limit: Optional[int] = None,
                pending_bytes_limit: Optional[int] = None,
                error_cb: Optional[Callable[[BaseException], Any]] = None, *,
                user: Optional[str] = None, password: Optional[str] = None,
                token: Optional[str] = None, nkey_seed: Optional[str] = None,
                account: Optional[str] = None) -> Connection:
        """Open an in-process connection: no socket, works with ``dont_listen``.

        Args:
            name: connection name (monitoring).
            no_echo: do not receive this connection's own publishes.
            pending_msgs_limit, pending_bytes_limit: per-subscription limits of queued
                messages (65536 and 64 MiB by default; negative: unlimited).
            error_cb: called with the exception when a message callback raises
                (default: :func:`sys.unraisablehook`).
            user, password, token, nkey_seed: authenticate as one of the server's users,
                whose permissions then apply (:class:`ember.AuthorizationError` when refused,
                :class:`ember.PermissionsError` on a refused publish/subscribe). Without
                them the connection is the host's own and is not checked.
            account: the account the connection works in (accounts come from the
                server's ``config_file``; default ``"$G"``). With credentials the user's
                account is used and ``account`` must name it if given
                (:class:`ember.AuthorizationError` otherwise); an unknown account raises
                :class:`ember.NotFoundError`.
        """
        core = self._core
        if not self._started:
            raise ClosedError("server not started")
        opts = ffi.new("ember_conn_options *")
        lib.ember_conn_options_init(opts)
        nb = ffi.new("char[]", name.encode()) if name else NULL
        opts.name = nb
        opts.no_echo = bool(no_echo)
        creds = []
        for field, val in (("user", user), ("password", password), ("auth_token", token),
                           ("nkey_seed", nkey_seed), ("account", account)):
            if val is not None:
                b = ffi.new("char[]", val.encode())
                creds.append(b)
                setattr(opts, field, b)
        if pending_msgs_limit is not None:
            opts.pending_msgs_limit = int(pending_msgs_limit)
        if pending_bytes_limit is not None:
            opts.pending_bytes_limit = int(pending_bytes_limit)
        limits = (int(opts.pending_msgs_limit), int(opts.pending_bytes_limit))
        out = ffi.new("ember_conn **")
        core.enter()
        try:
            if core.closing:
                raise ClosedError("server closed")
            rc = lib.ember_conn_connect(out, core.ptr, opts)
            if rc:
                raise error_for(rc)
            cc = _ConnCore(out[0], core, error_cb, limits)
            core.add_conn(cc)
        finally:
            core.leave()
        return Connection(self, cc, name)

    # ---------------------------------------------------------------- logging
    def log_to_stderr(self, level: Union[str, int] = "info") -> None:
        """Print nats-server style log lines on stderr, up to ``level``."""
        core = self._core
        core.enter()
        try:
            lib.ember_server_log_to_stderr(core.ptr, _level(level))
        finally:
            core.leave()

    def set_logger(self, fn: Union[LogCallback, _logging.Logger, None],
                   level: Union[str, int] = "info") -> None:
        """Send log lines to ``fn(level, line)`` (or a :class:`logging.Logger`); None
        turns it off.  Lines are queued by the broker and handed to ``fn`` on a thread
        of the binding, so a slow ``fn`` never stalls the broker."""
        core = self._core
        if isinstance(fn, _logging.Logger):
            logger = fn

            def fn(lvl: int, line: str) -> None:  # type: ignore[misc]
                logger.log(_TO_PY_LEVEL.get(lvl, _logging.DEBUG), "%s", line)
        core.enter()
        try:
            if fn is None:
                core.log_fn = None
                if core.logq is not None:
                    lib.emberpy_logq_install(core.logq, core.ptr, -1)
                return
            with core.lock:
                if core.logq is None:
                    q = lib.emberpy_logq_new(0)
                    if q == NULL:
                        raise MemoryError("cannot allocate the log queue")
                    core.logq = q
                    t = threading.Thread(target=_log_pump, args=(core, q), daemon=True,
                                         name="ember-log")
                    core.log_thread = t
                    t.start()
                core.log_fn = fn
            lib.emberpy_logq_install(core.logq, core.ptr, _level(level))
        finally:
            core.leave()

    # ---------------------------------------------------------------- introspection
    @property
    def client_url(self) -> Optional[str]:
        """``nats://127.0.0.1:<port>`` with the port actually bound; None with
        ``dont_listen`` or before the server is ready."""
        return self._str(lib.ember_server_client_url)

    @property
    def port(self) -> int:
        """The bound client port (0 if none)."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return 0
        try:
            return int(lib.ember_server_port(core.ptr))
        finally:
            core.leave()

    @property
    def id(self) -> Optional[str]:
        return self._str(lib.ember_server_id)

    @property
    def name(self) -> Optional[str]:
        return self._str(lib.ember_server_name)

    def _str(self, fn: Callable[[Any], Any]) -> Optional[str]:
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return None
        try:
            return cstr(fn(core.ptr))
        finally:
            core.leave()

    def stats(self) -> ServerStats:
        """Message, byte, connection and subscription counters."""
        core = self._core
        st = ffi.new("ember_server_stats *")
        core.enter()
        try:
            lib.ember_server_get_stats(core.ptr, st)
        finally:
            core.leave()
        return ServerStats(st.in_msgs, st.out_msgs, st.in_bytes, st.out_bytes,
                           st.connections, st.total_connections, st.subscriptions,
                           st.slow_consumers)

    def _int(self, fn: Any) -> int:
        """An integer query of the live server (0 once it is closed)."""
        core = self._core
        try:
            core.enter()
        except ClosedError:
            return 0
        try:
            return int(fn(core.ptr))
        finally:
            core.leave()

    @property
    def leafnode_count(self) -> int:
        """The number of leaf-node links up now (dialled remotes and accepted leafs)."""
        return self._int(lib.ember_server_leafnode_count)

    @property
    def leafnode_port(self) -> int:
        """The port accepting leaf connections (``leafnodes={"port": -1}``), 0 if none."""
        return self._int(lib.ember_server_leafnode_port)

    # ---------------------------------------------------------------- monitoring
    def monitor(self, path: str = "/varz") -> Any:
        """nats-server's monitoring JSON for ``path`` (``"/varz"``, ``"connz?subs=1"``,
        ``"/subsz"``, ``"/jsz?streams=1"``, ``"/leafz"``, ``"/healthz"``, ...) as a dict,
        built from the live server without any port (docs/monitoring.md).

        Raises :class:`InvalidArgumentError` for a bad query parameter (nats-server's
        text), :class:`NotFoundError` for an unknown path, :class:`StateError` before the
        server is ready and :class:`ClosedError` after it shut down. ``/healthz`` always
        answers: see its ``"status"`` and ``"status_code"``."""
        core = self._core
        core.enter()
        try:
            out = ffi.new("char **")
            rc = lib.ember_server_monitor(core.ptr, path.encode(), out)
            if rc:
                raise error_for(rc)
            try:
                text = ffi.string(out[0]).decode("utf-8", "replace")
            finally:
                lib.ember_free(out[0])
        finally:
            core.leave()
        return _json.loads(text)

    @property
    def monitor_url(self) -> Optional[str]:
        """``http://127.0.0.1:<port>`` of the monitoring port (``http_port``), None when
        there is none or before the server is ready."""
        return self._str(lib.ember_server_monitor_url)

    @property
    def monitor_port(self) -> int:
        """The bound monitoring port, 0 when none."""
        return self._int(lib.ember_server_monitor_port)

    @property
    def is_closed(self) -> bool:
        return self._core.closing

    @property
    def jetstream_enabled(self) -> bool:
        """True when created with ``jetstream=True``."""
        return self._jetstream

    @property
    def store_dir(self) -> Optional[str]:
        """The ``store_dir`` given to the constructor (None: the library's default)."""
        return self._store_dir

    def __enter__(self) -> "Server":
        if self._started:
            self.wait_ready(5.0)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None and not core.closing:
            try:
                core.close()
            except Exception:  # pragma: no cover
                pass

    def __repr__(self) -> str:
        if self._core.closing:
            return "<ember.Server closed>"
        url = self.client_url
        return f"<ember.Server {self.name!r} {url or 'no client port'}>"


@atexit.register
def _close_all() -> None:
    """Close every live server before the interpreter finalizes, so that no library
    thread calls into Python after that."""
    for core in list(_live):
        try:
            core.close()
        except Exception:  # pragma: no cover
            pass
