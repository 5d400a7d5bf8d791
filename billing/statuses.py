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


class BillingMode(StrEnum):
    """How an invoice's billed amount is settled (D1, D2, D6)."""

    CARD = "card"  # charged to the payment method on file
    SUBSCRIPTION = "subscription"  # billed under the subscription: the tax invoice is paid by transfer (INVOICED)
    MARKETPLACE = "marketplace"  # invoiced through the cloud marketplace, which taxes it (no tax invoice)
    ACTIVATION_HOLD = "activation_hold"  # D2: the card charge waits while the activation code may still be applied
    GRACE_CHARGE = "grace_charge"  # D2: the code came too late: charged to the card, non-refundable

    @property
    def charged_to_card(self) -> bool:
        return self in (BillingMode.CARD, BillingMode.GRACE_CHARGE)

    @property
    def invoiced(self) -> bool:
        """What credits leave is invoiced (INVOICED, D8), by the subscription or the marketplace, not charged."""
        return self in (BillingMode.SUBSCRIPTION, BillingMode.MARKETPLACE)

    @property
    def taxable(self) -> bool:
        return self is not BillingMode.MARKETPLACE

    @property
    def refundable(self) -> bool:
        return self is not BillingMode.GRACE_CHARGE
