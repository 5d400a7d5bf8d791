"""Typed client functions the backend calls to trigger and steer billing workflows."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from contracts.start import payment_operation, start_org_billing, start_payment_workflow, start_settlement_workflow
from activities.payments import outstanding, refusal_to_refund
from contracts.outcomes import NothingToDo
from billing.cards import CardIn, PayPalIn
from store.cycle import cycle_invoice_number, open_cycle, record_usage_lines
from store.db import Database
from store.gateway import PaymentGateway, TokenizedMethod
from billing import webhooks
from services.webhooks import WebhookReceived, receive_gateway_webhook
from billing.invoicing import UsageItem, period_of
from billing.profiles import BillingProfileIn, OrganizationIn, check_email
from billing.subscriptions import SubscriptionTerms, SubscriptionType
from billing.support import PlanChange, SupportPlan
from billing.activation import hash_code
from billing.config import BillingDurations
from store.queries import active_payment_method
from store.tables import (Activation, BillingContactChange, BillingProfile, BillingProfileChange, CreditLine, FxRate, Invoice, InvoiceStatus, Organization,
                            Mandate, OrgMember, Payment, PaymentMethod, Role, Subscription,
                            SupportPlanPeriod)
from workflows.activation import ActivationInput, ActivationState, ActivationWorkflow, ApplyCode, UsageStarted
from workflows.checkout import BillingAddress, CheckoutInput, CheckoutWorkflow
from workflows.support_plan import ChangePlan, SupportPlanInput, SupportPlanWorkflow
from workflows.organization import OrgBillingWorkflow, PaymentMethodUpdate, PaymentMethodUpdated
from workflows.month_end import MonthEndInput, MonthEndResult, MonthEndWorkflow
from workflows.mandate import RegisterMandateInput, RegisterMandateWorkflow
from workflows.payment import (ChargeInvoiceInput, Forgive, PaymentState, PaymentWorkflow, PayNow,
                               RecordPayment, Refund, RetryRequest)
from workflows.settlement import SettlementWorkflow
from billing.statuses import BillingMode
from contracts.flows import SettleResult
from contracts.flows import (ACTIVATION_STATUS, BILLING_PERIOD, ORG_ID, TASK_QUEUE,
                              activation_workflow_id, checkout_workflow_id, mandate_workflow_id,
                              month_end_workflow_id, org_billing_workflow_id, payment_workflow_id,
                              settlement_workflow_id, support_plan_workflow_id)

Clock = Callable[[], Awaitable[datetime]]


async def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class UsageIn(UsageItem):
    """A rated usage line item as the backend sends it (the product does not price resources): checked here."""

    model_config = ConfigDict(extra="forbid")

    # I3: the backend's own unique key for the line (per organization); a line sent again with a key already
    # recorded is a duplicate and is not counted twice. A line without a key is always recorded.
    key: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("quantity", "unit_price", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError("give amounts as strings (e.g. \"0.08\"): money is never a float")
        return value

    @field_validator("quantity", "unit_price")
    @classmethod
    def _non_negative(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0:
            raise ValueError("must be a non-negative number")
        return value


class SubscriptionIn(BaseModel):
    """SPEC D1: a subscription bought through sales (or a marketplace)."""

    model_config = ConfigDict(extra="forbid")

    type: SubscriptionType
    term_start: date
    term_months: int = Field(ge=1, le=120)
    commitment: Decimal = Field(ge=0)
    currency: Literal["USD", "EUR"] = "USD"

    @field_validator("commitment", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        return UsageIn._no_float(value)

    @field_validator("term_start")
    @classmethod
    def _first_of_month(cls, value: date) -> date:
        if value.day != 1:
            raise ValueError("a term starts on the first day of a month")
        return value


class CreditLineIn(BaseModel):
    """SPEC D3: a line of the Available Credits table."""

    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0)
    start: date
    end: date
    kind: str = "promotional"

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        return UsageIn._no_float(value)

    @model_validator(mode="after")
    def _dates(self) -> "CreditLineIn":
        if self.end < self.start:
            raise ValueError("'end' is before 'start'")
        return self


class UsageRecorded(BaseModel):
    """What `record_usage` did with a batch (I3)."""

    recorded: int  # lines stored and added to their cycle's running total (G0)
    duplicates: int  # lines whose key was already recorded: ignored


class BillingError(Exception):
    """A refused operation, with a message for the caller; nothing was changed. `field` names the offending
    argument where one is to blame (e.g. `invoice`)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BillingClient:
    def __init__(self, temporal: Client, db: Database, gateway: PaymentGateway, clock: Clock = wall_clock,
                 task_queue: str = TASK_QUEUE, durations: BillingDurations | None = None) -> None:
        self.temporal = temporal
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self.task_queue = task_queue
        self.durations = durations or BillingDurations()

    async def create_organization(self, org: OrganizationIn) -> None:
        """Create an organization, its members, billing profile and payment method, all or nothing."""
        at = await self.clock()
        method = await self._tokenize(org.payment_method, at) if org.payment_method else None
        await asyncio.to_thread(self._insert_org, org, method, at)
        await start_org_billing(self.temporal, self.task_queue, org.id, self.durations)
        if method is not None:
            await self._register_mandate_if_india(org.id, method)

    def _insert_org(self, org: OrganizationIn, method: TokenizedMethod | None, at: datetime) -> None:
        with self.db.session() as s:
            if s.get(Organization, org.id) is not None:
                raise BillingError(f"organization {org.id!r} already exists")
            s.add(Organization(id=org.id, name=org.name or org.id, created_at=at))
            s.flush()
            for email in org.owners:
                s.add(OrgMember(org_id=org.id, email=email, role=Role.ORG_OWNER))
            for email in org.billing_admins:
                s.add(OrgMember(org_id=org.id, email=email, role=Role.ORG_BILLING_ADMIN))
            s.add(BillingProfile(org_id=org.id, updated_at=at, **org.billing_profile.model_dump()))
            if method is not None:
                s.add(PaymentMethod(org_id=org.id, created_at=at, **method.model_dump()))
            s.flush()
            open_cycle(s.connection(), org.id, period_of(at.date()), at)  # G0: the first cycle's PENDING invoice

    async def update_payment_method(self, org_id: str, method: CardIn | PayPalIn,
                                    authenticate: bool = False, requested_by: str = "customer") -> PaymentMethodUpdated:
        """SPEC A4-A6, F1-F2: replace the organization's payment method (the card number stops at the gateway);
        once it is authenticated, every failed payment is charged again. An unusable method is refused."""
        at = await self.clock()
        await asyncio.to_thread(self._require_org, org_id)
        tokenized = await self._tokenize(method, at)
        await start_org_billing(self.temporal, self.task_queue, org_id, self.durations)
        handle = self.temporal.get_workflow_handle_for(OrgBillingWorkflow.run, org_billing_workflow_id(org_id))
        try:
            result = await handle.execute_update(OrgBillingWorkflow.update_payment_method, PaymentMethodUpdate(
                method=tokenized, authenticate=authenticate, requested_by=requested_by))
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None
        await self._register_mandate_if_india(org_id, tokenized)
        return result

    async def reauthenticate_payment_method(self, org_id: str,
                                            requested_by: str = "customer") -> PaymentMethodUpdated:
        """SPEC F1-F2: re-authenticate the card on file (SCA) without re-entering it: its token goes to the
        organization's workflow as an update that authenticates it, then charges every failed payment again and
        answers how many were collected. No card, or PayPal (approved at PayPal), is refused."""
        def on_file() -> TokenizedMethod:
            self._require_org(org_id)
            _, method = self._profile_and_method(org_id)
            if method is None:
                raise BillingError(f"organization {org_id!r} has no payment method to re-authenticate")
            return method

        method = await asyncio.to_thread(on_file)
        await start_org_billing(self.temporal, self.task_queue, org_id, self.durations)
        handle = self.temporal.get_workflow_handle_for(OrgBillingWorkflow.run, org_billing_workflow_id(org_id))
        try:
            return await handle.execute_update(OrgBillingWorkflow.update_payment_method, PaymentMethodUpdate(
                method=method, authenticate=True, requested_by=requested_by))
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None

    async def tokenize(self, method: CardIn | PayPalIn) -> TokenizedMethod:
        """A5-A6: hand a card or PayPal account to the gateway; what comes back (token, brand, last 4) is safe
        to keep."""
        return await self._tokenize(method, await self.clock())

    async def _register_mandate_if_india(self, org_id: str, method: TokenizedMethod) -> None:
        """SPEC E1: adding an India-issued card registers a mandate; the caller waits (up to ~2 minutes)."""
        if method.issuing_country != "IN":
            return
        await self.temporal.execute_workflow(
            RegisterMandateWorkflow.run, RegisterMandateInput(org_id=org_id),
            id=mandate_workflow_id(org_id, method.token), task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]))

    async def handle_gateway_webhook(self, body: bytes, headers: Mapping[str, str],
                                     tolerance: timedelta = webhooks.TOLERANCE) -> WebhookReceived:
        """A gateway webhook (Standard Webhooks, SPEC I5): relay the issuer's outcome to the payment's workflow as a
        signal, once per webhook id (E3-E6). Raises InvalidSignature for a forged, malformed or stale one."""
        return await receive_gateway_webhook(self.temporal, self.db, body, headers, await self.clock(), tolerance)

    async def authorize_payment(self, org_id: str, invoice: str | int = "latest") -> str:
        """SPEC E4: the customer authorized an RBI charge above INR 15,000 through the issuer's link.
        Raises NothingToDo when no payment awaits authorization (already authorized, below the threshold, settled)."""
        number, charge_id, status = await asyncio.to_thread(self._processing_payment, org_id, invoice, "authorize")
        handle = self.temporal.get_workflow_handle_for(PaymentWorkflow.run, payment_workflow_id(number))
        if status == "PROCESSING":
            state = await handle.query(PaymentWorkflow.state)
            if state is None or state.waiting_for != "authorization":
                raise NothingToDo(f"nothing to authorize: the payment of {number} does not await authorization")
        await handle.signal(PaymentWorkflow.authorize, charge_id)
        return number

    async def reverse_payment(self, org_id: str, invoice: str | int = "latest") -> str:
        """SPEC E6: undo a PROCESSING payment: refunded if it succeeds, cancelled if it fails.
        Raises NothingToDo when no payment is PROCESSING (already reversing, or decided)."""
        number, _, status = await asyncio.to_thread(self._processing_payment, org_id, invoice, "reverse")
        if status != "PROCESSING":
            raise NothingToDo(f"nothing to reverse: the payment of {number} is already {status}")
        await self.temporal.get_workflow_handle(payment_workflow_id(number)).signal(PaymentWorkflow.reverse)
        return number

    async def revoke_mandate(self, org_id: str) -> None:
        """SPEC E5: the customer revoked the mandate with their bank (the issuer tells the gateway)."""
        at = await self.clock()

        def revoke() -> None:
            self._require_org(org_id)
            with self.db.session() as s:
                mandate = s.exec(select(Mandate).where(Mandate.org_id == org_id, Mandate.status == "ACTIVE")).first()
                if mandate is None:
                    raise NothingToDo(f"nothing to revoke: {org_id} has no active mandate")
                self.gateway.revoke_mandate(mandate_id=mandate.gateway_mandate_id, at=at)
                mandate.status, mandate.revoked_at = "REVOKED", at
                s.add(mandate)

        await asyncio.to_thread(revoke)

    def _processing_payment(self, org_id: str, invoice: str | int, action: str) -> tuple[str, str, str]:
        """The invoice number, charge and status of the payment with the issuer (PROCESSING or PENDING_REVERSAL);
        NothingToDo when the invoice's payment has been decided, BillingError when there is no such invoice."""
        named = None if invoice == "latest" else self._org_invoice(org_id, invoice)
        with self.db.session() as s:
            query = (select(Invoice.number, Payment.gateway_charge_id, Payment.status)
                     .join(Payment, Payment.invoice_id == Invoice.id)
                     .where(Invoice.org_id == org_id, Payment.status.in_(["PROCESSING", "PENDING_REVERSAL"])))
            if named is not None:
                query = query.where(Invoice.id == named.id)
            row = s.exec(query.order_by(Payment.created_at.desc(), Payment.id.desc())).first()
        if row is None:
            latest = named or self._latest_charged(org_id)
            if latest is None:
                raise NothingToDo(f"nothing to {action}: {org_id} has no payment with the issuer")
            raise NothingToDo(f"nothing to {action}: {latest.number} is {latest.status}")
        return row[0], row[1], row[2]

    def _latest_charged(self, org_id: str) -> Invoice | None:
        """The most recent invoice charged to a card or PayPal: what a late RETRY or AUTHORIZE was meant for."""
        with self.db.session() as s:
            return s.exec(select(Invoice).join(Payment, Payment.invoice_id == Invoice.id)
                          .where(Invoice.org_id == org_id, Payment.method.in_(["card", "paypal"]))
                          .order_by(Invoice.created_at.desc(), Invoice.id.desc())).first()

    async def _tokenize(self, method: CardIn | PayPalIn, at: datetime) -> TokenizedMethod:
        if isinstance(method, CardIn):
            return await asyncio.to_thread(self.gateway.tokenize_card, method, at)
        return await asyncio.to_thread(self.gateway.tokenize_paypal, method, at)

    async def record_usage(self, org_id: str, items: Sequence[UsageIn]) -> UsageRecorded:
        """Record rated usage lines (the API, the simulator and the demo call this). Each line's `key` makes a re-sent
        line a duplicate (I3): it is neither stored nor added to the running total again (G0)."""
        await asyncio.to_thread(self._require_org, org_id)
        if not items:
            return UsageRecorded(recorded=0, duplicates=0)
        at = await self.clock()

        def insert() -> tuple[int, list[tuple[int, date]]]:
            rows = [dict(period=period_of(item.start_date), project=item.project, deployment=item.deployment,
                         service=item.service, sku=item.sku, start_date=item.start_date, end_date=item.end_date,
                         quantity=item.quantity, unit=item.unit, unit_price=item.unit_price, key=item.key)
                    for item in items]
            with self.db.session() as s:
                inserted = record_usage_lines(s.connection(), org_id, rows, period_of(at.date()), at)
                if not inserted:
                    return 0, []
                waiting = s.exec(select(Activation).where(Activation.org_id == org_id, Activation.status == "PENDING",
                                                          Activation.first_usage_on.is_(None))).all()
                first_day = min(row[5] for row in inserted)
                return len(inserted), [(activation.subscription_id, first_day) for activation in waiting]

        recorded, started = await asyncio.to_thread(insert)
        for subscription_id, first_day in started:
            # SPEC D2: the grace period counts days of use; tell a waiting activation that use has begun.
            await self.temporal.get_workflow_handle(activation_workflow_id(org_id, subscription_id)).signal(
                ActivationWorkflow.usage_started, UsageStarted(first_day=first_day))
        return UsageRecorded(recorded=recorded, duplicates=len(items) - recorded)

    async def buy_flex_consulting(self, org_id: str, level: str, price: Decimal,
                                  address: BillingProfileIn | None = None, method: CardIn | PayPalIn | None = None,
                                  confirm: bool = True, purchase_id: str | None = None) -> WorkflowHandle:
        """SPEC B3: the checkout, step by step; the billing address and payment method default to the ones on
        file (A4), and new ones are validated here first (A1-A2, A5). Returns the checkout's handle."""
        at = await self.clock()
        profile, on_file = await asyncio.to_thread(self._profile_and_method, org_id)
        address = address or profile
        tokenized = await self._tokenize(method, at) if method is not None else on_file
        if tokenized is None:
            raise BillingError(f"organization {org_id!r} has no payment method: give one at checkout")
        purchase_id = purchase_id or uuid.uuid4().hex[:12]
        handle = await self.temporal.start_workflow(
            CheckoutWorkflow.run, CheckoutInput(org_id=org_id, purchase_id=purchase_id,
                                                abandon_after=self.durations.checkout_abandon),
            id=checkout_workflow_id(org_id, purchase_id), task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]),
            static_summary=f"Flex Consulting checkout of {org_id}: {level}")
        try:
            await handle.execute_update(CheckoutWorkflow.choose_level, args=[level, price])
            await handle.execute_update(CheckoutWorkflow.set_billing_address, BillingAddress(
                country=address.country, state=address.state, tax_id=address.tax_id))
            await handle.execute_update(CheckoutWorkflow.set_payment_method, args=[tokenized, method is not None])
            await handle.execute_update(CheckoutWorkflow.review)
            if confirm:
                await handle.execute_update(CheckoutWorkflow.confirm)
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None
        return handle

    async def billing_profile_and_method(self, org_id: str) -> tuple[BillingProfile, TokenizedMethod | None]:
        """What a checkout defaults to (A4): the billing profile and the payment method on file."""
        return await asyncio.to_thread(self._profile_and_method, org_id)

    def _profile_and_method(self, org_id: str) -> tuple[BillingProfile, TokenizedMethod | None]:
        with self.db.session() as s:
            profile = s.get(BillingProfile, org_id)
            if profile is None:
                raise BillingError(f"unknown organization {org_id!r}")
            method = active_payment_method(s, org_id)
        return profile, None if method is None else TokenizedMethod.model_validate(method, from_attributes=True)

    async def set_support_plan(self, org_id: str, plan: SupportPlan, trial_ends: date | None = None) -> None:
        """The plan an organization starts on (B1), and its support-plan workflow."""
        at = await self.clock()

        def insert() -> None:
            with self.db.session() as s:
                s.add(SupportPlanPeriod(org_id=org_id, plan=plan, start_date=at.date(), trial_ends=trial_ends,
                                        recorded_at=at))

        await asyncio.to_thread(insert)
        await self.temporal.start_workflow(
            SupportPlanWorkflow.run, SupportPlanInput(org_id=org_id, plan=plan), id=support_plan_workflow_id(org_id),
            task_queue=self.task_queue, search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id)]),
            static_summary=f"Support plan of {org_id}")

    async def change_support_plan(self, org_id: str, plan: SupportPlan, requested_by: str = "customer") -> PlanChange:
        """B1: upgrade, downgrade or cancel (to Basic); effective on the 1st of next month, or at once when a
        trial is cancelled. Raises NothingToDo when the organization is already on (or moving to) that plan."""
        def target() -> str:
            with self.db.session() as s:
                latest = s.exec(select(SupportPlanPeriod.plan).where(SupportPlanPeriod.org_id == org_id)
                                .order_by(SupportPlanPeriod.start_date.desc(), SupportPlanPeriod.id.desc())).first()
            return latest or SupportPlan.BASIC.value

        if await asyncio.to_thread(target) == plan.value:
            raise NothingToDo(f"nothing to change: {org_id} is already on (or moving to) the {plan.value} plan")
        handle = self.temporal.get_workflow_handle_for(SupportPlanWorkflow.run, support_plan_workflow_id(org_id))
        try:
            return await handle.execute_update(SupportPlanWorkflow.change_plan,
                                               ChangePlan(plan=plan, requested_by=requested_by))
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None

    async def set_billing_contact(self, org_id: str, billing_email: str | None, only_invoice_emails: bool,
                                  changed_by: str) -> None:
        """SPEC A3/D7: set or clear the billing e-mail and the "only send invoice e-mails to it" flag; audited.
        Raises NothingToDo when both are already so."""
        billing_email = check_email(billing_email) if billing_email else None
        at = await self.clock()

        def change() -> None:
            with self.db.session() as s:
                profile = s.get(BillingProfile, org_id)
                if profile is None:
                    raise BillingError(f"unknown organization {org_id!r}")
                if (profile.billing_email, profile.only_invoice_emails) == (billing_email, only_invoice_emails):
                    raise NothingToDo(f"nothing to change: the billing contact of {org_id} is already so")
                s.add(BillingContactChange(org_id=org_id, changed_by=changed_by, at=at,
                                           old_billing_email=profile.billing_email, new_billing_email=billing_email,
                                           old_only_invoice_emails=profile.only_invoice_emails,
                                           new_only_invoice_emails=only_invoice_emails))
                profile.billing_email, profile.only_invoice_emails, profile.updated_at = \
                    billing_email, only_invoice_emails, at
                s.add(profile)

        await asyncio.to_thread(change)

    async def set_billing_profile(self, org_id: str, profile: BillingProfileIn, changed_by: str) -> list[str]:
        """SPEC A1-A2: edit the billing address and tax ID (validated as at creation: BillingProfileIn); audited;
        later invoices are taxed by the new address and tax ID. A billing e-mail or its flag given explicitly is
        changed too, with the billing contact's own audit (D7). Returns the fields that changed; raises
        NothingToDo when none did."""
        at = await self.clock()
        address = profile.model_dump(exclude={"billing_email", "only_invoice_emails"})
        contact = profile.model_dump(include={"billing_email", "only_invoice_emails"} & profile.model_fields_set)

        def change() -> list[str]:
            with self.db.session() as s:
                row = s.get(BillingProfile, org_id)
                if row is None:
                    raise BillingError(f"unknown organization {org_id!r}")
                changed = {name: [getattr(row, name), value] for name, value in address.items()
                           if getattr(row, name) != value}
                new_contact = {"billing_email": row.billing_email, "only_invoice_emails": row.only_invoice_emails,
                               **contact}
                if (row.billing_email, row.only_invoice_emails) != tuple(new_contact.values()):
                    s.add(BillingContactChange(org_id=org_id, changed_by=changed_by, at=at,
                                               old_billing_email=row.billing_email,
                                               new_billing_email=new_contact["billing_email"],
                                               old_only_invoice_emails=row.only_invoice_emails,
                                               new_only_invoice_emails=new_contact["only_invoice_emails"]))
                    changed |= {name: [getattr(row, name), value] for name, value in new_contact.items()
                                if getattr(row, name) != value}
                if not changed:
                    raise NothingToDo(f"nothing to change: the billing profile of {org_id} is already so")
                if changed.keys() - contact.keys():
                    s.add(BillingProfileChange(org_id=org_id, changed_by=changed_by, at=at, changes=json.dumps(
                        {k: v for k, v in changed.items() if k in address})))
                for name, (_, value) in changed.items():
                    setattr(row, name, value)
                row.updated_at = at
                s.add(row)
            return sorted(changed)

        return await asyncio.to_thread(change)

    async def add_subscription(self, org_id: str, subscription: SubscriptionIn,
                               activation_code: Literal["applied", "pending"] = "applied") -> str | None:
        """Record a subscription (D1). Applied: active now, a prepaid one's credits at the top of the credit
        table (D3). Pending: its activation workflow e-mails the code and counts the grace period (D2);
        returns that workflow's ID."""
        at = await self.clock()
        pending = activation_code == "pending"

        def insert() -> int:
            with self.db.session() as s:
                if s.get(Organization, org_id) is None:
                    raise BillingError(f"unknown organization {org_id!r}")
                row = Subscription(org_id=org_id, created_at=at, status="PENDING_ACTIVATION" if pending else "ACTIVE",
                                   **subscription.model_dump())
                s.add(row)
                s.flush()
                if subscription.type == SubscriptionType.PREPAID and not pending:
                    terms = SubscriptionTerms(**subscription.model_dump())
                    for line in s.exec(select(CreditLine).where(CreditLine.org_id == org_id)):
                        line.position += 1
                        s.add(line)
                    s.add(CreditLine(org_id=org_id, position=0, kind="prepaid", amount=subscription.commitment,
                                     start_date=subscription.term_start, end_date=terms.term_end()))
                return row.id

        subscription_id = await asyncio.to_thread(insert)
        if not pending:
            return None
        workflow_id = activation_workflow_id(org_id, subscription_id)
        await self.temporal.start_workflow(
            ActivationWorkflow.run, ActivationInput(org_id=org_id, subscription_id=subscription_id,
                                                    grace=self.durations.activation_grace),
            id=workflow_id, task_queue=self.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(ORG_ID, org_id),
                                                     SearchAttributePair(ACTIVATION_STATUS, "ISSUING")]),
            static_summary=f"Activation of the {subscription.type.value} subscription of {org_id}")
        return workflow_id

    async def apply_activation_code(self, org_id: str, code: str, applied_by: str = "customer") -> ActivationState:
        """SPEC D2: apply the code the billing contact received; a wrong code is refused, nothing changes.
        Raises NothingToDo when the subscription's code has already been applied."""
        handle = await self._activation_handle(org_id)
        if (await handle.query(ActivationWorkflow.state)).status == "APPLIED":
            raise NothingToDo(f"nothing to apply: the activation code of {org_id} has already been applied")
        try:
            return await handle.execute_update(ActivationWorkflow.apply_code,
                                               ApplyCode(code_hash=hash_code(code), applied_by=applied_by))
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None

    async def reissue_activation_code(self, org_id: str) -> int:
        """Support re-issues a lost code: the old one stops working, the grace clock goes on (D2)."""
        handle = await self._activation_handle(org_id)
        try:
            return await handle.execute_update(ActivationWorkflow.reissue_code)
        except WorkflowUpdateFailedError as err:
            raise BillingError(str(err.cause.message if err.cause else err)) from None

    async def _activation_handle(self, org_id: str) -> WorkflowHandle:
        def find() -> int:
            with self.db.session() as s:
                row = s.exec(select(Activation).where(Activation.org_id == org_id)
                             .order_by(Activation.id.desc())).first()
                if row is None:
                    # The workflow may not have recorded its activation yet: fall back to the subscription.
                    sub = s.exec(select(Subscription).where(Subscription.org_id == org_id,
                                                            Subscription.status == "PENDING_ACTIVATION")).first()
                    if sub is None:
                        raise BillingError(f"organization {org_id!r} has no subscription awaiting activation")
                    return sub.id
                return row.subscription_id

        subscription_id = await asyncio.to_thread(find)
        return self.temporal.get_workflow_handle_for(ActivationWorkflow.run,
                                                     activation_workflow_id(org_id, subscription_id))

    async def refund_payment(self, org_id: str, invoice: str | int = "latest",
                             requested_by: str = "support") -> PaymentState:
        """SPEC D10: refund the invoice's card/PayPal charges through its payment workflow (REFUNDED payments on the
        invoice); D2's non-refundable charges are refused (BillingError), an already refunded one is NothingToDo."""
        return await self._operate(org_id, invoice, "refund", PaymentWorkflow.refund, Refund(requested_by=requested_by))

    async def pay_now(self, org_id: str, invoice: str | int = "latest", requested_by: str = "customer") -> PaymentState:
        """SPEC G2/E2: PAY NOW: charge the method on file on-session for what the invoice still has due."""
        return await self._operate(org_id, invoice, "pay", PaymentWorkflow.pay_now, PayNow(requested_by=requested_by))

    async def record_payment(self, org_id: str, invoice: str | int, method: Literal["wire", "ach"], amount: Decimal,
                             recorded_by: str = "operator", reference: str | None = None) -> PaymentState:
        """SPEC D10: a wire or ACH payment received for an invoice (partial payments leave the rest due)."""
        if isinstance(amount, float):
            raise BillingError("give the amount as a string or Decimal: money is never a float")
        request = RecordPayment(method=method, amount=amount, recorded_by=recorded_by, reference=reference)
        return await self._operate(org_id, invoice, "pay", PaymentWorkflow.record_payment, request)

    async def forgive_invoice(self, org_id: str, invoice: str | int, reason: str,
                              forgiven_by: str = "operator") -> PaymentState:
        """SPEC D10: an operator forgives an unpaid invoice (FORGIVEN), audited: who and why."""
        request = Forgive(reason=reason, forgiven_by=forgiven_by)
        return await self._operate(org_id, invoice, "forgive", PaymentWorkflow.forgive, request)

    async def _operate(self, org_id: str, invoice: str | int, action: str, update, arg) -> PaymentState:
        start = await asyncio.to_thread(self._operation_target, org_id, invoice, action)
        try:
            return await self.temporal.execute_update_with_start_workflow(
                update, arg, start_workflow_operation=payment_operation(self.task_queue, self.durations, start))
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = str(getattr(cause, "message", None) or cause or err)
            if getattr(cause, "type", None) == "NothingToDo":
                raise NothingToDo(message) from None
            raise BillingError(message) from None

    def _operation_target(self, org_id: str, invoice: str | int, action: str) -> ChargeInvoiceInput:
        """The invoice an operation acts on (`latest`: the newest it can apply to, never the PENDING one), as the
        input of a payment run that would carry it out. Nothing to act on: NothingToDo (SCENARIOS.md notices)."""
        self._require_org(org_id)
        with self.db.session() as s:
            query = select(Invoice).where(Invoice.org_id == org_id, Invoice.kind != "tax",
                                          Invoice.status != InvoiceStatus.PENDING)
            if invoice != "latest":
                row = s.exec(select(Invoice).where(Invoice.org_id == org_id, (Invoice.id == invoice)
                                                   if isinstance(invoice, int) else (Invoice.number == invoice))).first()
                if row is None:
                    raise BillingError(f"organization {org_id!r} has no invoice {invoice!r}")
                if row.kind == "tax":  # the tax invoice restates its cloud invoice: act on that one
                    cloud = s.get(Invoice, row.cloud_invoice_id)
                    if cloud.currency != row.currency and action == "pay":
                        raise BillingError(f"{row.number} is in {row.currency}: record the payment against cloud "
                                           f"invoice {cloud.number} in {cloud.currency}")
                    row = cloud
                candidates = [row]
            else:
                candidates = list(s.exec(query.order_by(Invoice.created_at.desc(), Invoice.id.desc())).all())
            payments = {c.id: list(s.exec(select(Payment).where(Payment.invoice_id == c.id)
                                          .order_by(Payment.attempt)).all()) for c in candidates}
        if action == "refund":
            fits = [c for c in candidates if any(p.status == "PAID" and p.method in ("card", "paypal")
                                                 for p in payments[c.id])]
            if not fits:
                raise NothingToDo(f"nothing to refund: {candidates[0].number} has no card or PayPal payment"
                                  if invoice != "latest" else f"nothing to refund: {org_id} has no paid invoice")
            target = fits[0]
            refusal = refusal_to_refund(payments[target.id])
            if refusal == "nothing to refund":
                raise NothingToDo(f"nothing to refund: the payment of {target.number} is already REFUNDED")
            if refusal is not None:
                raise BillingError(f"refund refused: the payment of {target.number} is {refusal}")
        else:
            fits = [c for c in candidates if outstanding(c) > 0]
            if not fits:
                verb = "forgive" if action == "forgive" else "pay"
                raise NothingToDo(f"nothing to {verb}: {candidates[0].number} is {candidates[0].status}"
                                  if invoice != "latest" and candidates else
                                  f"nothing to {verb}: {org_id} has no invoice with an amount due")
            target = fits[0]
            if target.billing_mode == BillingMode.ACTIVATION_HOLD:
                raise BillingError(f"{target.number} is held while the subscription's activation code is awaited "
                                   "(SPEC D2): it is charged when the grace period ends")
        due = outstanding(target)
        return ChargeInvoiceInput(
            org_id=org_id, invoice_id=target.id, invoice_number=target.number, period=target.period, amount=due,
            currency=target.currency, refundable=BillingMode(target.billing_mode).refundable,
            mode="await" if due > 0 else "serve",
            previous_attempts=max((p.attempt for p in payments[target.id]), default=0))

    async def add_credit_line(self, org_id: str, line: CreditLineIn) -> None:
        """Append a credit line at the bottom of the organization's credit table (drawn top to bottom, D3)."""
        def insert() -> None:
            with self.db.session() as s:
                if s.get(Organization, org_id) is None:
                    raise BillingError(f"unknown organization {org_id!r}")
                last = s.exec(select(CreditLine.position).where(CreditLine.org_id == org_id)
                              .order_by(CreditLine.position.desc())).first()
                s.add(CreditLine(org_id=org_id, position=0 if last is None else last + 1, kind=line.kind,
                                 amount=line.amount, start_date=line.start, end_date=line.end))

        await asyncio.to_thread(insert)

    async def record_fx_rate(self, currency: str, rate: Decimal, effective_at: datetime) -> None:
        """A USD -> currency rate in force from `effective_at` (SPEC M2)."""
        def insert() -> None:
            with self.db.session() as s:
                s.add(FxRate(currency=currency, rate=rate, effective_at=effective_at))

        await asyncio.to_thread(insert)

    async def run_month_end(self, period: str) -> MonthEndResult:
        """Start every organization's settlement for `period` (what the month-end Schedule does) and wait for it."""
        return await (await self.start_month_end(period)).result()

    async def start_month_end(self, period: str) -> WorkflowHandle:
        """Start the month-end of `period` without waiting for it (a second start finds the first, H1)."""
        workflow_id = month_end_workflow_id(period)
        try:
            handle = await self.temporal.start_workflow(
                MonthEndWorkflow.run, MonthEndInput(period=period), id=workflow_id, task_queue=self.task_queue,
                search_attributes=TypedSearchAttributes([SearchAttributePair(BILLING_PERIOD, period)]),
                static_summary=f"Month-end {period}")
        except WorkflowAlreadyStartedError:
            handle = self.temporal.get_workflow_handle_for(MonthEndWorkflow.run, workflow_id)
        return handle

    async def settlement_result(self, org_id: str, period: str) -> SettleResult:
        return await self.temporal.get_workflow_handle_for(SettlementWorkflow.run,
                                                           settlement_workflow_id(org_id, period)).result()

    async def settle(self, org_id: str, period: str) -> SettleResult:
        """Month-end for one organization (SPEC H1: one settlement per organization and period)."""
        with self.db.session() as s:
            number = cycle_invoice_number(s.connection(), org_id, period)
        await start_settlement_workflow(self.temporal, self.task_queue, org_id, period, number)  # or it was started
        return await self.temporal.get_workflow_handle_for(SettlementWorkflow.run,
                                                           settlement_workflow_id(org_id, period)).result()

    async def charge_invoice(self, invoice_number: str) -> WorkflowHandle:
        """Start the payment workflow of a closed invoice (a second call finds the first)."""
        invoice = await asyncio.to_thread(self._invoice, invoice_number)
        if invoice.status not in (InvoiceStatus.CLOSED, InvoiceStatus.FAILED) or invoice.amount_due <= 0:
            raise BillingError(f"invoice {invoice_number} is {invoice.status} with {invoice.amount_due} due: "
                               "nothing to charge")
        started = await start_payment_workflow(self.temporal, self.task_queue, self.durations, ChargeInvoiceInput(
            org_id=invoice.org_id, invoice_id=invoice.id, invoice_number=invoice.number, period=invoice.period,
            amount=invoice.amount_due, currency=invoice.currency))
        return self.temporal.get_workflow_handle_for(PaymentWorkflow.run, started.workflow_id)

    async def retry_payment(self, org_id: str, invoice: str | int = "latest",
                            requested_by: str = "customer") -> str:
        """SPEC F3: retry a failed payment (from the e-mail or the invoice) by signalling its workflow.
        Raises NothingToDo when the invoice has not failed (a second RETRY after the first one paid)."""
        number = await asyncio.to_thread(self._failed_invoice, org_id, invoice)
        workflow_id = payment_workflow_id(number)
        await self.temporal.get_workflow_handle(workflow_id).signal(PaymentWorkflow.retry,
                                                                     RetryRequest(requested_by=requested_by))
        return workflow_id

    def _require_org(self, org_id: str) -> Organization:
        with self.db.session() as s:
            org = s.get(Organization, org_id)
        if org is None:
            raise BillingError(f"unknown organization {org_id!r}")
        return org

    def _invoice(self, number: str) -> Invoice:
        with self.db.session() as s:
            invoice = s.exec(select(Invoice).where(Invoice.number == number)).first()
        if invoice is None:
            raise BillingError(f"unknown invoice {number!r}")
        return invoice

    def _org_invoice(self, org_id: str, invoice: str | int) -> Invoice:
        """An invoice of the organization, by ID or number; one that does not exist is an error, not a no-op."""
        self._require_org(org_id)
        with self.db.session() as s:
            query = select(Invoice).where(Invoice.org_id == org_id)
            row = s.exec(query.where(Invoice.id == invoice if isinstance(invoice, int)
                                     else Invoice.number == invoice)).first()
        if row is None:
            raise BillingError(f"organization {org_id!r} has no invoice {invoice!r}", field="invoice")
        return row

    def _failed_invoice(self, org_id: str, invoice: str | int) -> str:
        if invoice != "latest":
            row = self._org_invoice(org_id, invoice)
            if row.status != InvoiceStatus.FAILED:
                raise NothingToDo(f"nothing to retry: {row.number} is {row.status}")
            return row.number
        self._require_org(org_id)
        with self.db.session() as s:
            row = s.exec(select(Invoice).where(Invoice.org_id == org_id, Invoice.status == InvoiceStatus.FAILED)
                         .order_by(Invoice.created_at.desc(), Invoice.id.desc())).first()
        if row is not None:
            return row.number
        charged = self._latest_charged(org_id)
        if charged is None:
            raise NothingToDo(f"nothing to retry: {org_id} has no failed invoice")
        raise NothingToDo(f"nothing to retry: {charged.number} is {charged.status}")
