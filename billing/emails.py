"""Billing e-mail: who receives it (SPEC A3) and what it says, one template per kind."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel

from billing.config import public_base_url
from billing.money import format_amount


def billing_recipients(owners: Iterable[str], billing_admins: Iterable[str], billing_email: str | None,
                       only_invoice_emails: bool) -> list[str]:
    """SPEC A3: the billing e-mail only, or it plus Owners and Billing Admins, or those alone."""
    members = list(dict.fromkeys([*owners, *billing_admins]))
    if not billing_email:
        return members
    if only_invoice_emails:
        return [billing_email]
    return list(dict.fromkeys([billing_email, *members]))


class EmailContent(BaseModel):
    subject: str
    body: str


def _money(amount: Decimal | str, currency: str) -> str:
    return f"{format_amount(Decimal(amount), currency)} {currency}"


def render(kind: str, org_id: str, data: dict[str, str]) -> EmailContent:
    """Render an e-mail of `kind`; `data` holds the facts the template names (strings only)."""
    base = public_base_url()
    invoices_link = f"{base}/orgs/{org_id}/billing/invoices"
    invoice = data.get("invoice", "")
    invoice_link = f"{invoices_link}/{invoice}" if invoice else invoices_link
    if kind == "payment_succeeded":
        amount = _money(data["amount"], data["currency"])
        return EmailContent(
            subject=f"Receipt: payment of {amount} for invoice {invoice}",
            body=(f"We received your payment of {amount} for invoice {invoice} "
                  f"(billing period {data.get('period', '')}).\n\nView the invoice: {invoice_link}\n"),
        )
    if kind == "payment_failed":
        amount = _money(data["amount"], data["currency"])
        reason = data.get("failure_code", "declined")
        extra = ""
        if reason == "authentication_required":
            extra = (f"\nYour card issuer requires you to authenticate the card (Strong Customer "
                     f"Authentication). Authenticate it here: {base}/orgs/{org_id}/billing/payment-method\n")
        return EmailContent(
            subject=f"Payment failed for invoice {invoice}",
            body=(f"We could not charge {amount} for invoice {invoice} (reason: {reason}).\n"
                  f"Update your payment method and retry the payment from your invoices: {invoices_link}\n"
                  f"Retry this payment: {invoice_link}#retry\n{extra}"),
        )
    raise ValueError(f"unknown e-mail kind {kind!r}")
