"""AfterAck: work after an ack waits for the acks in flight, and its failures are told."""

from __future__ import annotations

import threading

from bot.listeners import background
from bot.listeners.background import AckGate, AfterAck


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.done = threading.Event()

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)
        self.done.set()


def test_work_waits_until_no_request_is_being_answered():
    gate = AckGate()
    after = AfterAck(gate, workers=1)
    ran = threading.Event()
    try:
        with gate.answering():
            after.submit(lambda body, respond, client: ran.set(), {}, None, None)
            assert not ran.wait(0.2)  # an ack is still being given: the work holds back
        assert ran.wait(5)  # ...and goes as soon as none is
    finally:
        after.shutdown()


def test_the_wait_is_bounded_under_a_stream_of_requests():
    gate = AckGate()
    assert gate.wait_quiet(0.01)
    with gate.answering():
        assert gate.wait_quiet(0.05) is False  # gives up waiting; the work then runs anyway


def test_work_after_a_lone_request_goes_at_once_after_a_burst_it_waits(monkeypatch):
    monkeypatch.setattr(background, "QUIET_GAP_S", 60.0)  # a burst is never over in this test
    gate = AckGate()
    with gate.answering():
        pass
    assert gate.wait_quiet(0)  # it came alone
    with gate.answering():  # a second one right after it: a burst
        pass
    assert gate.wait_quiet(0.01) is False


def test_a_failure_is_answered_privately_with_a_reference_and_no_internals(caplog):
    after = AfterAck(AckGate(), workers=1)
    respond = Recorder()

    def broken(body, respond, client):
        raise RuntimeError("token=s3cr3t in a vendor message")

    try:
        after.submit(broken, {"response_url": "https://hooks.example/1"}, respond, None)
        assert respond.done.wait(5)
    finally:
        after.shutdown()
    (said,) = respond.calls
    assert said["text"].startswith("Something went wrong (ref ")
    assert said["response_type"] == "ephemeral" and said["replace_original"] is False
    assert "s3cr3t" not in said["text"]
    assert any("listener failed (ref" in r.getMessage() for r in caplog.records)


def test_a_failure_without_a_response_url_is_logged_only(caplog):
    after = AfterAck(AckGate(), workers=1)
    respond = Recorder()

    def broken(body, respond, client):
        raise ValueError("boom")

    after.submit(broken, {}, respond, None)
    after.shutdown()  # waits for the work
    assert respond.calls == []
    assert any("listener failed" in r.getMessage() for r in caplog.records)
