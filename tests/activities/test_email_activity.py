"""The e-mail activity: the outbox records every message first; delivery failures raise so Temporal retries."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, EmailRequest, SmtpSettings
from store.gateway import SandboxGateway
from store.tables import EmailMessage
from starter.processes import free_port
from tests.factories import org_with_method

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)


def _request(key: str = "payment_failed:INV-1:1") -> EmailRequest:
    return EmailRequest(key=key, org_id="acme", kind="payment_failed", at=AT,
                        data={"invoice": "INV-1", "amount": "10.00", "currency": "USD", "failure_code": "card_declined"})


def _outbox(db) -> list[EmailMessage]:
    with db.session() as s:
        return list(s.exec(select(EmailMessage)).all())


async def test_undeliverable_message_is_recorded_and_raises_for_a_retry(db, smtp_server):
    org_with_method(db, SandboxGateway(db), None, billing_email="ap@acme.test", only_invoice_emails=True)
    down = EmailActivities(db, SmtpSettings(host="127.0.0.1", port=free_port(), timeout_seconds=2))
    with pytest.raises(OSError):
        await ActivityEnvironment().run(down.send_email, _request())
    [message] = _outbox(db)
    assert json.loads(message.recipients) == ["ap@acme.test"] and message.delivered_at is None
    assert message.attempts == 1 and message.last_error

    inbox, settings = smtp_server
    before = len(inbox.messages)
    receipt = await ActivityEnvironment().run(EmailActivities(db, settings).send_email, _request())
    assert receipt.recipients == ["ap@acme.test"]
    [message] = _outbox(db)
    assert message.delivered_at is not None and message.attempts == 2
    assert len(inbox.messages) == before + 1
    # A retried activity (same key) neither records nor sends the message again.
    await ActivityEnvironment().run(EmailActivities(db, settings).send_email, _request())
    assert len(_outbox(db)) == 1 and len(inbox.messages) == before + 1
