#!/usr/bin/env python3
"""Key-value and JetStream from Python (DEMO.md step 6): an embedded broker with
JetStream keeps an application's settings in a bucket and its events in a stream, on
disk, inside the process.

    python examples/python/kv.py                  store in a temporary directory
    python examples/python/kv.py --store data     keep the store: run it twice and the
                                                  second run finds the first one's data
"""
import argparse
import sys
import tempfile
import threading

import ember


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="JetStream store directory (default: a temporary one)")
    args = ap.parse_args()
    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="ember-kv-")
        args.store = tmp.name

    with ember.Server(dont_listen=True, server_name="app", jetstream=True,
                      store_dir=args.store, jetstream_domain="embedded") as srv:
        conn = srv.connect(name="kv-example")
        js = conn.jetstream()

        # --- a key-value bucket: settings that survive restarts
        kv = js.create_key_value("settings", history=5)
        try:
            previous = kv.get("theme")
            print(f"found theme={previous.value.decode()!r} from an earlier run "
                  f"(revision {previous.revision}, written {previous.created:%H:%M:%S})")
        except ember.NotFoundError:
            print("no theme yet: first run")

        # watch the bucket: the current values, then None, then every change
        changes = []
        initial_done = threading.Event()
        tmp_deleted = threading.Event()

        def on_change(entry):          # runs on the connection's dispatcher thread
            if entry is None:
                initial_done.set()
            elif initial_done.is_set():
                changes.append(f"{entry.operation} {entry.key}")
                if entry.key == "tmp" and entry.operation == ember.KvOp.DEL:
                    tmp_deleted.set()

        watcher = kv.watch(cb=on_change)
        initial_done.wait(5)

        rev = kv.put("theme", b"dark")
        kv.update("theme", b"light", last=rev)           # compare-and-set
        try:
            kv.update("theme", b"stale", last=rev)       # someone else won: refused
        except ember.WrongSequenceError as e:
            print(f"stale update refused: {e}")
        try:
            kv.create("language", b"en")                  # only if it has no value
        except ember.WrongSequenceError:
            pass                                          # kept from an earlier run
        kv.put("tmp", b"x")
        kv.delete("tmp")
        print("keys:", kv.keys())
        print("theme history:", [e.value.decode() for e in kv.history("theme")])

        # --- a stream with a pull consumer
        js.add_stream("EVENTS", subjects=["events.>"])
        futs = [js.publish_async("events.click", f"click {i}".encode()) for i in range(100)]
        last = [f.result() for f in futs][-1]
        print(f"stored 100 events, last sequence {last.seq}")
        js.add_consumer("EVENTS", "reporter", filter_subject="events.click")
        batch = js.fetch("EVENTS", "reporter", batch=10, timeout=1.0)
        for msg in batch:
            msg.ack()
        print(f"fetched and acked {len(batch)}; "
              f"{js.consumer_info('EVENTS', 'reporter').num_pending} pending")

        tmp_deleted.wait(5)
        watcher.stop()
        print("changes seen by the watcher:", changes)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
