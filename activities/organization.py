"""Organization billing activities: attach a payment method (and authenticate it, SPEC F1), list failed payments
to collect (F2), move the organization's status when invoices are overdue (D9), and tell its workflow about invoices."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlmodel import select
from temporalio import activity
from temporalio.client import Client

from activities._context import activity_log_context
from activities.delivery import EventPublisher, dispatches_events, publish_org_status
from activities.email import EmailActivities, EmailRequest
from billing.config import BillingDurations
from store.db import Database
from store.gateway import PaymentGateway
from store.queries import active_payment_methods
from store.tables import Invoice, Organization, OrgStatus, Payment, PaymentMethod, PaymentStatus
from contracts.start import start_org_billing
from contracts.organization import AttachRequest, Attached, OrgRef, StatusChange, InvoiceNotice  # noqa: F401

# Failed, or an attempt in flight that may fail for want of authentication (a customer's retry racing F2).
TO_COLLECT = (PaymentStatus.FAILED, PaymentStatus.FAILED_AUTHENTICATION, PaymentStatus.NEW)


class OrganizationActivities:
    def __init__(self, db: Database, gateway: PaymentGateway, email: EmailActivities, client: Client,
                 task_queue: str, durations: BillingDurations, events: EventPublisher | None = None) -> None:
        self.db = db
        self.events = events
        self.gateway = gateway
        self.email = email
        self.client = client
        self.task_queue = task_queue
        self.durations = durations

    @activity.defn(name="attach_payment_method")
    def attach(self, request: AttachRequest) -> Attached:
        """SPEC A4/F1: the method replaces the organization's; authenticating it is the customer's SCA step."""
        with activity_log_context(org_id=request.org_id) as log:
            if request.authenticate:
                self.gateway.authenticate(request.method.token)
            with self.db.session() as s:
                if s.exec(select(PaymentMethod).where(PaymentMethod.token == request.method.token)).first() is None:
                    for old in active_payment_methods(s, request.org_id):
                        old.active = False
                        s.add(old)
                    s.add(PaymentMethod(org_id=request.org_id, created_at=request.at, **request.method.model_dump()))
            log.info("payment method attached", brand=request.method.brand, last4=request.method.last4,
                     authenticated=request.authenticate)
            return Attached(authenticated=request.authenticate)

    @activity.defn(name="failed_payment_invoices")
    def failed_invoices(self, request: OrgRef) -> list[str]:
        """F2: the invoices whose latest card payment failed (or is being retried right now): the database, not
        visibility, is the truth. A retry sent to an attempt in flight applies only if that attempt fails."""
        with self.db.session() as s:
            rows = s.exec(select(Invoice.number, Payment.status, Payment.attempt)
                          .join(Payment, Payment.invoice_id == Invoice.id)
                          .where(Invoice.org_id == request.org_id, Payment.method.in_(["card", "paypal"]))
                          .order_by(Invoice.id, Payment.attempt)).all()
        latest: dict[str, str] = {}
        for number, status, _ in rows:
            latest[number] = status
        return [number for number, status in latest.items() if status in TO_COLLECT]

    @activity.defn(name="set_org_status")
    @dispatches_events(lambda self, request: request.org_id)
    async def set_status(self, request: StatusChange) -> None:
        """D9: suspended after 30 days overdue, locked after 60, active again once everything is paid."""
        await asyncio.to_thread(self._set_status, request)
        if request.status != OrgStatus.ACTIVE:
            kind = "org_suspended" if request.status == OrgStatus.SUSPENDED else "org_locked"
            await self.email.deliver(EmailRequest(key=f"{kind}:{request.org_id}:{request.at.isoformat()}",
                                                  org_id=request.org_id, kind=kind, at=request.at,
                                                  data={"invoices": ", ".join(request.invoices)}))

    def _set_status(self, request: StatusChange) -> None:
        with self.db.session() as s:
            org = s.get(Organization, request.org_id)
            if org.status != request.status:
                publish_org_status(s, request.org_id, request.status, request.invoices, request.at)
            org.status = request.status
            s.add(org)

    @activity.defn(name="notify_org_billing")
    async def notify(self, notice: InvoiceNotice) -> None:
        """Signal-with-start: the organization's workflow exists from its first notice on."""
        if notice.since is None:
            notice = notice.model_copy(update={"since": await asyncio.to_thread(self._invoice_date, notice.invoice)})
        await start_org_billing(self.client, self.task_queue, notice.org_id, self.durations,
                                start_signal="invoice_notice", start_signal_args=[notice])

    def _invoice_date(self, number: str) -> datetime:
        with self.db.session() as s:
            return s.exec(select(Invoice.created_at).where(Invoice.number == number)).one()
