"""Billing e-mail: who receives it (SPEC A3) and what it says, one template per kind."""

from __future__ import annotations

import os
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
        elif reason == "mandate_limit_exceeded":  # SPEC E2
            extra = (f"\nWhy: this month's charge is above the USD 1,400 monthly limit of the recurring-payment "
                     f"mandate that Reserve Bank of India rules require for your card, so it cannot be charged "
                     f"automatically. Pay it yourself with PAY NOW (your card issuer will ask you to authenticate; "
                     f"the mandate's limit does not apply): {invoice_link}#pay-now\n")
        return EmailContent(
            subject=f"Payment failed for invoice {invoice}",
            body=(f"We could not charge {amount} for invoice {invoice} (reason: {reason}).\n"
                  f"Update your payment method and retry the payment from your invoices: {invoices_link}\n"
                  f"Retry this payment: {invoice_link}#retry\n{extra}"),
        )
    if kind == "tax_invoice":
        currency = data["currency"]
        due = _money(data["amount_due"], currency)
        return EmailContent(
            subject=f"Tax invoice {invoice} for {data.get('period', '')}: {due} due",
            body=(f"Your tax invoice {invoice} for the billing period {data.get('period', '')} "
                  f"(cloud invoice {data.get('cloud_invoice', '')}).\n\n"
                  f"Total: {_money(data['amount'], currency)}\nAmount due: {due}\n\n"
                  f"Pay by bank transfer to:\n{bank_details()}\nReference: {invoice}\n\n"
                  f"Cloud invoice and usage: {invoices_link}/{data.get('cloud_invoice', '')}\n"),
        )
    if kind == "consulting_confirmation":
        return EmailContent(
            subject=f"Your Flex Consulting purchase ({data.get('level', '')}) is confirmed",
            body=(f"Thank you for buying Flex Consulting ({data.get('level', '')}), invoice {invoice}: "
                  f"{_money(data['amount'], data['currency'])} paid.\n\n"
                  "Flex Consulting units are used by scheduling consulting hours: reply to this e-mail or open "
                  f"{base}/orgs/{org_id}/support/consulting to book your first session with a consulting engineer. "
                  "Units not scheduled stay available on your organization's Support page.\n"),
        )
    if kind in ("support_plan_changed",):
        return EmailContent(
            subject=f"Support plan: {data.get('plan', '')} from {data.get('effective', '')}",
            body=(f"Your organization's support plan changes to {data.get('plan', '')}, effective "
                  f"{data.get('effective', '')}. {data.get('note', '')}\n"),
        )
    if kind in ("org_suspended", "org_locked"):
        suspended = kind == "org_suspended"
        return EmailContent(
            subject=f"Organization {org_id} is {'suspended' if suspended else 'locked'}: invoices are overdue",
            body=(f"Invoices of organization {org_id} have been unpaid for more than "
                  f"{'30' if suspended else '60'} days ({data.get('invoices', '')}), so the organization is "
                  f"{'suspended' if suspended else 'locked'}. Pay everything outstanding to make it active again: "
                  f"{invoices_link}\n"),
        )
    if kind == "mandate_registered":
        return EmailContent(
            subject=f"A recurring-payment mandate was registered for your card ending {data.get('last4', '')}",
            body=(f"Under Reserve Bank of India rules we registered an e-mandate of "
                  f"{_money(data['limit'], data['currency'])} per month on your card ending {data.get('last4', '')}. "
                  "Your card issuer may show it in INR and will notify you by SMS. We charge only your usage; the "
                  "mandate is the most we may charge in a month. Manage or revoke it with your card issuer.\n"),
        )
    if kind == "authorization_required":
        return EmailContent(
            subject=f"Authorize the payment of {_money(data['amount'], data['currency'])} for invoice {invoice}",
            body=(f"The charge of {_money(data['amount'], data['currency'])} for invoice {invoice} is above "
                  f"INR 15,000: under Reserve Bank of India rules you must authorize it through the link your card "
                  f"issuer sent you, before {data.get('deadline', '')} UTC, or the payment fails.\n\n"
                  f"Invoice: {invoice_link}\n"),
        )
    if kind == "activation_code":
        return EmailContent(
            subject=f"Your subscription activation code for organization {org_id}",
            body=(f"Your {data.get('subscription', '')} subscription is ready to activate.\n\n"
                  f"Activation code: {data['code']}\n\n"
                  f"Apply it on the organization's Billing page: {base}/orgs/{org_id}/billing/overview\n"
                  f"If the code is not applied within the first {data.get('grace_days', '30')} days of use, the card "
                  "on file is charged for that usage, and those card charges are non-refundable.\n"
                  "Lost this code? Ask support to re-issue it: the old code then stops working.\n"),
        )
    if kind == "activation_confirmed":
        return EmailContent(
            subject=f"Subscription activated for organization {org_id}",
            body=(f"Your {data.get('subscription', '')} subscription is active: from now on charges are deducted "
                  f"from its credits.\n\nBilling overview: {base}/orgs/{org_id}/billing/overview\n"),
        )
    raise ValueError(f"unknown e-mail kind {kind!r}")


def bank_details() -> str:
    """Where subscription customers wire the amount due (configuration; the sandbox's by default)."""
    return os.environ.get("BILLING_BANK_DETAILS", "Sandbox Bank plc, IBAN GB33 BUKB 2020 1555 5555 55, BIC BUKBGB22, "
                                                  "account holder: Billing Engine Ltd")
