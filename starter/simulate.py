"""`billing simulate`: run a scenario through the real workflows on Temporal's time-skipping server."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import select
from temporalio.client import Client, WorkflowHistory
from contracts.codec import data_converter
from temporalio.testing import WorkflowEnvironment

from activities.email import SmtpSettings
from activities.invoices import commitment_state_of
from store import migrate
from billing.invoicing import period_before
from store.db import Database
from store.gateway import PaymentGateway, SandboxGateway
from store.gateway_http import HttpGateway
from billing.money import format_amount
from billing.profiles import OrganizationIn
from billing.credits import CreditLineState, elastic_billing_active
from billing.subscriptions import SubscriptionTerms, commitment_credit_lines
from billing.support import SupportPlan
from contracts.clock import ClockInterceptor
from contracts.outcomes import NothingToDo
from store.tables import (CreditLine, EmailMessage, Invoice, InvoiceLine, InvoiceTaxLine, Mandate, Organization,
                            Payment, PaymentMethod, Subscription, SupportPlanPeriod)
from services.client import BillingClient, BillingError, SubscriptionIn
from starter.idle import wait_until_at_rest
from starter.scenario import (ForgiveInvoiceEvent, PayNowEvent, RecordPaymentEvent, RefundPaymentEvent,
                              ApplyActivationCode, AuthorizePayment, BuyFlexConsulting, ChangeSupportPlan, RetryPayment,
                              ReversePayment, RevokeMandate, Scenario, SetBillingContact, SetBillingProfile,
                              UpdatePaymentMethod, utc)
from starter.gateway_service import GatewayServer
from starter.processes import binary, free_port
from starter.temporal_setup import register_search_attributes
from worker import build_worker
from contracts.flows import (mandate_workflow_id, month_end_workflow_id, org_billing_workflow_id, payment_workflow_id,
                            settlement_workflow_id, support_plan_workflow_id)

IDLE_TIMEOUT = timedelta(minutes=2)  # wall time a workflow may take to come to rest after a step


class _Inbox:
    """The simulator's SMTP server keeps what it receives in memory: the customers' mailboxes."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def activation_code(self, org_id: str) -> str:
        subject = f"Your subscription activation code for organization {org_id}"
        for message in reversed(self.messages):
            if message["Subject"] == subject:
                found = re.search(r"Activation code: (\S+)", message.get_payload(decode=True).decode())
                if found:
                    return found.group(1)
        raise ValueError(f"no activation code was e-mailed for {org_id!r}")


class SimulatedClock:
    """Scenario time on the time-skipping server, whose clock starts at the present and only moves forward.

    The scenario runs a whole number of seconds ahead of (or behind) its own dates; every flow converts back
    (contracts.clock), so the database and the output hold the scenario's dates, whether past or future."""

    def __init__(self, env: WorkflowEnvironment, offset_seconds: int) -> None:
        self.env = env
        self.offset_seconds = offset_seconds

    @classmethod
    async def starting_at(cls, env: WorkflowEnvironment, start: datetime) -> "SimulatedClock":
        server_now = await env.get_current_time()
        begin = server_now.replace(microsecond=0) + timedelta(seconds=1)  # whole seconds: instants print exactly
        clock = cls(env, int((begin - start).total_seconds()))
        await env.sleep(begin - server_now)
        return clock

    def client(self) -> Client:
        """A client whose workflows, and everything they start, run on this clock (contracts.clock)."""
        config = self.env.client.config()
        return Client(**{**config, "interceptors": [*config["interceptors"], ClockInterceptor(self.offset_seconds)]})

    async def now(self) -> datetime:
        return await self.env.get_current_time() - timedelta(seconds=self.offset_seconds)

    async def advance_to(self, moment: datetime) -> None:
        now = await self.now()
        if moment > now:
            await self.env.sleep(moment - now)


@dataclass(order=True)
class _Step:
    at: datetime
    order: int
    seq: int
    run: Callable[[], Awaitable[None]] = field(compare=False)
    name: str = field(compare=False, default="")  # in an error: "events[3]", "orgs.acme"
    about: str = field(compare=False, default="")  # "retry_payment for acme at 2025-02-03T10:00:00Z"


