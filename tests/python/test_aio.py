import asyncio
import threading

import pytest

import ember
import ember.aio
from ember.testing import RawClient


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_async_for_and_callbacks_run_on_loop_thread(inproc_server):
    async def main():
        loop_thread = threading.get_ident()
        async with await ember.aio.connect(inproc_server) as nc:
            threads = set()

            async def hello(msg):
                threads.add(threading.get_ident())
                await asyncio.sleep(0)
                msg.respond(b"hello there")

            await nc.subscribe("hello.world", cb=hello)
            r = await nc.request("hello.world", b"hi")
            assert r.data == b"hello there"
            assert threads == {loop_thread}

            sub = await nc.subscribe("events.>")
            for i in range(5):
                nc.publish(f"events.{i}", str(i).encode())
            got = []
            async for msg in sub:
                assert threading.get_ident() == loop_thread
                got.append((msg.subject, msg.data))
                if len(got) == 5:
                    break
            assert got == [(f"events.{i}", str(i).encode()) for i in range(5)]
            assert "events" in repr(sub) and "aio" in repr(nc)
    run(main())


def test_next_msg_timeout_and_plain_callback(inproc_server):
    async def main():
        nc = await ember.aio.connect(inproc_server)
        sub = await nc.subscribe("x")
        with pytest.raises(ember.TimeoutError):
            await sub.next_msg(0.05)
        seen = []
        await nc.subscribe("y", cb=lambda m: seen.append(m.data))
        nc.publish("y", b"1")
        nc.publish("x", b"2")
        assert (await sub.next_msg(1)).data == b"2"
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == [b"1"]
        with pytest.raises(TypeError):
            await (await nc.subscribe("z", cb=lambda m: None)).next_msg()
        await nc.close()
        assert nc.is_closed
    run(main())


def test_request_errors(inproc_server):
    async def main():
        async with await ember.aio.connect(inproc_server) as nc:
            with pytest.raises(ember.NoRespondersError):
                await nc.request("nobody", b"")
            await nc.subscribe("mute", cb=lambda m: None)
            with pytest.raises(ember.TimeoutError):
                await nc.request("mute", b"", timeout=0.05)
    run(main())


def test_concurrent_requests_gather(inproc_server):
    async def main():
        async with await ember.aio.connect(inproc_server) as nc:
            async def echo(m):
                await asyncio.sleep(0.01)
                m.respond(m.data)

            await nc.subscribe("echo", cb=echo)
            rs = await asyncio.gather(*(nc.request("echo", str(i).encode(), timeout=5)
                                        for i in range(20)))
            assert [r.data for r in rs] == [str(i).encode() for i in range(20)]
    run(main())


def test_unsubscribe_ends_async_iteration(inproc_server):
    async def main():
        async with await ember.aio.connect(inproc_server) as nc:
            sub = await nc.subscribe("u")
            nc.publish("u", b"a")
            nc.publish("u", b"b")
            await asyncio.sleep(0.05)
            sub.unsubscribe()
            got = [m.data async for m in sub]
            assert got == [b"a", b"b"]
            with pytest.raises(ember.ClosedError):
                await sub.next_msg(0)
    run(main())


def test_server_shutdown_ends_iteration(ember_server):
    async def main():
        nc = await ember.aio.connect(ember_server)
        sub = await nc.subscribe("s")

        async def consume():
            return [m.data async for m in sub]

        task = asyncio.ensure_future(consume())
        nc.publish("s", b"1")
        await asyncio.sleep(0.05)
        ember_server.shutdown()
        got = await asyncio.wait_for(task, 5)
        assert got == [b"1"]
        assert nc.is_closed
        await nc.close()
    run(main())


def test_messages_from_tcp_reach_loop(ember_server):
    async def main():
        async with await ember.aio.connect(ember_server) as nc:
            sub = await nc.subscribe("from.tcp")
            c = RawClient(ember_server.client_url)
            c.publish("from.tcp", b"over the wire")
            c.flush()
            m = await sub.next_msg(2)
            assert m.data == b"over the wire"
            c.close()
    run(main())


def test_callback_task_exception_reported(inproc_server, monkeypatch):
    import sys
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    async def main():
        async with await ember.aio.connect(inproc_server) as nc:
            async def bad(m):
                raise RuntimeError("async cb failed")

            await nc.subscribe("b", cb=bad)
            nc.publish("b")
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
    run(main())
    assert seen and isinstance(seen[0].exc_value, RuntimeError)


def test_drain_runs_pending_then_closes(inproc_server):
    async def main():
        nc = await ember.aio.connect(inproc_server)
        got = []

        async def slow(m):
            await asyncio.sleep(0.02)
            got.append(m.data)

        await nc.subscribe("d", cb=slow)
        for i in range(3):
            nc.publish("d", str(i).encode())
        await nc.drain()
        assert sorted(got) == [b"0", b"1", b"2"]
        assert nc.is_closed
    run(main())


def test_async_slow_consumer(inproc_server):
    async def main():
        async with await ember.aio.connect(inproc_server) as nc:
            sub = await nc.subscribe("sc", pending_limits=(2, -1))
            assert sub.pending_limits == (2, -1)
            for i in range(5):
                nc.publish("sc", str(i).encode())
            await asyncio.sleep(0.05)
            with pytest.raises(ember.SlowConsumerError):
                await sub.next_msg(0)
            assert (await sub.next_msg(0)).data == b"0"
    run(main())
