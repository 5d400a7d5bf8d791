"""The database tables (SQLModel). Rows never leave activities: workflows see pydantic models only."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Date, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from billing.statuses import BillingMode, InvoiceStatus, OrgStatus, PaymentStatus, Role  # noqa: F401  (the columns' values)
from store.db import ExactDecimal, UTCDateTime


def _ts(**kw) -> object:
    return Field(sa_type=UTCDateTime, **kw)


def _money(**kw) -> object:
    return Field(sa_type=ExactDecimal, **kw)


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    status: str = Field(default=OrgStatus.ACTIVE, max_length=16)
    created_at: datetime = _ts()


class OrgMember(SQLModel, table=True):
    __tablename__ = "org_members"
    __table_args__ = (UniqueConstraint("org_id", "email", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    email: str = Field(max_length=320)
    role: str = Field(max_length=32)


class BillingProfile(SQLModel, table=True):
    __tablename__ = "billing_profiles"
    org_id: str = Field(primary_key=True, foreign_key="organizations.id", max_length=64)
    country: str = Field(max_length=2)
    state: str = Field(max_length=100)
    city: str = Field(max_length=100)
    address_line1: str = Field(max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str = Field(max_length=20)
    company_name: str | None = Field(default=None, max_length=200)
    tax_id: str | None = Field(default=None, max_length=40)
    billing_email: str | None = Field(default=None, max_length=320)
    only_invoice_emails: bool = False
    updated_at: datetime = _ts()


class BillingContactChange(SQLModel, table=True):
    """SPEC D7: every change of the billing e-mail settings, audited: who, when, old, new."""

    __tablename__ = "billing_contact_changes"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    changed_by: str = Field(max_length=320)
    at: datetime = _ts()
    old_billing_email: str | None = Field(default=None, max_length=320)
    new_billing_email: str | None = Field(default=None, max_length=320)
    old_only_invoice_emails: bool
    new_only_invoice_emails: bool


class BillingProfileChange(SQLModel, table=True):
    """SPEC A1-A2: every edit of the billing address or tax ID, audited: who, when, and the old and new values of
    the fields that changed (JSON `{"field": [old, new]}`), nothing else of the profile."""

    __tablename__ = "billing_profile_changes"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    changed_by: str = Field(max_length=320)
    at: datetime = _ts()
    changes: str = Field(sa_column=Column(Text, nullable=False))


class SupportPlanPeriod(SQLModel, table=True):
    """SPEC B1: an organization's support plan over time; billing follows these periods."""

    __tablename__ = "support_plan_periods"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    plan: str = Field(max_length=16)  # basic | developer | premium
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))  # exclusive
    trial_ends: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    billing_stopped: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    recorded_at: datetime = _ts()


class PaymentMethod(SQLModel, table=True):
    """What we keep of a card or PayPal account (SPEC A6): never the number or the CVC."""

    __tablename__ = "payment_methods"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    kind: str = Field(max_length=16)  # card | paypal
    token: str = Field(max_length=64, unique=True)
    brand: str | None = Field(default=None, max_length=20)
    last4: str | None = Field(default=None, max_length=4)
    exp_month: int | None = None
    exp_year: int | None = None
    issuing_country: str | None = Field(default=None, max_length=2)
    paypal_email: str | None = Field(default=None, max_length=320)
    active: bool = True
    created_at: datetime = _ts()


