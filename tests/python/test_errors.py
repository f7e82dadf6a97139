import builtins

import pytest

import ember
from ember._ember import lib
from ember.errors import error_for


@pytest.mark.parametrize("code,cls,status", [
    (lib.EMBER_EINVAL, ember.InvalidArgumentError, "invalid argument"),
    (lib.EMBER_ETIMEDOUT, ember.TimeoutError, "timeout"),
    (lib.EMBER_ENORESPONDERS, ember.NoRespondersError, "no responders available for request"),
    (lib.EMBER_ECLOSED, ember.ClosedError, None),
    (lib.EMBER_EMAXPAYLOAD, ember.MaxPayloadError, None),
    (lib.EMBER_ENOTFOUND, ember.NotFoundError, None),
    (lib.EMBER_EEXISTS, ember.ExistsError, None),
    (lib.EMBER_EWRONGSEQ, ember.WrongSequenceError, None),
    (lib.EMBER_ESLOWCONSUMER, ember.SlowConsumerError, None),
    (lib.EMBER_EIO, ember.EmberIOError, None),
    (lib.EMBER_ENOMEM, ember.NoMemoryError, None),
    (lib.EMBER_ELIMIT, ember.LimitError, None),
    (lib.EMBER_ESTATE, ember.StateError, None),
])
def test_every_status_has_a_typed_error(code, cls, status):
    e = error_for(code, "detail text")
    assert type(e) is cls and isinstance(e, ember.Error)
    assert e.code == code and str(e) == "detail text"
    assert e.status and (status is None or e.status == status)
    # without detail: the code's name
    assert str(error_for(code, "")) == e.status


def test_builtin_bases():
    assert issubclass(ember.TimeoutError, builtins.TimeoutError)
    assert issubclass(ember.InvalidArgumentError, ValueError)
    assert issubclass(ember.NotFoundError, LookupError)
    assert issubclass(ember.EmberIOError, OSError)
    assert issubclass(ember.NoMemoryError, MemoryError)


def test_error_carries_last_error_message(ember_conn):
    with pytest.raises(ember.InvalidArgumentError) as ei:
        ember_conn.subscribe("bad subject")
    assert str(ei.value) == 'invalid subject "bad subject"'
    with pytest.raises(ember.MaxPayloadError) as ei:
        ember_conn.publish("x", b"." * (1024 * 1024 + 1))
    assert "maximum payload exceeded" in str(ei.value)


def test_errors_are_per_thread(ember_conn):
    import threading
    msgs = {}

    def fail(name, subject):
        try:
            ember_conn.publish(subject)
        except ember.Error as e:
            msgs[name] = str(e)

    ts = [threading.Thread(target=fail, args=(f"t{i}", f"bad subject {i}")) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert msgs == {f"t{i}": f'invalid publish subject "bad subject {i}"' for i in range(4)}
