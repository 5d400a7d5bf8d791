"""The statuses and roles the rules name (SPEC D8, I2): one enum each, used by every layer."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ORG_OWNER = "ORG_OWNER"
    ORG_BILLING_ADMIN = "ORG_BILLING_ADMIN"


class OrgStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    LOCKED = "LOCKED"


class InvoiceStatus(StrEnum):  # SPEC D8
    PENDING = "PENDING"
    CLOSED = "CLOSED"
    PAID = "PAID"
    FAILED = "FAILED"
    FREE = "FREE"
    PREPAID = "PREPAID"
    INVOICED = "INVOICED"
    FORGIVEN = "FORGIVEN"


class PaymentStatus(StrEnum):  # SPEC D8
    NEW = "NEW"
    PROCESSING = "PROCESSING"
    PAID = "PAID"
    FAILED = "FAILED"
    FAILED_AUTHENTICATION = "FAILED_AUTHENTICATION"
    PENDING_REVERSAL = "PENDING_REVERSAL"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
