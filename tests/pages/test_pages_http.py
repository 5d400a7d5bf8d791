"""The pages over HTTP on SQLite and PostgreSQL (no Temporal): signing in, who sees what, the invoice list and page,
the billing profile's validation and audit trail, and the payment method form's validation (SPEC G0-G5, A1-A5)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from email import message_from_bytes

from sqlmodel import select

from services import signin
from store.tables import BillingProfileChange, EmailMessage, PageSession, SigninToken
from tests.pages.conftest import csrf_of, sign_in


async def test_a_member_signs_in_with_the_emailed_link_once(browser_client, seeded, smtp_server):
    inbox, _ = smtp_server
    before = len(inbox.messages)
    form = await browser_client.get("/orgs/acme/signin")
    sent = await browser_client.post("/orgs/acme/signin", data={"email": "Billing@Acme.test",
                                                                 "csrf_token": csrf_of(form.text)})
    assert sent.status_code == 200 and "a sign-in link is on its way" in sent.text
    mail = message_from_bytes(inbox.messages[-1].content)
    assert len(inbox.messages) == before + 1 and mail["To"] == "billing@acme.test"
    link = re.search(r"http://pages.test(/orgs/acme/signin/(sl_[\w-]+))", mail.get_payload(decode=True).decode()).group(1)
    token = link.rsplit("/", 1)[1]
    with seeded.db.session() as s:  # the outbox and the tokens table never hold a working link
        outbox = s.exec(select(EmailMessage).where(EmailMessage.kind == "signin_link")).one()
        assert token not in outbox.body and outbox.delivered_at is not None
        assert all(token not in row.token_hash for row in s.exec(select(SigninToken)))
    page = await browser_client.get(link)
    assert "data-autosubmit" in page.text
    opened = await browser_client.post(link, data={"csrf_token": csrf_of(page.text)})
    assert opened.status_code == 303 and opened.headers["location"] == "/orgs/acme/invoices"
    cookie = opened.headers["set-cookie"]
    assert "billing_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    invoices = await browser_client.get("/orgs/acme/invoices")
    assert invoices.status_code == 200 and "billing@acme.test" in invoices.text and "Billing Admin" in invoices.text
    again = await browser_client.post(link, data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 410 and "already been used" in again.text


async def test_nobody_learns_who_is_a_member_and_strangers_get_no_link(browser_client, seeded, smtp_server):
    inbox, _ = smtp_server
    before = len(inbox.messages)
    form = await browser_client.get("/orgs/acme/signin")
    sent = await browser_client.post("/orgs/acme/signin", data={"email": "owner@globex.test",
                                                                 "csrf_token": csrf_of(form.text)})
    assert sent.status_code == 200 and "a sign-in link is on its way" in sent.text
    assert len(inbox.messages) == before


async def test_an_expired_link_and_a_forged_form_are_refused(browser_client, seeded):
    token = signin.issue_link_token(seeded.db, "acme", "owner@acme.test",
                                    datetime.now(timezone.utc) - timedelta(hours=1))
    page = await browser_client.get(f"/orgs/acme/signin/{token}")
    expired = await browser_client.post(f"/orgs/acme/signin/{token}", data={"csrf_token": csrf_of(page.text)})
    assert expired.status_code == 410 and "expired" in expired.text
    forged = await browser_client.post(f"/orgs/acme/signin/{token}", data={"csrf_token": "x" * 64})
    assert forged.status_code == 403
    with seeded.db.session() as s:
        assert s.exec(select(PageSession)).all() == []


async def test_pages_are_for_signed_in_members_of_that_organization(browser_client, seeded):
    anonymous = await browser_client.get("/orgs/acme/invoices")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/orgs/acme/signin")
    assert (await browser_client.get("/v1/invoices/" + seeded.cloud.number + "/pdf")).status_code == 401
    await sign_in(browser_client, seeded.db)
    other = await browser_client.get("/orgs/globex/invoices")
    assert other.status_code == 303 and "/orgs/globex/signin" in other.headers["location"]
    missing = await browser_client.get(f"/orgs/acme/invoices/{seeded.other.number}")
    assert missing.status_code == 404 and seeded.other.number in missing.text and "globex" not in missing.text
    download = await browser_client.get(f"/v1/invoices/{seeded.other.number}/csv")
    assert download.status_code == 404
    no_csrf = await browser_client.post(f"/orgs/acme/invoices/{seeded.cloud.number}/retry", data={})
    assert no_csrf.status_code == 403
    page = await browser_client.get("/orgs/acme/invoices")
    out = await browser_client.post("/orgs/acme/signout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await browser_client.get("/orgs/acme/invoices")).status_code == 303


async def test_the_list_filters_by_status_and_date_newest_first_with_the_cycle_on_top(browser_client, seeded):
    await sign_in(browser_client, seeded.db)
    everything = (await browser_client.get("/orgs/acme/invoices")).text
    cycle = everything.index("Current billing cycle")
    assert cycle < everything.index("<table") and seeded.pending.number in everything[cycle:everything.index("<table")]
    numbers = re.findall(r"<td>(INV-[\w-]+)</td>", everything)
    assert numbers == [seeded.pending.number, seeded.tax.number, seeded.cloud.number, seeded.paid.number,
                       seeded.free.number]
    assert "Invoices from 2026-10-01 to 2027-02-15" in everything  # blank From/To: creation date, today (G1)
    free = (await browser_client.get("/orgs/acme/invoices", params={"status": "free"})).text
    assert re.findall(r"<td>(INV-[\w-]+)</td>", free) == [seeded.free.number]
    successful = (await browser_client.get("/orgs/acme/invoices", params={"status": "successful"})).text
    assert re.findall(r"<td>(INV-[\w-]+)</td>", successful) == [seeded.paid.number]
    pending = (await browser_client.get("/orgs/acme/invoices", params={"status": "pending"})).text
    assert set(re.findall(r"<td>(INV-[\w-]+)</td>", pending)) == {seeded.pending.number, seeded.tax.number,
                                                                  seeded.cloud.number}
    dated = (await browser_client.get("/orgs/acme/invoices", params={"from": "2026-11-15", "to": "2026-12-31"})).text
    assert re.findall(r"<td>(INV-[\w-]+)</td>", dated) == [seeded.paid.number]
    bad = await browser_client.get("/orgs/acme/invoices", params={"from": "yesterday"})
    assert bad.status_code == 422 and "give a date as YYYY-MM-DD" in bad.text


async def test_the_invoice_page_has_every_section_and_pages_its_usage_details(browser_client, seeded):
    await sign_in(browser_client, seeded.db)
    number = seeded.cloud.number
    page = (await browser_client.get(f"/orgs/acme/invoices/{number}")).text
    for section in ("Running total", "Summary by Project", "Summary by Service", "Payment Details", "Usage Details",
                    "Tax invoice", "Bank details", "Lines 1–100 of 250", "Page 1 of 3", "RETRY", "PAY NOW",
                    "VIEW DETAILS", "1 Main St", seeded.tax.number, "card_declined"):
        assert section in page, section
    assert f"USD {seeded.cloud.total:,.2f}" in page  # amounts with their currency and minor unit
    last = (await browser_client.get(f"/orgs/acme/invoices/{number}", params={"page": 3})).text
    assert "Lines 201–250 of 250" in last
    assert (await browser_client.get(f"/orgs/acme/invoices/{number}", params={"page": 4})).status_code == 404
    for which in ("by_service", "by_deployment"):
        chart = await browser_client.get(f"/orgs/acme/invoices/{number}/charts/{which}.svg")
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in chart.text and ("Atlas Dedicated" in chart.text or "Cluster0" in chart.text)


async def test_the_billing_profile_names_the_field_on_save_and_keeps_an_audit_trail(browser_client, seeded):
    await sign_in(browser_client, seeded.db)
    page = await browser_client.get("/orgs/acme/billing-profile")
    form = {"csrf_token": csrf_of(page.text), "country": "CA", "address_line1": "1 King St W", "city": "Toronto",
            "state": "ON", "postal_code": "M5H 1A1", "tax_id": "123456789XX0001"}
    refused = await browser_client.post("/orgs/acme/billing-profile", data=form)
    assert refused.status_code == 422 and 'id="tax_id-error"' in refused.text and "VAT/GST ID:" in refused.text
    saved = await browser_client.post("/orgs/acme/billing-profile", data={**form, "tax_id": "123456782RT0001"})
    assert saved.status_code == 303
    with seeded.db.session() as s:
        change = s.exec(select(BillingProfileChange)).one()
    assert change.changed_by == "owner@acme.test" and json.loads(change.changes)["country"] == ["US", "CA"]
    contact = await browser_client.post("/orgs/acme/billing-contact", data={
        "csrf_token": csrf_of(page.text), "billing_email": "ap@acme.test", "only_invoice_emails": "on"})
    assert contact.status_code == 303
    trail = (await browser_client.get("/orgs/acme/billing-profile")).text
    assert "123456782RT0001" in trail and "ap@acme.test" in trail and "owner@acme.test" in trail
    bad_email = await browser_client.post("/orgs/acme/billing-contact", data={
        "csrf_token": csrf_of(page.text), "billing_email": "not-an-address"})
    assert bad_email.status_code == 422 and 'id="billing_email-error"' in bad_email.text


async def test_the_payment_method_form_refuses_a_bad_card_naming_the_field_and_never_echoes_it(browser_client,
                                                                                             seeded):
    await sign_in(browser_client, seeded.db)
    page = await browser_client.get("/orgs/acme/payment-method")
    refused = await browser_client.post("/orgs/acme/payment-method", data={
        "csrf_token": csrf_of(page.text), "type": "card", "name": "Ada Lovelace", "number": "4242424242424241",
        "exp": "13/30", "cvc": "9876"})
    assert refused.status_code == 422
    assert 'id="number-error"' in refused.text and "check digit" in refused.text
    assert 'id="exp-error"' in refused.text and "between 01 and 12" in refused.text
    assert "4242424242424241" not in refused.text and "9876" not in refused.text
    short_cvc = await browser_client.post("/orgs/acme/payment-method", data={
        "csrf_token": csrf_of(page.text), "type": "card", "name": "Ada Lovelace", "number": "4242424242424242",
        "exp": "12/30", "cvc": "12"})
    assert short_cvc.status_code == 422 and 'id="cvc-error"' in short_cvc.text and "CVC" in short_cvc.text
