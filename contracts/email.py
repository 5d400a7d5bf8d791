"""Contract of the email activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from pydantic import BaseModel
from temporalio import activity


class EmailRequest(BaseModel):
    key: str  # business key, e.g. "payment_failed:INV-202701-000001:1": a retried activity sends once
    org_id: str
    kind: str
    data: dict[str, str] = {}
    at: datetime


class EmailReceipt(BaseModel):
    key: str
    recipients: list[str]
    subject: str


class EmailActivities:
    """What workflows call (activities/email.py implements it, registered under the same names)."""

    @activity.defn(name='send_email')
    async def send_email(self, request: EmailRequest) -> EmailReceipt:
        """The send_email activity."""