class UsageLine(SQLModel, table=True):
    """A rated usage line item; the product does not price resources."""

    __tablename__ = "usage_lines"
    __table_args__ = (Index("ix_usage_org_period", "org_id", "period"),
                      UniqueConstraint("org_id", "key", name="uq_usage_lines_org_key"))
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", max_length=64)
    period: str = Field(max_length=7)  # YYYY-MM of the usage's start
    project: str = Field(max_length=100)
    deployment: str | None = Field(default=None, max_length=100)
    service: str = Field(max_length=100)
    sku: str = Field(max_length=100)
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
    quantity: Decimal = _money()
    unit: str = Field(default="", max_length=20)
    unit_price: Decimal = _money()
    # I3: the backend's own key for the line; a re-sent line with the same key is not recorded twice.
    key: str | None = Field(default=None, max_length=200)


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)  # business key: org:period:kind[:purchase]
    number: str | None = Field(default=None, max_length=40, unique=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    kind: str = Field(max_length=16)  # cloud | tax | consulting
    period: str = Field(max_length=7)
    status: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    usage: Decimal = _money()
    billed_usage: Decimal = _money()
    tax: Decimal = _money()
    total: Decimal = _money()
    amount_due: Decimal = _money()
    created_at: datetime = _ts()
    paid_at: datetime | None = _ts(default=None)
    # How the billed amount is settled: a billing.statuses.BillingMode.
    billing_mode: str = Field(default=BillingMode.CARD, max_length=16)
    credits_applied: Decimal = _money(default=Decimal("0"))  # D8: the starting balance drawn from credits
    invoiced: Decimal = _money(default=Decimal("0"))  # billed under the subscription (INVOICED)
    fx_rate: Decimal | None = _money(default=None)  # tax invoice: USD -> currency at the end of the period (M2)
    cloud_invoice_id: int | None = Field(default=None, foreign_key="invoices.id")  # a tax invoice's cloud invoice
    explanation: str | None = Field(default=None, max_length=300)  # why billed usage differs from usage (G3)
    forgiven: Decimal = _money(default=Decimal("0"))  # D10: what an operator forgave (see InvoiceForgiveness)


class InvoiceForgiveness(SQLModel, table=True):
    """SPEC D10: an operator forgave an unpaid invoice: who, why, when and how much."""

    __tablename__ = "invoice_forgiveness"
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoices.id", unique=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    reason: str = Field(max_length=500)
    forgiven_by: str = Field(max_length=320)
    at: datetime = _ts()


class InvoiceLine(SQLModel, table=True):
    """A line of an invoice (G2 Usage Details). Keyed by invoice and position, with no foreign-key trigger: a
    month-end writes a million of them, only ever in the transaction that creates their invoice (migration 0007)."""

    __tablename__ = "invoice_lines"
    invoice_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    position: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    project: str = Field(max_length=100)
    deployment: str | None = Field(default=None, max_length=100)
    service: str = Field(max_length=100)
    sku: str = Field(max_length=100)
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
    quantity: Decimal = _money()
    unit: str = Field(default="", max_length=20)
    unit_price: Decimal = _money()
    amount: Decimal = _money()


class InvoiceTaxLine(SQLModel, table=True):
    """SPEC C3/M1: one line per tax, rounded once; the invoice's tax is their sum."""

    __tablename__ = "invoice_tax_lines"
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    position: int
    name: str = Field(max_length=40)
    rate: Decimal = _money()
    amount: Decimal = _money()


class Payment(SQLModel, table=True):
    """One charge attempt against an invoice; the idempotency key makes a duplicate impossible (SPEC M3)."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    invoice_id: int = Field(foreign_key="invoices.id", index=True)
    attempt: int
    method: str = Field(max_length=16)  # card | paypal | credits | marketplace | wire | ach
    payment_method_id: int | None = Field(default=None, foreign_key="payment_methods.id")
    status: str = Field(max_length=24, index=True)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    fx_rate: Decimal | None = _money(default=None)
    refundable: bool = True
    failure_code: str | None = Field(default=None, max_length=64)
    gateway_charge_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class PaymentEvent(SQLModel, table=True):
    """A payment's status history."""

    __tablename__ = "payment_events"
    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", index=True)
    status: str = Field(max_length=24)
    detail: str | None = Field(default=None, max_length=200)
    at: datetime = _ts()


class Subscription(SQLModel, table=True):
    """SPEC D1: an organization's subscription, with the running state of its commitment."""

    __tablename__ = "subscriptions"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    type: str = Field(max_length=24)
    term_start: date = Field(sa_column=Column(Date, nullable=False))
    term_months: int
    commitment: Decimal = _money()
    currency: str = Field(default="USD", max_length=3)
    status: str = Field(default="ACTIVE", max_length=24)
    created_at: datetime = _ts()
    # Commitment state after the last settled month; updated in the same transaction as that month's invoice.
    bank: Decimal = _money(default=Decimal("0"))
    cumulative_usage: Decimal = _money(default=Decimal("0"))
    cumulative_billed: Decimal = _money(default=Decimal("0"))
    months_billed: int = 0
    banked_total: Decimal = _money(default=Decimal("0"))  # SPEC D1/D3: all the term has banked (the bank's row)
    last_period: str | None = Field(default=None, max_length=7)


class Activation(SQLModel, table=True):
    """SPEC D2: a subscription's activation code (its keyed hash only) and the grace period of its organization."""

    __tablename__ = "activations"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    subscription_id: int = Field(foreign_key="subscriptions.id", unique=True)
    code_hash: str | None = Field(default=None, max_length=64)
    issued: int = 0  # how many codes were issued (the first, then each re-issue through support)
    status: str = Field(default="PENDING", max_length=16)  # PENDING | APPLIED
    first_usage_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    grace_ends_at: datetime | None = _ts(default=None)
    grace_expired: bool = False
    created_at: datetime = _ts()
    applied_at: datetime | None = _ts(default=None)


class FxRate(SQLModel, table=True):
    """USD -> currency rates, each in force from `effective_at` on (SPEC M2, E3)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("currency", "effective_at"),)
    id: int | None = Field(default=None, primary_key=True)
    currency: str = Field(max_length=3)
    rate: Decimal = _money()
    effective_at: datetime = _ts()


class CreditLine(SQLModel, table=True):
    """SPEC D3: credit lines, drawn top to bottom in `position` order."""

    __tablename__ = "credit_lines"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    position: int
    kind: str = Field(max_length=32)
    amount: Decimal = _money()
    used: Decimal = _money(default=Decimal("0"))
    currency: str = Field(default="USD", max_length=3)
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))


class EmailMessage(SQLModel, table=True):
    """The e-mail outbox: every message is recorded before delivery is attempted."""

    __tablename__ = "email_outbox"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    kind: str = Field(max_length=40)
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(default=None)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class SandboxToken(SQLModel, table=True):
    """The sandbox gateway's vault: what a token stands for (behaviour, not the number)."""

    __tablename__ = "sandbox_tokens"
    token: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    behaviour: str = Field(max_length=32)
    brand: str | None = Field(default=None, max_length=20)
    last4: str | None = Field(default=None, max_length=4)
    issuing_country: str | None = Field(default=None, max_length=2)
    authenticated: bool = False
    created_at: datetime = _ts()


class Mandate(SQLModel, table=True):
    """SPEC E1-E5: an RBI e-mandate registered on the customer's behalf for an India-issued card."""

    __tablename__ = "mandates"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    payment_method_id: int = Field(foreign_key="payment_methods.id")
    gateway_mandate_id: str = Field(max_length=64, unique=True)
    registration_key: str = Field(max_length=200, unique=True)  # a retried registration finds the first
    status: str = Field(default="ACTIVE", max_length=16)  # ACTIVE | REVOKED | REPLACED
    limit: Decimal = _money()
    currency: str = Field(default="USD", max_length=3)
    registered_at: datetime = _ts()
    revoked_at: datetime | None = _ts(default=None)


class SandboxMandate(SQLModel, table=True):
    """The sandbox issuer's side of a mandate: it decides whether recurring charges may go through."""

    __tablename__ = "sandbox_mandates"
    id: str = Field(primary_key=True, max_length=64)
    token: str = Field(max_length=64, index=True)
    limit_usd: Decimal = _money()
    status: str = Field(default="ACTIVE", max_length=16)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(default=None)


class SandboxCharge(SQLModel, table=True):
    """The sandbox gateway's own record of charges and refunds, keyed by idempotency key."""

    __tablename__ = "sandbox_charges"
    id: str = Field(primary_key=True, max_length=64)
    idempotency_key: str = Field(max_length=200, unique=True)
    token: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=16)  # charge | refund
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    outcome: str = Field(max_length=16)  # succeeded | failed
    failure_code: str | None = Field(default=None, max_length=64)
    refund_of: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    # India (RBI) charges stay "processing" until the issuer settles them (SPEC E3-E6).
    mandate_id: str | None = Field(default=None, max_length=64)
    usd_amount: Decimal | None = _money(default=None)
    settles_at: datetime | None = _ts(default=None)
    requires_authorization: bool = False
    authorized_at: datetime | None = _ts(default=None)
    webhook_sent: bool = False


