"""Downloads (SPEC G4): the PDF read back as text and as pictures, the CSVs read back to the cent, and who may
download (an API key with READ_BILLING, or a signed-in member), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import subprocess
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from billing.permissions import ApiRole
from services import documents
from tests.api.conftest import auth, make_keys
from tests.pages.conftest import ARTIFACTS, sign_in


def _pixels_near(images: list, color: str, tolerance: int = 40) -> int:
    target = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int(sum((np.abs(np.asarray(image, dtype=int) - target) <= tolerance).all(axis=-1).sum() for image in images))


async def test_the_pdf_has_the_number_address_totals_tax_lines_and_charts_that_are_not_blank(
        browser_client, seeded, tmp_path, database_url):
    await sign_in(browser_client, seeded.db)
    number = seeded.cloud.number
    response = await browser_client.get(f"/v1/invoices/{number}/pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / f"{number}.pdf"
    pdf.write_bytes(response.content)
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    for expected in (number, "1 Main St", "New York, NY 10001", f"USD {seeded.cloud.total:,.2f}",
                     f"VAT 23% USD {seeded.cloud.tax:,.2f}", "Summary by Project", "Summary by Service",
                     "Payment Details", "card_declined", seeded.tax.number, "SKU_"):
        assert expected in text, expected
    # The first page printed as a picture: the charts' bars and ring are drawn in their colours.
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages
    images = [Image.open(page).convert("RGB") for page in pages]
    assert _pixels_near(images, documents.PALETTE[0]) > 300  # bars, and the first deployment's share
    assert _pixels_near(images, documents.PALETTE[1]) > 100  # the second deployment's share
    if "sqlite" in database_url:
        ARTIFACTS.mkdir(exist_ok=True)
        for page in pages:
            (ARTIFACTS / f"invoice-pdf-{page.name}").write_bytes(page.read_bytes())


async def test_the_tax_invoice_pdf_has_the_bank_details_and_its_currency(browser_client, seeded, tmp_path):
    await sign_in(browser_client, seeded.db)
    response = await browser_client.get(f"/v1/invoices/{seeded.tax.number}/pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Tax invoice " + seeded.tax.number in text and "Bank details" in text and "IBAN" in text
    assert f"EUR {seeded.tax.total:,.2f}" in text and "1 USD = 0.92 EUR" in text
    assert f"Cloud invoice {seeded.cloud.number}" in text


async def test_the_csvs_list_every_line_and_the_totals_to_the_cent(browser_client, seeded):
    await sign_in(browser_client, seeded.db)
    number = seeded.cloud.number
    usage = await browser_client.get(f"/v1/invoices/{number}/usage.csv")
    assert usage.status_code == 200 and usage.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(usage.text)))
    assert len(rows) == 250
    assert sum(Decimal(r["amount"]) for r in rows) == seeded.cloud.usage
    assert all(len(r["amount"].split(".")[1]) == 2 and r["currency"] == "USD" for r in rows)
    assert rows[0]["start_date"] == "2027-01-01" and rows[0]["quantity"] == "1.5" and rows[0]["unit_price"] == "0.03"
    whole = list(csv.DictReader(io.StringIO((await browser_client.get(f"/v1/invoices/{number}/csv")).text)))
    lines = [r for r in whole if r["record"] == "line"]
    figures = {r["record"]: r for r in whole if r["record"] != "line"}
    assert len(lines) == 250 and [r["amount"] for r in lines] == [r["amount"] for r in rows]
    assert Decimal(figures["usage"]["amount"]) == seeded.cloud.usage == sum(Decimal(r["amount"]) for r in lines)
    assert Decimal(figures["tax"]["amount"]) == seeded.cloud.tax and figures["tax"]["description"] == "VAT 23.00%"
    assert Decimal(figures["total"]["amount"]) == seeded.cloud.total
    assert Decimal(figures["amount_due"]["amount"]) == seeded.cloud.amount_due
    # The tax invoice restates its cloud invoice's lines, its figures in EUR.
    tax = list(csv.DictReader(io.StringIO((await browser_client.get(f"/v1/invoices/{seeded.tax.number}/csv")).text)))
    assert len([r for r in tax if r["record"] == "line"]) == 250
    assert [r["currency"] for r in tax if r["record"] == "total"] == ["EUR"]


@pytest.mark.parametrize("role, status", [(ApiRole.ORGANIZATION_OWNER, 200), (ApiRole.BILLING_ADMIN, 200),
                                          (ApiRole.ORGANIZATION_READ_ONLY, 200), (ApiRole.PROJECT_OWNER, 403),
                                          (ApiRole.PROJECT_READ_ONLY, 403)])
async def test_downloads_with_an_api_key_need_read_billing(browser_client, seeded, role, status):
    keys = make_keys(seeded.db)
    for suffix in ("pdf", "csv", "usage.csv"):
        response = await browser_client.get(f"/v1/invoices/{seeded.cloud.number}/{suffix}", headers=auth(keys[role]))
        assert response.status_code == status, suffix
    other = await browser_client.get(f"/v1/invoices/{seeded.cloud.number}/csv", headers=auth(keys.other_org_owner))
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    operator = await browser_client.get(f"/v1/invoices/{seeded.cloud.number}/usage.csv",
                                        params={"org": "acme"}, headers=auth(keys[ApiRole.OPERATOR]))
    assert operator.status_code == 200
    bad = await browser_client.get(f"/v1/invoices/{seeded.cloud.number}/csv", headers=auth("bk_nope"))
    assert bad.status_code == 401


async def test_text_with_commas_quotes_and_line_breaks_reads_back_unchanged(browser_client, seeded):
    from tests.pages.conftest import add_invoice, line_rows

    odd = [{**row, "project": name} for row, name in zip(line_rows(3, "2026-09"),
                                                          ('north, "east"', "line\nbreak", "plain"))]
    invoice = add_invoice(seeded.db, "acme", "2026-09", "CLOSED", odd)
    await sign_in(browser_client, seeded.db)
    rows = list(csv.DictReader(io.StringIO((await browser_client.get(f"/v1/invoices/{invoice.number}/usage.csv")).text)))
    assert [r["project"] for r in rows] == ['north, "east"', "line\nbreak", "plain"]
    whole = list(csv.DictReader(io.StringIO((await browser_client.get(f"/v1/invoices/{invoice.number}/csv")).text)))
    assert [r["project"] for r in whole if r["record"] == "line"] == ['north, "east"', "line\nbreak", "plain"]
