"""E-mail activity: record the message in the outbox, then deliver it over SMTP (Temporal retries delivery)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from email.message import EmailMessage as MimeMessage

import aiosmtplib
from pydantic import BaseModel
from sqlmodel import select
from temporalio import activity

from activities._context import activity_log_context
from store.db import Database
from billing.emails import billing_recipients, render
from store.tables import BillingProfile, EmailMessage, OrgMember, Role
from contracts.email import EmailRequest, EmailReceipt  # noqa: F401


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8025
    sender: str = os.environ.get("BILLING_EMAIL_FROM", "billing@billing.local")
    timeout_seconds: float = 10.0


class EmailActivities:
    def __init__(self, db: Database, smtp: SmtpSettings) -> None:
        self.db = db
        self.smtp = smtp

    @activity.defn(name="send_email")
    async def send_email(self, request: EmailRequest) -> EmailReceipt:
        return await self.deliver(request)

    async def deliver(self, request: EmailRequest, secret_data: dict[str, str] | None = None) -> EmailReceipt:
        """Record the message in the outbox, then send it. `secret_data` (an activation code) goes into the
        message sent and nowhere else: the outbox keeps the rendering of `request.data`, which masks it."""
        with activity_log_context(org_id=request.org_id, email_kind=request.kind) as log:
            message = await asyncio.to_thread(self._record, request)
            receipt = EmailReceipt(key=message.key, recipients=json.loads(message.recipients),
                                   subject=message.subject)
            if message.delivered_at is not None:
                return receipt
            if not receipt.recipients:
                log.warning("e-mail has no recipients; recorded, not delivered", key=request.key)
                return receipt
            body = message.body
            if secret_data:
                body = render(request.kind, request.org_id, {**request.data, **secret_data}).body
            try:
                await self._deliver(receipt, body)
            except (aiosmtplib.SMTPException, OSError) as err:
                await asyncio.to_thread(self._mark, message.id, str(err)[:500], None)
                log.warning("e-mail delivery failed; Temporal will retry", error=str(err))
                raise
            await asyncio.to_thread(self._mark, message.id, None,
                                    activity.info().current_attempt_scheduled_time)
            log.info("e-mail delivered", key=request.key, recipients=receipt.recipients)
            return receipt

    def _record(self, request: EmailRequest) -> EmailMessage:
        with self.db.session() as s:
            existing = s.exec(select(EmailMessage).where(EmailMessage.key == request.key)).first()
            if existing is not None:
                return existing
            members = s.exec(select(OrgMember).where(OrgMember.org_id == request.org_id)).all()
            profile = s.get(BillingProfile, request.org_id)
            recipients = billing_recipients(
                owners=[m.email for m in members if m.role == Role.ORG_OWNER],
                billing_admins=[m.email for m in members if m.role == Role.ORG_BILLING_ADMIN],
                billing_email=profile.billing_email if profile else None,
                only_invoice_emails=bool(profile and profile.only_invoice_emails),
            )
            content = render(request.kind, request.org_id, request.data)
            message = EmailMessage(key=request.key, org_id=request.org_id, kind=request.kind,
                                   recipients=json.dumps(recipients), subject=content.subject, body=content.body,
                                   created_at=request.at)
            s.add(message)
        return message

    def _mark(self, message_id: int, error: str | None, delivered_at: datetime | None) -> None:
        with self.db.session() as s:
            message = s.get(EmailMessage, message_id)
            message.attempts += 1
            message.last_error = error
            message.delivered_at = delivered_at
            s.add(message)

    async def _deliver(self, receipt: EmailReceipt, body: str) -> None:
        mime = MimeMessage()
        mime["From"] = self.smtp.sender
        mime["To"] = ", ".join(receipt.recipients)
        mime["Subject"] = receipt.subject
        mime["Message-ID"] = f"<{receipt.key.replace(':', '.')}@billing>"
        mime.set_content(body)
        await aiosmtplib.send(mime, hostname=self.smtp.host, port=self.smtp.port, timeout=self.smtp.timeout_seconds)
