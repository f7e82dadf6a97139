#!/usr/bin/env python3
"""DEMO.md steps 1-5 from Python.

    python examples/python/demo.py                 embed a broker on a free port, answer
                                                   hello.world, ask it in-process and over
                                                   TCP, show dont_listen, measure, exit
    python examples/python/demo.py --port 4222     the classic port
    python examples/python/demo.py --dont-listen   the main server opens no client port
    python examples/python/demo.py --quiet         no server log lines
    python examples/python/demo.py --wait          keep running until SIGINT/SIGTERM (then
                                                   try `nats req hello.world hi` or any
                                                   NATS client)

No Python NATS client is packaged here, so the "outside client" is ember.testing.RawClient:
a few dozen lines speaking the NATS text protocol over a plain socket.
"""
import argparse
import socket
import sys
import time

import ember
from ember.testing import RawClient


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=-1, help="client port (-1: any free port)")
    ap.add_argument("--dont-listen", action="store_true", help="open no client port")
    ap.add_argument("--quiet", action="store_true", help="no server log lines")
    ap.add_argument("--wait", action="store_true", help="serve until SIGINT/SIGTERM")
    ap.add_argument("-n", type=int, default=20000, help="requests to measure")
    args = ap.parse_args()

    # Step 1: embed. Options start from nats-server's defaults; the server starts on its
    # own threads without blocking us, and we wait (at most 5 s) until it is ready.
    srv = ember.Server(port=args.port, dont_listen=args.dont_listen, start=False)
    # Step 3: logging is off by default; one call turns on nats-server style lines.
    if not args.quiet:
        srv.log_to_stderr("info")
    srv.start()
    try:
        srv.wait_ready(5.0)
    except ember.Error as e:
        print(f"server not ready: {e}", file=sys.stderr)
        srv.close()
        return 1
    url = srv.client_url
    print(f"server ready, client URL: {url or '(none: dont_listen)'}")

    # Step 4: an in-process connection: no socket, no protocol.
    conn = srv.connect(name="demo")

    # Step 2: a tiny microservice. "inline" runs the responder in the requester's thread
    # for in-process requests (a function call); TCP requests reach it on a binding
    # thread, so the broker never waits for Python.
    conn.subscribe("hello.world", cb=lambda msg: msg.respond(b"hello there"), mode="inline")
    print("in-process request got:", conn.request("hello.world", b"hi").data.decode())

    # An outside client over TCP: the application has become a microservice.
    if url is None:
        print("TCP client: no port to connect to (dont_listen), as expected")
    else:
        with RawClient(url, name="outside") as tcp:
            print("TCP request got:", tcp.request("hello.world", b"hi").data.decode())
            # one subject space: in-process and TCP clients reach each other
            sub = conn.subscribe("news")
            tcp.publish("news", b"from the network")
            tcp.flush()
            print("in-process subscriber got:", sub.next_msg(1).data.decode())
            sub.unsubscribe()

    # Step 4, the other half: a server that doesn't listen. The network fails, the
    # in-process connection works.
    port = free_port()
    with ember.Server(port=port, dont_listen=True) as hidden:
        try:
            RawClient(f"nats://127.0.0.1:{port}", timeout=1).close()
            print("unexpected: TCP connect worked")
        except OSError as e:
            print(f"dont_listen server: TCP client fails ({e.__class__.__name__})")
        with hidden.connect() as c:
            c.subscribe("hello.world", cb=lambda m: m.respond(b"hello from inside"),
                        mode="inline")
            print("dont_listen server: in-process request got:",
                  c.request("hello.world", b"hi").data.decode())

    # Step 5: measure a synchronous request/reply loop, in-process vs loopback TCP.
    n = args.n
    for _ in range(1000):
        conn.request("hello.world", b"hi")
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request("hello.world", b"hi")
    inproc = (time.perf_counter() - t0) / n * 1e6
    print(f"request/reply in-process: {inproc:.2f} us")
    if url is not None:
        with RawClient(url) as tcp:
            m = max(1000, n // 4)
            for _ in range(200):
                tcp.request("hello.world", b"hi")
            t0 = time.perf_counter()
            for _ in range(m):
                tcp.request("hello.world", b"hi")
            over_tcp = (time.perf_counter() - t0) / m * 1e6
        print(f"request/reply over loopback TCP: {over_tcp:.2f} us "
              f"(in-process is {over_tcp / inproc:.1f}x faster)")

    if args.wait:
        # Step 1's end: wait for shutdown; SIGINT/SIGTERM end server and program together.
        print("waiting for SIGINT/SIGTERM ...", flush=True)
        srv.wait_for_shutdown(handle_signals=True)
    conn.close()
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
