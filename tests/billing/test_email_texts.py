"""Every e-mail's subject and body, word for word, against tests/billing/email_texts.json: what customers read
changes only on purpose (the file is the reviewed text; regenerate it with `python -m tests.billing.test_email_texts`
after a deliberate change and read the diff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing.emails import bank_details, render

GOLDEN = Path(__file__).with_name("email_texts.json")
DATA = {"invoice": "INV-202701-000001", "amount": "59.52", "currency": "USD", "amount_due": "59.52",
        "period": "2027-01", "cloud_invoice": "INV-202701-000002", "level": "standard", "plan": "developer",
        "effective": "2027-02-01", "note": "Trial ends 2027-01-15.", "invoices": "INV-202701-000001",
        "last4": "0123", "limit": "1400.00", "deadline": "2027-02-03 00:00", "subscription": "monthly_commitment",
        "code": "ABCDE-FGHJK-LMNPQ-RSTUV", "grace_days": "30"}
CASES = {
    "payment_succeeded": {}, "payment_failed": {"failure_code": "card_declined"},
    "payment_failed/sca": {"failure_code": "authentication_required"},
    "payment_failed/mandate": {"failure_code": "mandate_limit_exceeded"},
    "payment_failed/no_reason": {}, "tax_invoice": {}, "consulting_confirmation": {},
    "support_plan_changed": {}, "org_suspended": {}, "org_locked": {}, "mandate_registered": {},
    "authorization_required": {}, "activation_code": {}, "activation_confirmed": {},
    "payment_succeeded/no_invoice": {"invoice": ""},
    "activation_code/grace_14": {"grace_days": "14"},
}
# Every kind again with only the facts its template cannot do without: an optional fact left out reads as
# nothing (or its stated default), never as "None".
REQUIRED = {"amount", "currency", "amount_due", "limit", "code"}
CASES |= {f"{kind}/bare": {} for kind in sorted({case.partition("/")[0] for case in CASES})}


def rendered() -> dict[str, dict[str, str]]:
    texts = {}
    for case, extra in CASES.items():
        data = {k: v for k, v in (DATA | extra).items() if not (case.endswith("no_reason") and k == "failure_code")}
        if case.endswith("/bare"):
            data = {k: v for k, v in data.items() if k in REQUIRED}
        content = render(case.partition("/")[0], "acme", data)
        texts[case] = {"subject": content.subject, "body": content.body}
    return texts


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_email_reads_exactly_as_reviewed(case, monkeypatch):
    monkeypatch.delenv("BILLING_PUBLIC_URL", raising=False)  # the defaults, whatever the shell says
    monkeypatch.delenv("BILLING_BANK_DETAILS", raising=False)
    assert rendered()[case] == json.loads(GOLDEN.read_text())[case]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="^unknown e-mail kind 'birthday_card'$"):
        render("birthday_card", "acme", DATA)


def test_the_bank_details_come_from_the_configuration(monkeypatch):
    monkeypatch.setenv("BILLING_BANK_DETAILS", "Acme Bank, IBAN DE89 3704 0044 0532 0130 00")
    assert bank_details() == "Acme Bank, IBAN DE89 3704 0044 0532 0130 00"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(rendered(), indent=2, sort_keys=True) + "\n")