def month_ends(start: datetime, until: datetime) -> list[datetime]:
    """Every first of the month at 00:00 UTC after `start` and not after `until`."""
    ends = []
    cursor = date(start.year, start.month, 1)
    while True:
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        moment = datetime.combine(cursor, time(0), tzinfo=timezone.utc)
        if moment > until:
            return ends
        if moment > start:
            ends.append(moment)


class Simulation:
    def __init__(self, scenario: Scenario, env: WorkflowEnvironment, client: Client, clock: SimulatedClock,
                 db: Database, task_queue: str, inbox: "_Inbox", gateway: PaymentGateway) -> None:
        self.scenario = scenario
        self.env = env
        self.client = client
        self.clock = clock
        self.db = db
        self.gateway = gateway
        self.billing = BillingClient(client, db, self.gateway, clock=clock.now,
                                     task_queue=task_queue, durations=scenario.config)
        self.inbox = inbox
        self.activation_workflows: list[str] = []
        self.created_orgs: list[str] = []
        self.checkout_workflows: list[str] = []
        self.support_workflows: list[str] = []
        self.payment_workflows: list[str] = []
        self.settlement_workflows: list[str] = []
        self.month_end_workflows: list[str] = []
        self.notices: list[dict[str, str]] = []  # events that found nothing to do (SCENARIOS.md `notices`)

    async def run(self) -> None:
        steps: list[_Step] = []
        start, until = utc(self.scenario.start), utc(self.scenario.until)
        for rate in self.scenario.fx:
            await self.billing.record_fx_rate(rate.currency, rate.rate, utc(rate.at))
        created_at: dict[str, datetime] = {}
        for name, org in self.scenario.orgs.items():
            created = datetime.combine(org.created, time(0), tzinfo=timezone.utc) if org.created else start
            created_at[name] = max(created, start)
            steps.append(_Step(created_at[name], 0, len(steps), self._creator(name), f"orgs.{name}", "creating"))
        # Each usage line arrives when the clock reaches its first day (at creation if earlier), so the cycle's
        # PENDING invoice shows a running total (G0).
        arrivals: dict[tuple[datetime, str], list] = {}
        for line in self.scenario.usage:
            moment = max(datetime.combine(line.start_date, time(0), tzinfo=timezone.utc), created_at[line.org])
            arrivals.setdefault((moment, line.org), []).append(line)
        for (moment, org), lines in arrivals.items():
            if moment > until:
                continue  # usage of days after the simulation ends is never received
            steps.append(_Step(moment, 0, len(steps), self._usage(org, lines), "usage", f"usage of {org}"))
        for moment in month_ends(start, until):
            steps.append(_Step(moment, 1, len(steps), self._settler(moment), "month-end",
                               f"settling {period_before(moment)}"))
        for i, event in enumerate(self.scenario.events):
            steps.append(_Step(utc(event.at), 2, len(steps), self._harmless(event, self._event(event)),
                               f"events[{i}]", f"{event.do} for {event.org} at {_stamp(utc(event.at))}"))
        for step in sorted(steps):
            await self._advance_to(step.at)
            try:
                await step.run()
                await self._settle_down()
            except Exception as err:
                # The caller (the CLI) names what failed; the exception itself goes up unchanged.
                blamed = err.field if isinstance(err, BillingError) and err.field else None
                err.add_note(f"{step.name}{'.' + blamed if blamed else ''} ({step.about})")
                raise
        await self._advance_to(until)
        await self._settle_down()

    def _harmless(self, event: Any, perform: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """An event that finds nothing to do (a repeated or late action) is a notice, never a failure."""
        async def run() -> None:
            try:
                await perform()
            except NothingToDo as done:
                self.notices.append({"at": _stamp(utc(event.at)), "org": event.org, "event": event.do,
                                     "notice": done.notice})
        return run

    async def _advance_to(self, moment: datetime) -> None:
        """Move the clock to `moment`, delivering each issuer webhook at the instant it falls due on the way
        (India charges settle after the issuer's notice period: SPEC E4)."""
        while True:
            due = await asyncio.to_thread(self.gateway.next_webhook_at)
            target = moment if due is None or due > moment else due
            await self.clock.advance_to(target)
            if target is moment and (due is None or due > moment):
                return
            for webhook in await asyncio.to_thread(self.gateway.due_webhooks, await self.clock.now()):
                await self.billing.handle_gateway_webhook(webhook.body, webhook.headers)  # what the endpoint does
                await asyncio.to_thread(self.gateway.webhook_delivered, webhook.charge_id)
            await self._settle_down()

    def _creator(self, name: str) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            spec = self.scenario.orgs[name]
            await self.billing.create_organization(OrganizationIn(
                id=name, name=spec.name, owners=spec.owners, billing_admins=spec.billing_admins,
                billing_profile=spec.billing_profile, payment_method=spec.payment_method))
            self.created_orgs.append(name)
            if spec.support_plan is not None:
                await self.billing.set_support_plan(name, spec.support_plan.plan, spec.support_plan.trial_ends)
                self.support_workflows.append(support_plan_workflow_id(name))
            if spec.subscription is not None:
                workflow_id = await self.billing.add_subscription(
                    name, SubscriptionIn(**spec.subscription.model_dump(exclude={"activation_code"})),
                    activation_code=spec.subscription.activation_code)
                if workflow_id is not None:
                    self.activation_workflows.append(workflow_id)
            for line in spec.credits:
                await self.billing.add_credit_line(name, line)
        return create

    def _usage(self, org: str, lines: list) -> Callable[[], Awaitable[None]]:
        async def record() -> None:
            await self.billing.record_usage(org, lines)
        return record

    def _settler(self, moment: datetime) -> Callable[[], Awaitable[None]]:
        async def settle() -> None:
            period = period_before(moment)
            await self.billing.run_month_end(period)  # what the Schedule starts at 00:00 UTC on the 1st
            self.month_end_workflows.append(month_end_workflow_id(period))
            orgs = await asyncio.to_thread(self._org_ids, moment)
            results = await asyncio.gather(*(self.billing.settlement_result(org, period) for org in orgs))
            self.settlement_workflows += [settlement_workflow_id(org, period) for org in orgs]
            self.payment_workflows += [r.payment_workflow_id for r in results if r.payment_workflow_id]
        return settle

    def _org_ids(self, moment: datetime) -> list[str]:
        with self.db.session() as s:
            return list(s.exec(select(Organization.id).where(Organization.created_at < moment)
                               .order_by(Organization.id)).all())

    def _event(self, event: UpdatePaymentMethod | RetryPayment) -> Callable[[], Awaitable[None]]:
        async def perform() -> None:
            if isinstance(event, UpdatePaymentMethod):
                await self.billing.update_payment_method(event.org, event.payment_method, event.authenticate)
            elif isinstance(event, RetryPayment):
                await self.billing.retry_payment(event.org, event.invoice, requested_by="simulator")
            elif isinstance(event, AuthorizePayment):
                await self.billing.authorize_payment(event.org, event.invoice)
            elif isinstance(event, RevokeMandate):
                await self.billing.revoke_mandate(event.org)
            elif isinstance(event, ReversePayment):
                await self.billing.reverse_payment(event.org, event.invoice)
            elif isinstance(event, BuyFlexConsulting):
                handle = await self.billing.buy_flex_consulting(event.org, event.level, event.amount)
                self.checkout_workflows.append(handle.id)
            elif isinstance(event, ChangeSupportPlan):
                if support_plan_workflow_id(event.org) not in self.support_workflows:
                    await self.billing.set_support_plan(event.org, SupportPlan.BASIC)
                    self.support_workflows.append(support_plan_workflow_id(event.org))
                await self.billing.change_support_plan(event.org, event.plan, requested_by="simulator")
            elif isinstance(event, SetBillingContact):
                await self.billing.set_billing_contact(event.org, event.billing_email, event.only_invoice_emails,
                                                       changed_by="simulator")
            elif isinstance(event, SetBillingProfile):
                await self.billing.set_billing_profile(event.org, event.billing_profile, changed_by="simulator")
            elif isinstance(event, ApplyActivationCode):
                # The customer types the code from the e-mail they received: the simulator's mailbox.
                await self.billing.apply_activation_code(event.org, self.inbox.activation_code(event.org))
            elif isinstance(event, PayNowEvent):
                await self.billing.pay_now(event.org, event.invoice, requested_by="simulator")
            elif isinstance(event, RecordPaymentEvent):
                await self.billing.record_payment(event.org, event.invoice, event.method, event.amount,
                                                  recorded_by="simulator")
            elif isinstance(event, ForgiveInvoiceEvent):
                await self.billing.forgive_invoice(event.org, event.invoice, event.reason, forgiven_by="simulator")
            elif isinstance(event, RefundPaymentEvent):
                try:
                    await self.billing.refund_payment(event.org, event.invoice, requested_by="simulator")
                except BillingError as err:  # D2's non-refundable charges: the scenario asks for the impossible
                    raise ValueError(f"refund_payment at {_stamp(event.at)} for {event.org}: {err}") from None
        return perform

    async def _settle_down(self) -> None:
        """Wait until every running workflow rests on something outside itself (a signal, a timer): read from
        their histories (starter/idle.py), with no hook in the workflows."""
        while True:
            # A confirmed checkout issues its invoice and starts its payment, which the database then names.
            await wait_until_at_rest(self.client, self.checkout_workflows, IDLE_TIMEOUT)
            self.payment_workflows = list(dict.fromkeys(self.payment_workflows
                                                        + await asyncio.to_thread(self._payments)))
            await wait_until_at_rest(self.client, self.payment_workflows + self.activation_workflows
                                     + [org_billing_workflow_id(o) for o in self.created_orgs]
                                     + self.support_workflows
                                     + self.checkout_workflows,  # the purchase confirmation follows the payment
                                     IDLE_TIMEOUT)
            # Meanwhile an activation may have started a payment (its grace charge): wait for that one too.
            if set(await asyncio.to_thread(self._payments)) <= set(self.payment_workflows):
                return

    def mandate_workflows(self) -> list[str]:
        """The India cards' mandate registrations (E1), found by business key from the cards on file."""
        with self.db.session() as s:
            methods = s.exec(select(PaymentMethod.org_id, PaymentMethod.token)
                             .where(PaymentMethod.issuing_country == "IN").order_by(PaymentMethod.id)).all()
        return [mandate_workflow_id(org_id, token) for org_id, token in methods]

    def _payments(self) -> list[str]:
        """Payment workflows started by others (an activation's grace charge), found by business key."""
        with self.db.session() as s:
            numbers = s.exec(select(Invoice.number).join(Payment, Payment.invoice_id == Invoice.id)
                             .where(Payment.method != "credits").distinct()).all()
        return [payment_workflow_id(number) for number in numbers]


async def simulate(scenario: Scenario, database_url: str | None = None,
                   history_sink: dict[str, WorkflowHistory] | None = None,
                   gateway_service: bool = False) -> dict[str, Any]:
    """Run `scenario` on a fresh database and a fresh time-skipping server; return the output document.

    `history_sink`, when given, receives every workflow's history by workflow ID (replay tests, audits).
    `gateway_service`: charge through a sandbox gateway service of this run's own (a child process with a fresh
    ledger, `billing gateway serve`), as `billing simulate` does; else through the in-process sandbox gateway on the
    billing database. Every request carries the business clock's `at`, so both give the same document.
    """
    with tempfile.TemporaryDirectory(prefix="billing-sim-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'store.db'}"
        service = None
        if gateway_service:
            service = GatewayServer(database_url=f"sqlite:///{Path(tmp) / 'gateway.db'}",
                                    rbi_processing=scenario.config.rbi_processing, log_file=Path(tmp) / "gateway.log")
            service.start()  # starting while the migrations run
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        gateway: PaymentGateway = SandboxGateway(db, rbi_processing=scenario.config.rbi_processing)
        inbox = _Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=binary("temporal-test-server"), data_converter=data_converter())
        except BaseException:
            smtp.stop()
            if service is not None:
                service.stop()
            raise
        try:
            if service is not None:
                await service.ready()  # it started while the migrations and the test server did
                gateway = HttpGateway(service.url)
            clock = await SimulatedClock.starting_at(env, utc(scenario.start))
            client = clock.client()
            await register_search_attributes(client)
            task_queue = f"simulate-{uuid.uuid4()}"
            async with build_worker(client, db, gateway, SmtpSettings(host="127.0.0.1", port=smtp.port),
                                    task_queue=task_queue, durations=scenario.config):
                with env.auto_time_skipping_disabled():
                    simulation = Simulation(scenario, env, client, clock, db, task_queue, inbox, gateway)
                    await simulation.run()
                    if history_sink is not None:
                        for workflow_id in (simulation.month_end_workflows + simulation.settlement_workflows
                                            + simulation.payment_workflows + simulation.activation_workflows
                                            + [org_billing_workflow_id(org) for org in simulation.created_orgs]
                                            + simulation.checkout_workflows + simulation.support_workflows
                                            + await asyncio.to_thread(simulation.mandate_workflows)):
                            handle = client.get_workflow_handle(workflow_id)
                            history_sink[workflow_id] = await handle.fetch_history()
            output = await asyncio.to_thread(report, db, (utc(scenario.until) - timedelta(seconds=1)).date())
            # SCENARIOS.md: ordered by time, then organization (events at one moment keep the file's order).
            output["notices"] = sorted(simulation.notices, key=lambda n: (n["at"], n["org"]))
            return output
        finally:
            await env.shutdown()
            smtp.stop()
            db.dispose()
            if service is not None:
                if isinstance(gateway, HttpGateway):
                    gateway.close()
                service.stop()


def credit_report(rows: list[CreditLine], on: date, subscriptions: list[Subscription] = ()) -> list[dict[str, Any]]:
    """SPEC D3: each organization's credit table in table order, and whether elastic billing is active. A monthly
    commitment's rows (its spending, its bank; D1) come first; elastic billing follows the credit lines alone."""
    by_org: dict[str, list[CreditLineState]] = {}
    commitment_rows: dict[str, list[CreditLineState]] = {}
    for sub in subscriptions:
        terms = SubscriptionTerms(type=sub.type, term_start=sub.term_start, term_months=sub.term_months,
                                  commitment=sub.commitment, currency=sub.currency)
        if rows_of_sub := commitment_credit_lines(terms, commitment_state_of(sub)):
            commitment_rows[sub.org_id] = rows_of_sub
            by_org.setdefault(sub.org_id, [])
    for row in rows:
        by_org.setdefault(row.org_id, []).append(CreditLineState(
            position=row.position, kind=row.kind, amount=row.amount, used=row.used, start=row.start_date,
            end=row.end_date, currency=row.currency))
    return [{"org": org, "elastic_billing_active": elastic_billing_active(lines, on),
             "lines": [{"kind": line.kind, "amount": format_amount(line.amount, line.currency),
                        "used": format_amount(line.used, line.currency),
                        "remaining": format_amount(line.remaining, line.currency),
                        "start": line.start.isoformat(), "end": line.end.isoformat(), "status": line.status(on)}
                       for line in commitment_rows.get(org, []) + lines]}
            for org, lines in sorted(by_org.items())]


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _rate(value: Decimal) -> str:
    """Rates with at least two decimals, as people write them: 83.20, 0.90, 0.23, 0.09975."""
    plain = _plain(value)
    decimals = len(plain.partition(".")[2])
    return plain if decimals >= 2 else format(value.quantize(Decimal("0.01")), "f")


def report(db: Database, until: date) -> dict[str, Any]:
    """The output document of SCENARIOS.md, read back from the database; credit states as of `until`."""
    with db.session() as s:
        invoices = s.exec(select(Invoice).order_by(Invoice.created_at, Invoice.org_id, Invoice.id)).all()
        numbers = {invoice.id: invoice.number for invoice in invoices}
        lines = s.exec(select(InvoiceLine).order_by(InvoiceLine.invoice_id, InvoiceLine.position)).all()
        tax_lines = s.exec(select(InvoiceTaxLine).order_by(InvoiceTaxLine.invoice_id, InvoiceTaxLine.position)).all()
        payments = s.exec(select(Payment).order_by(Payment.created_at, Payment.org_id, Payment.id)).all()
        emails = s.exec(select(EmailMessage).order_by(EmailMessage.created_at, EmailMessage.org_id,
                                                      EmailMessage.id)).all()
        orgs = s.exec(select(Organization).order_by(Organization.created_at, Organization.id)).all()
        credit_lines = s.exec(select(CreditLine).order_by(CreditLine.org_id, CreditLine.position)).all()
        subscriptions = s.exec(select(Subscription).where(Subscription.status == "ACTIVE")
                               .order_by(Subscription.org_id, Subscription.id)).all()
        mandates = s.exec(select(Mandate).order_by(Mandate.registered_at, Mandate.org_id, Mandate.id)).all()
        plans = s.exec(select(SupportPlanPeriod).order_by(SupportPlanPeriod.start_date, SupportPlanPeriod.org_id,
                                                          SupportPlanPeriod.id)).all()
    lines_of: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        lines_of.setdefault(line.invoice_id, []).append({
            "project": line.project, "deployment": line.deployment, "service": line.service, "sku": line.sku,
            "from": line.start_date.isoformat(), "to": line.end_date.isoformat(),
            "quantity": _plain(line.quantity), "unit": line.unit, "unit_price": _plain(line.unit_price),
            "amount": format_amount(line.amount, "USD")})
    taxes_of: dict[int, list[dict[str, Any]]] = {}
    currency_of = {invoice.id: invoice.currency for invoice in invoices}
    for tax in tax_lines:
        taxes_of.setdefault(tax.invoice_id, []).append({
            "name": tax.name, "rate": _rate(tax.rate), "amount": format_amount(tax.amount, currency_of[tax.invoice_id])})
    # SCENARIOS.md: every list is ordered by time (as printed, to the second), then organization.
    invoices = sorted(invoices, key=lambda i: (_stamp(i.created_at), i.org_id, i.id))
    payments = sorted(payments, key=lambda p: (_stamp(p.created_at), p.org_id, p.id))
    emails = sorted(emails, key=lambda e: (_stamp(e.created_at), e.org_id, e.id))
    return {
        "invoices": [{
            "org": inv.org_id, "number": inv.number, "kind": inv.kind, "period": inv.period, "status": inv.status,
            "currency": inv.currency, "usage": format_amount(inv.usage, "USD"),
            "billed_usage": format_amount(inv.billed_usage, "USD"), "tax": format_amount(inv.tax, inv.currency),
            "total": format_amount(inv.total, inv.currency), "amount_due": format_amount(inv.amount_due, inv.currency),
            "lines": lines_of.get(inv.id, []), "tax_lines": taxes_of.get(inv.id, []),
            "credits_applied": format_amount(inv.credits_applied, inv.currency),
            "invoiced": format_amount(inv.invoiced, inv.currency),
            "forgiven": format_amount(inv.forgiven, inv.currency),
            "fx_rate": None if inv.fx_rate is None else _rate(inv.fx_rate),
            "cloud_invoice": numbers.get(inv.cloud_invoice_id), "explanation": inv.explanation,
            "at": _stamp(inv.created_at)} for inv in invoices],
        "payments": [{
            "org": p.org_id, "invoice": numbers.get(p.invoice_id), "method": p.method, "status": p.status,
            "amount": format_amount(p.amount, p.currency), "currency": p.currency,
            "fx_rate": None if p.fx_rate is None else _rate(p.fx_rate), "refundable": p.refundable,
            "failure_code": p.failure_code, "attempt": p.attempt, "at": _stamp(p.created_at)} for p in payments],
        "credits": credit_report(credit_lines, until, subscriptions),
        "mandates": [{"org": m.org_id, "status": m.status, "limit": format_amount(m.limit, m.currency),
                      "currency": m.currency, "registered_at": _stamp(m.registered_at),
                      "revoked_at": _stamp(m.revoked_at)} for m in mandates],
        "support_plans": [{"org": p.org_id, "plan": p.plan, "effective": p.start_date.isoformat(),
                           "until": None if p.end_date is None else p.end_date.isoformat(),
                           "trial_ends": None if p.trial_ends is None else p.trial_ends.isoformat(),
                           "billing_stopped": None if p.billing_stopped is None else p.billing_stopped.isoformat()}
                          for p in plans],
        "organizations": [{"org": org.id, "status": org.status} for org in orgs],
        "notices": [],  # filled in by the simulation: events that found nothing to do
        "emails": [{"org": e.org_id, "to": json.loads(e.recipients), "kind": e.kind, "subject": e.subject,
                    "at": _stamp(e.created_at)} for e in emails],
    }
