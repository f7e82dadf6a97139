"""Shared helpers for the Python binding's tests.

The ``ember_server`` / ``ember_conn`` fixtures come from ``ember.pytest_plugin``, which
the installed package registers through its pytest11 entry point."""
import os
import threading
import time

import pytest

import ember


def wait_for(cond, timeout=5.0, interval=0.002):
    """Poll cond() until true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def thread_count():
    return threading.active_count()


def os_thread_count():
    return len(os.listdir("/proc/self/task"))


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def inproc_server():
    """A server with no client port (in-process connections only)."""
    with ember.Server(dont_listen=True) as srv:
        yield srv