class ApiKey(SQLModel, table=True):
    """SPEC I2: an API key, kept as its SHA-256 only (shown once when created), bound to one organization and
    role, or an operator key (no organization)."""

    __tablename__ = "api_keys"
    id: str = Field(primary_key=True, max_length=40)  # public: "key_…", printed in lists and audits
    secret_hash: str = Field(max_length=64, unique=True)
    org_id: str | None = Field(default=None, foreign_key="organizations.id", index=True, max_length=64)
    role: str = Field(max_length=32)  # billing.permissions.ApiRole
    project: str | None = Field(default=None, max_length=100)  # a project role's project (B2)
    name: str = Field(max_length=200)  # who or what uses it: kept in audits (changed_by, raised_by)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(default=None)


class IdempotencyRecord(SQLModel, table=True):
    """SPEC I3: a POST's Idempotency-Key with its request's hash and its first response, for 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=64)  # SHA-256 of the caller's credentials: two callers' keys never collide
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None  # None while the first request is still being answered
    content_type: str | None = Field(default=None, max_length=100)
    body: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime = _ts(index=True)


class WebhookReceipt(SQLModel, table=True):
    """SPEC I5: every inbound gateway webhook accepted, by its id: a replay finds it and changes nothing."""

    __tablename__ = "webhook_receipts"
    id: str = Field(primary_key=True, max_length=100)
    type: str = Field(max_length=60)
    received_at: datetime = _ts()
    outcome: str = Field(max_length=200)  # what it became (the signal sent, or why it was ignored)


class WebhookEndpoint(SQLModel, table=True):
    """SPEC I6: where a backend wants our events, with the secret their signatures use."""

    __tablename__ = "webhook_endpoints"
    id: str = Field(primary_key=True, max_length=40)
    org_id: str | None = Field(default=None, foreign_key="organizations.id", index=True, max_length=64)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)  # "whsec_…" (Standard Webhooks)
    event_types: str = Field(default="*", max_length=1000)  # comma-separated, or * for every event
    created_at: datetime = _ts()
    disabled_at: datetime | None = _ts(default=None)


class EventDelivery(SQLModel, table=True):
    """SPEC I6: one event for one endpoint, delivered at least once by its own workflow."""

    __tablename__ = "event_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)
    id: str = Field(primary_key=True, max_length=60)
    event_id: str = Field(max_length=100, index=True)
    event_type: str = Field(max_length=60)
    org_id: str | None = Field(default=None, foreign_key="organizations.id", index=True, max_length=64)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", index=True, max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the JSON body, signed at each attempt
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(default=None)


class DeliveryAttempt(SQLModel, table=True):
    """SPEC I6: every attempt at delivering an event, with what the endpoint answered."""

    __tablename__ = "delivery_attempts"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="event_deliveries.id", index=True, max_length=60)
    attempt: int
    at: datetime = _ts()
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0


class SupportCase(SQLModel, table=True):
    """SPEC B2: a support case raised for a project of the organization."""

    __tablename__ = "support_cases"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    project: str = Field(max_length=100)
    subject: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    severity: str = Field(default="normal", max_length=16)
    status: str = Field(default="open", max_length=16)
    raised_by: str = Field(max_length=320)
    created_at: datetime = _ts()


class SigninToken(SQLModel, table=True):
    """G5/I2: a one-time sign-in link for a member of an organization, kept as its SHA-256 only; it expires and
    works once (`used_at`)."""

    __tablename__ = "signin_tokens"
    token_hash: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    email: str = Field(max_length=320)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(default=None)


class PageSession(SQLModel, table=True):
    """A signed-in member's browser session on the pages (G5), kept as the SHA-256 of its random id; the cookie
    carries the id, signed. Ends when it expires or the member signs out (`ended_at`)."""

    __tablename__ = "page_sessions"
    id_hash: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(foreign_key="organizations.id", index=True, max_length=64)
    email: str = Field(max_length=320)
    role: str = Field(max_length=32)  # billing.permissions.ApiRole the member acts with (I2)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    ended_at: datetime | None = _ts(default=None)
