"""What the billing profile and payment method pages read (SPEC A1-A3, A5, D7, E1): the profile, the audit trail
of its changes and of the billing contact's, the method on file and an India card's mandate. Read-only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from store.db import Database
from store.queries import active_payment_method
from store.tables import (BillingContactChange, BillingProfile, BillingProfileChange, Mandate, Organization,
                          PaymentMethod)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    changed_by: str
    what: str  # "billing address / tax ID" or "billing contact"
    changes: list[tuple[str, str, str]]  # (field, old, new)


def organization(db: Database, org_id: str) -> Organization | None:
    with db.session() as s:
        return s.get(Organization, org_id)


def profile(db: Database, org_id: str) -> BillingProfile | None:
    with db.session() as s:
        return s.get(BillingProfile, org_id)


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def audit_trail(db: Database, org_id: str, limit: int = 50) -> list[AuditEntry]:
    """A1-A2 and D7: every change of the address, tax ID and billing contact, newest first."""
    with db.session() as s:
        profile_changes = list(s.exec(select(BillingProfileChange).where(BillingProfileChange.org_id == org_id)
                                      .order_by(BillingProfileChange.at.desc()).limit(limit)))
        contact_changes = list(s.exec(select(BillingContactChange).where(BillingContactChange.org_id == org_id)
                                      .order_by(BillingContactChange.at.desc()).limit(limit)))
    entries = [AuditEntry(at=c.at, changed_by=c.changed_by, what="billing address / tax ID",
                          changes=[(name, _shown(old), _shown(new)) for name, (old, new) in
                                   sorted(json.loads(c.changes).items())]) for c in profile_changes]
    for c in contact_changes:
        changes = []
        if c.old_billing_email != c.new_billing_email:
            changes.append(("billing_email", _shown(c.old_billing_email), _shown(c.new_billing_email)))
        if c.old_only_invoice_emails != c.new_only_invoice_emails:
            changes.append(("only_invoice_emails", _shown(c.old_only_invoice_emails),
                            _shown(c.new_only_invoice_emails)))
        entries.append(AuditEntry(at=c.at, changed_by=c.changed_by, what="billing contact", changes=changes))
    return sorted(entries, key=lambda e: e.at, reverse=True)[:limit]


@dataclass(frozen=True)
class MethodView:
    method: PaymentMethod | None
    mandate: Mandate | None  # E1: the RBI e-mandate of an India-issued card


def payment_method(db: Database, org_id: str) -> MethodView:
    with db.session() as s:
        method: PaymentMethod | None = active_payment_method(s, org_id)
        mandate = None
        if method is not None and method.issuing_country == "IN":
            mandate = s.exec(select(Mandate).where(Mandate.org_id == org_id, Mandate.payment_method_id == method.id)
                             .order_by(Mandate.id.desc())).first()
    return MethodView(method=method, mandate=mandate)
