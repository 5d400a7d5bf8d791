"""Small builders for test data: cards, organizations, invoices written straight to the database."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from billing.cards import CardIn, PayPalIn, payment_method_adapter
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import BillingProfile, Invoice, Organization, OrgMember, PaymentMethod, Role

AT = datetime(2027, 2, 1, tzinfo=timezone.utc)
TODAY = date(2027, 1, 1)
VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
SCA = "4000002760003184"
AMEX = "378282246310005"


def card(number: str = VISA, cvc: str | None = None) -> CardIn:
    cvc = cvc or ("1234" if number.startswith(("34", "37")) else "123")
    return payment_method_adapter.validate_python(
        {"type": "card", "number": number, "exp": "12/30", "cvc": cvc, "name": "Ada Lovelace"},
        context={"today": TODAY})


def paypal(email: str = "payments@acme.test") -> PayPalIn:
    return payment_method_adapter.validate_python({"type": "paypal", "email": email})


def org_with_method(db: Database, gateway: SandboxGateway, method: CardIn | PayPalIn | None = None,
                    org_id: str = "acme", billing_email: str | None = None, only_invoice_emails: bool = False,
                    created: datetime = AT) -> None:
    tokenized = None
    if method is not None:
        tokenized = gateway.tokenize_card(method, AT) if isinstance(method, CardIn) else gateway.tokenize_paypal(method, AT)
    with db.session() as s:
        s.add(Organization(id=org_id, name=org_id.title(), created_at=created))
        s.flush()
        s.add(OrgMember(org_id=org_id, email=f"owner@{org_id}.test", role=Role.ORG_OWNER))
        s.add(OrgMember(org_id=org_id, email=f"billing@{org_id}.test", role=Role.ORG_BILLING_ADMIN))
        s.add(BillingProfile(org_id=org_id, country="US", state="NY", city="New York", address_line1="1 Main St",
                             postal_code="10001", billing_email=billing_email,
                             only_invoice_emails=only_invoice_emails, updated_at=AT))
        if tokenized is not None:
            s.add(PaymentMethod(org_id=org_id, created_at=AT, **tokenized.model_dump()))


def closed_invoice(db: Database, org_id: str = "acme", total: str = "59.52", period: str = "2027-01") -> Invoice:
    amount = Decimal(total)
    with db.session() as s:
        invoice = Invoice(key=f"{org_id}:{period}:cloud", org_id=org_id, kind="cloud", period=period,
                          status="CLOSED", currency="USD", usage=amount, billed_usage=amount, tax=Decimal(0),
                          total=amount, amount_due=amount, created_at=AT)
        s.add(invoice)
        s.flush()
        invoice.number = f"INV-{period.replace('-', '')}-{invoice.id:06d}"
        s.add(invoice)
    return invoice
