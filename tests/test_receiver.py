"""The webhook receiver and the SMTP sink over real sockets."""

from __future__ import annotations

import json
import smtplib
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import requests

from notifier import signing
from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from tests.support.smtp import SmtpSink

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as server:
        yield server


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign(secret, "msg_1", timestamp, body),
        "Content-Type": "application/json",
    }


def post(receiver: WebhookReceiver, body: bytes, path: str = "/hook") -> requests.Response:
    return requests.post(receiver.url + path, data=body, headers=signed_headers(body), timeout=5)


def test_records_and_verifies_signature(receiver: WebhookReceiver) -> None:
    body = json.dumps({"job_id": "j1"}).encode()
    assert post(receiver, body, "/a/b?x=1").status_code == 200
    forged = {**signed_headers(body), "webhook-signature": "v1,AAAA"}
    requests.post(receiver.url, data=body, headers=forged, timeout=5)
    first, second = receiver.wait_for(2)
    assert first.path == "/a/b?x=1" and first.json == {"job_id": "j1"} and first.body == body
    assert first.headers["webhook-id"] == "msg_1" and first.signature_ok is True
    assert second.signature_ok is False and first.answered_status == 200
    assert first.received_at <= time.time()


def test_no_secret_means_no_verdict_and_non_json_body() -> None:
    with WebhookReceiver() as receiver:
        requests.post(receiver.url, data=b"plain", timeout=5)
        [webhook] = receiver.wait_for(1)
        assert webhook.signature_ok is None and webhook.json is None
    with pytest.raises(signing.InvalidSecret):
        WebhookReceiver(secret="not-a-secret")


def test_programmed_responses(receiver: WebhookReceiver) -> None:
    receiver.respond_with(500, count=2)
    receiver.respond_with(429, count=1, headers={"Retry-After": "1"})
    statuses = [post(receiver, b"{}").status_code for _ in range(4)]
    assert statuses == [500, 500, 429, 200]
    receiver.respond_with(503)
    assert [post(receiver, b"{}").status_code for _ in range(2)] == [503, 503]
    receiver.respond_with(410, count=1)
    assert [post(receiver, b"{}").status_code for _ in range(2)] == [410, 200]
    answered = [webhook.answered_status for webhook in receiver.received]
    assert answered == [500, 500, 429, 200, 503, 503, 410, 200]


def test_retry_after_header_and_delay(receiver: WebhookReceiver) -> None:
    receiver.respond_with(429, count=1, headers={"Retry-After": "2"}, delay=0.2)
    started = time.monotonic()
    answer = post(receiver, b"{}")
    assert answer.headers["Retry-After"] == "2" and time.monotonic() - started >= 0.2


def test_wait_for_predicate_callback_and_timeout(receiver: WebhookReceiver) -> None:
    seen: list[ReceivedWebhook] = []
    receiver.on_receive = seen.append
    post(receiver, b'{"n": 1}')
    post(receiver, b'{"n": 2}')
    assert [w.json for w in receiver.wait_for(lambda w: w.json == {"n": 2})] == [{"n": 2}]
    assert len(seen) == 2
    with pytest.raises(TimeoutError, match="expected 3 webhook"):
        receiver.wait_for(3, timeout=0.1)
    receiver.clear()
    assert receiver.received == []


def test_stop_interrupts_a_delay() -> None:
    receiver = WebhookReceiver()
    receiver.start()
    receiver.respond_with(200, delay=30)
    threading.Timer(0.2, receiver.stop).start()
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.post(receiver.url, data=b"{}", timeout=10)
    assert time.monotonic() - started < 5


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def send_mail(sink: SmtpSink, to: str = "ops@example.com") -> None:
    message = EmailMessage()
    message["From"] = "notifier@example.com"
    message["To"] = to
    message["Subject"] = "Job j1 DELIVERED"
    message.set_content("done")
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        assert not client.has_extn("starttls")
        client.send_message(message)


def test_smtp_sink_receives(sink: SmtpSink) -> None:
    send_mail(sink)
    [received] = sink.wait_for(1)
    assert received.mail_from == "notifier@example.com" and received.rcpt_tos == ["ops@example.com"]
    assert received.message["Subject"] == "Job j1 DELIVERED" and b"done" in received.raw


def test_smtp_sink_refuses_on_demand(sink: SmtpSink) -> None:
    sink.reply_with("451 4.3.0 try later")
    with pytest.raises(smtplib.SMTPDataError) as temporary:
        send_mail(sink)
    assert temporary.value.smtp_code == 451
    sink.reply_with("550 5.1.1 no such user", at="RCPT")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_mail(sink)
    send_mail(sink)
    assert len(sink.wait_for(1)) == 1
    assert [attempt.reply[:3] for attempt in sink.attempts] == ["451", "250"]
