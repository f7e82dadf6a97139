"""DEMO.md steps 6-10 from Python, against a local hub.

    python3 examples/python/leaf_demo.py <hub leafnodes URL> <hub client URL> [store dir]

The hub is any NATS server with JetStream and a leafnodes port (scripts/demo-leaf.sh starts
Debian's nats-server as one). The application embeds Ember with JetStream in the domain
"embedded" and joins the hub as a leaf; a client of the hub then reaches the in-process
responder, manages the embedded JetStream and mirrors the embedded stream into the hub.

No NATS client for Python is installed here, so the hub's client below is a few lines of
the NATS text protocol over a socket (CONNECT, SUB, PUB, MSG): enough for requests.
"""
import json
import os
import socket
import sys
import tempfile
import time

import ember


class HubClient:
    """A minimal NATS client: synchronous requests over one TCP connection."""

    def __init__(self, url: str) -> None:
        host, port = url.split("://", 1)[-1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buf = b""
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
                          b"SUB _INBOX.demo.* 1\r\nPING\r\n")
        while self._line() != b"PONG":
            pass
        self.n = 0

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def publish(self, subject: str, data: bytes, reply: str = "") -> None:
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(),
                                                       len(data), data))

    def request(self, subject: str, data: bytes = b"", timeout: float = 1.0) -> bytes:
        self.n += 1
        inbox = "_INBOX.demo.%d" % self.n
        self.publish(subject, data, inbox)
        self.sock.settimeout(timeout)
        try:
            while True:
                line = self._line()
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                    continue
                parts = line.split()
                if parts[0] in (b"MSG", b"HMSG"):
                    size = int(parts[-1])
                    hlen = int(parts[-2]) if parts[0] == b"HMSG" else 0
                    body = self._read(size)
                    if parts[1].decode() != inbox:
                        continue  # a late answer to an earlier attempt
                    if hlen and b" 503" in body[:hlen].split(b"\r\n")[0]:
                        raise TimeoutError("no responders")
                    return body[hlen:]
        finally:
            self.sock.settimeout(5)

    def request_retry(self, subject: str, data: bytes = b"") -> bytes:
        for _ in range(50):  # while interest crosses the link
            try:
                return self.request(subject, data)
            except (TimeoutError, socket.timeout):
                time.sleep(0.1)
        raise TimeoutError(subject)


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    leaf_url, hub_url = sys.argv[1], sys.argv[2]
    store = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="ember-leaf-demo-")

    # Step 6: JetStream in the application, domain "embedded"; step 7: the leaf remote.
    with ember.Server(server_name="embedded-app", dont_listen=True, jetstream=True,
                      store_dir=store, jetstream_domain="embedded",
                      leafnodes=leaf_url) as server:
        deadline = time.monotonic() + 5
        while server.leafnode_count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.leafnode_count == 0:
            print("the leaf link to %s did not come up" % leaf_url)
            return 1
        print("step 7: leaf link up to", leaf_url)
        conn = server.connect()
        conn.subscribe("hello.world", cb=lambda msg: msg.respond(b"hello there"))

        hub = HubClient(hub_url)
        # Step 8: reach in from the hub.
        answer = hub.request_retry("hello.world", b"hi")
        print("step 8: the hub's request to hello.world got:", answer.decode())

        # Step 9: manage the embedded JetStream from the hub.
        names = json.loads(hub.request_retry("$JS.embedded.API.STREAM.NAMES"))
        print("step 9: streams in the embedded domain:", names.get("streams"))
        hub.request_retry("$JS.embedded.API.STREAM.CREATE.events",
                          json.dumps({"name": "events", "subjects": ["events.>"]}).encode())
        hub.request_retry("events.123", b"event 1")  # its PubAck: the stream takes it
        for _ in range(99):
            hub.publish("events.123", b"event")
        js = conn.jetstream()
        deadline = time.monotonic() + 5
        while js.stream_info("events").msgs < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        held = js.stream_info("events").msgs
        print("step 9: the embedded stream 'events' holds %d messages" % held)

        # Step 10: back up to the cloud (a mirror left by an earlier run goes first).
        hub.request("$JS.API.STREAM.DELETE.events_mirror")
        hub.request_retry("$JS.API.STREAM.CREATE.events_mirror", json.dumps({
            "name": "events_mirror",
            "mirror": {"name": "events",
                       "external": {"api": "$JS.embedded.API", "deliver": ""}}}).encode())
        mirrored = -1
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            info = json.loads(hub.request_retry("$JS.API.STREAM.INFO.events_mirror"))
            mirrored = info.get("state", {}).get("messages", -1)
            if mirrored == 100:
                break
            time.sleep(0.1)
        print("step 10: the hub's mirror 'events_mirror' holds %d messages" % mirrored)
        ok = answer == b"hello there" and held == 100 and mirrored == 100
        print("leaf demo: all steps done" if ok else "leaf demo: FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
