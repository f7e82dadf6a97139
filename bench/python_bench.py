#!/usr/bin/env python3
"""Python binding benchmark: in-process next to loopback TCP, measured in one run.

    python bench/python_bench.py [--n 20000] [--rounds 3]

Request/reply: a synchronous loop against a "hello.world" responder written in Python,
  - in-process, responder in "inline" mode (runs in the requester's thread),
  - in-process, responder in "dispatch" mode (the library's dispatcher thread),
  - over loopback TCP with ember.testing.RawClient (a raw-socket NATS client in
    Python), answered by the same inline responder.
Publish -> receive of 128-byte messages (throughput):
  - in-process to an inline callback, to a dispatch callback, and to a next_msg()
    reader thread,
  - over loopback TCP: a RawClient publisher (batched writes) to a RawClient
    subscriber thread.

Each figure is the median of --rounds rounds; the ratios compare in-process with TCP
measured in the same run on the same machine.  Target: in-process request/reply from
Python <= 10 us.  The TCP side is pure-Python protocol handling, so it measures what a
Python program would see, not the broker's network path (see bench/ember-bench.c).
"""
import argparse
import os
import statistics
import threading
import time

import ember
from ember.testing import RawClient

PAYLOAD = b"x" * 128


def median_of(rounds, fn):
    return statistics.median(fn() for _ in range(rounds))


def rr_inproc(conn, subject, n):
    for _ in range(min(2000, n)):
        conn.request(subject, b"hi")
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request(subject, b"hi")
    return (time.perf_counter() - t0) / n * 1e6


def rr_tcp(url, subject, n):
    with RawClient(url) as c:
        for _ in range(min(500, n)):
            c.request(subject, b"hi")
        t0 = time.perf_counter()
        for _ in range(n):
            c.request(subject, b"hi")
        return (time.perf_counter() - t0) / n * 1e6


def pub_inproc_cb(srv, mode, n):
    pub = srv.connect()
    sub_conn = srv.connect(pending_msgs_limit=-1, pending_bytes_limit=-1)
    done = threading.Event()
    count = [0]

    def cb(msg):
        count[0] += 1
        if count[0] == n:
            done.set()

    sub_conn.subscribe("bench.pub", cb=cb, mode=mode)
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish("bench.pub", PAYLOAD)
    done.wait(60)
    dt = time.perf_counter() - t0
    assert count[0] == n, count[0]
    pub.close()
    sub_conn.close()
    return n / dt


def pub_inproc_next_msg(srv, n):
    pub = srv.connect()
    sub = srv.connect(pending_msgs_limit=-1, pending_bytes_limit=-1).subscribe("bench.nm")
    got = [0]

    def reader():
        for _ in range(n):
            sub.next_msg(10)
            got[0] += 1

    t = threading.Thread(target=reader)
    t0 = time.perf_counter()
    t.start()
    for _ in range(n):
        pub.publish("bench.nm", PAYLOAD)
    t.join()
    dt = time.perf_counter() - t0
    assert got[0] == n
    sub.connection.close()
    pub.close()
    return n / dt


def pub_tcp(url, n):
    sub = RawClient(url)
    sid = sub.subscribe("bench.tcp")
    sub.flush()
    got = [0]

    def reader():
        for _ in range(n):
            sub.next_msg(10, sid=sid)
            got[0] += 1

    pub = RawClient(url)
    frame = RawClient.encode_pub("bench.tcp", PAYLOAD)
    batch = 64
    t = threading.Thread(target=reader)
    t0 = time.perf_counter()
    t.start()
    left = n
    while left:
        k = min(batch, left)
        pub.send_raw(frame * k)
        left -= k
    t.join()
    dt = time.perf_counter() - t0
    assert got[0] == n
    pub.close()
    sub.close()
    return n / dt


def main():
    ap = argparse.ArgumentParser(description="Ember Python binding benchmark")
    ap.add_argument("--n", type=int, default=20000, help="iterations per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, r = args.n, args.rounds

    with ember.Server() as srv:
        conn = srv.connect()
        conn.subscribe("hello.inline", cb=lambda m: m.respond(b"hello there"), mode="inline")
        responder = srv.connect()
        responder.subscribe("hello.dispatch", cb=lambda m: m.respond(b"hello there"))

        rr_inline = median_of(r, lambda: rr_inproc(conn, "hello.inline", n))
        rr_disp = median_of(r, lambda: rr_inproc(conn, "hello.dispatch", n))
        rr_net = median_of(r, lambda: rr_tcp(srv.client_url, "hello.inline", max(2000, n // 4)))

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"ember {ember.__version__} Python binding, {n} iterations, median of {r} "
              f"({os.cpu_count()} CPUs, load average {load})")
        print("request/reply (us per request, lower is better)")
        print(f"  in-process, inline responder    {rr_inline:8.2f}")
        print(f"  in-process, dispatch responder  {rr_disp:8.2f}")
        print(f"  loopback TCP (raw socket)       {rr_net:8.2f}")
        print(f"  ratio TCP / in-process inline   {rr_net / rr_inline:8.1f}x")
        print(f"  ratio TCP / in-process dispatch {rr_net / rr_disp:8.1f}x")
        verdict = "met" if rr_inline <= 10.0 else "NOT met"
        print(f"  target in-process <= 10 us:     {verdict}")

        pn = n * 5
        p_inline = median_of(r, lambda: pub_inproc_cb(srv, "inline", pn))
        p_disp = median_of(r, lambda: pub_inproc_cb(srv, "dispatch", pn))
        p_next = median_of(r, lambda: pub_inproc_next_msg(srv, pn))
        p_tcp = median_of(r, lambda: pub_tcp(srv.client_url, pn))
        print("publish -> receive, 128-byte messages (msgs/s, higher is better)")
        print(f"  in-process, inline callback     {p_inline:12,.0f}")
        print(f"  in-process, dispatch callback   {p_disp:12,.0f}")
        print(f"  in-process, next_msg thread     {p_next:12,.0f}")
        print(f"  loopback TCP (raw socket)       {p_tcp:12,.0f}")
        print(f"  ratio in-process inline / TCP   {p_inline / p_tcp:12.1f}x")
        print(f"  ratio in-process dispatch / TCP {p_disp / p_tcp:12.1f}x")
        conn.close()
        responder.close()


if __name__ == "__main__":
    main()
