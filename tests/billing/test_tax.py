"""Tax by region (SPEC C1-C4, TAX.md): every row for both products, with and without a valid tax ID."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from activities.tax import quote
from billing.profiles import BillingProfileIn
from billing.tax import TABLE as TABLE_FILE
from billing.tax import (InvalidTaxId, OfflineRegistry, Product, TaxRate, TaxRule, TaxTable, default_table,
                         _pattern, normalize_tax_id, tax_lines_for)
from starter.scenario import load_scenario
from tests.scenario_harness import closed_invoices, run_scenario

ON = date(2027, 1, 31)
THOUSAND = Decimal("1000.00")
ATLAS, FLEX = Product.ATLAS, Product.FLEX_CONSULTING

# (country, subdivision, valid tax ID, product) -> expected [(name, rate)], one row of TAX.md per block.
VALID_IDS = {"AU": "51824753556", "CA": "123456782RT0001", "DE": "DE136695976", "FR": "FR40303265045",
             "NL": "NL004495445B01", "IE": "IE6388047V", "IN": "27AAPFU0939F1ZV", "IM": "GB980780684",
             "KE": "P051365947M", "MY": "W10-1808-31000003", "NO": "NO995525828MVA", "SA": "300000000000003",
             "ZA": "4123456789", "SG": "00192200M", "CH": "CHE-107.787.577 IVA", "GB": "GB980780684"}
TABLE = [
    # region, subdivision, atlas w/o ID, atlas with ID, flex w/o ID, flex with ID
    ("AU", None, [("GST", "0.10")], [], [("GST", "0.10")], []),
    ("CA", "AB", [("GST", "0.05")], [], [("GST", "0.05")], []),
    ("CA", "ON", [("HST", "0.13")], [], [("HST", "0.13")], []),
    ("CA", "NS", [("HST", "0.14")], [], [("HST", "0.14")], []),
    ("CA", "NB", [("HST", "0.15")], [], [("HST", "0.15")], []),
    ("CA", "NL", [("HST", "0.15")], [], [("HST", "0.15")], []),
    ("CA", "PE", [("HST", "0.15")], [], [("HST", "0.15")], []),
    ("CA", "BC", [("GST", "0.05"), ("PST", "0.07")], [("PST", "0.07")], [("GST", "0.05"), ("PST", "0.07")], [("PST", "0.07")]),
    ("CA", "MB", [("GST", "0.05"), ("PST", "0.07")], [("PST", "0.07")], [("GST", "0.05"), ("PST", "0.07")], [("PST", "0.07")]),
    ("CA", "SK", [("GST", "0.05"), ("PST", "0.06")], [("PST", "0.06")], [("GST", "0.05"), ("PST", "0.06")], [("PST", "0.06")]),
    ("CA", "QC", [("GST", "0.05"), ("QST", "0.09975")], [("QST", "0.09975")], [("GST", "0.05"), ("QST", "0.09975")], [("QST", "0.09975")]),
    ("DE", None, [("VAT", "0.19")], [], [("VAT", "0.19")], []),
    ("FR", None, [("VAT", "0.20")], [], [("VAT", "0.20")], []),
    ("NL", None, [("VAT", "0.21")], [], [("VAT", "0.21")], []),
    ("IE", None, [("VAT", "0.23")], [("VAT", "0.23")], [("VAT", "0.23")], [("VAT", "0.23")]),
    ("IN", None, [("GST", "0.18")], [], [("GST", "0.18")], []),
    ("IM", None, [("UK VAT", "0.20")], [], [], []),
    ("KE", None, [("VAT", "0.16")], [("VAT", "0.16")], [("VAT", "0.16")], [("VAT", "0.16")]),
    ("MY", None, [("SST", "0.08")], [("SST", "0.08")], [("SST", "0.08")], [("SST", "0.08")]),
    ("NO", None, [("VAT", "0.25")], [], [("VAT", "0.25")], []),
    ("SA", None, [("VAT", "0.15")], [], [("VAT", "0.15")], []),
    ("ZA", None, [("VAT", "0.15")], [("VAT", "0.15")], [], []),
    ("SG", None, [("GST", "0.09")], [], [], []),
    ("CH", None, [("VAT", "0.081")], [("VAT", "0.081")], [("VAT", "0.081")], [("VAT", "0.081")]),
    ("GB", None, [("VAT", "0.20")], [], [], []),
    ("US", "NY", [], [], [], []),
    ("JP", None, [], [], [], []),  # countries not listed: no tax
]
CASES = [(country, sub, product, with_id, expected)
         for country, sub, atlas_no, atlas_id, flex_no, flex_id in TABLE
         for product, with_id, expected in [(ATLAS, False, atlas_no), (ATLAS, True, atlas_id),
                                            (FLEX, False, flex_no), (FLEX, True, flex_id)]
         if not (with_id and country in ("US", "JP"))]


@pytest.mark.parametrize("country, sub, product, with_id, expected", CASES,
                         ids=[f"{c}-{s or ''}-{p}-{'id' if i else 'noid'}" for c, s, p, i, _ in CASES])
def test_every_row_of_the_region_table(country, sub, product, with_id, expected):
    tax_id = VALID_IDS.get(country) if with_id else None
    result = quote(country=country, subdivision=sub, tax_id=tax_id, product=product, amount=THOUSAND,
                   currency="USD", on=ON, registry=OfflineRegistry())
    assert result.tax_id_valid == with_id
    assert [(line.name, line.rate) for line in result.lines] == [(n, Decimal(r)) for n, r in expected]
    assert all(line.amount == (THOUSAND * line.rate).quantize(Decimal("0.01")) for line in result.lines)
    assert result.tax == sum((line.amount for line in result.lines), Decimal(0))


@pytest.mark.parametrize("country, number", sorted(VALID_IDS.items()))
def test_every_sample_tax_id_is_valid_for_its_country(country, number):
    assert normalize_tax_id(country, number)


@pytest.mark.parametrize("country, number, words", [
    ("CA", "123456789RT0001", "check digit"),        # GST ID with a bad check digit
    ("CA", "123456782", "RT"),                        # a bare business number is not a GST ID
    ("DE", "DE136695975", "check digit"),
    ("DE", "FR40303265045", "starts with DE"),       # an ID must match the billing country
    ("GB", "GB123", "length"),
    ("US", "123456789", "US billing profile"),
    ("SA", "123", "15 digits"),
])
def test_malformed_or_foreign_tax_ids_are_refused(country, number, words):
    with pytest.raises(InvalidTaxId, match=words):
        normalize_tax_id(country, number)


def test_tax_id_errors_name_the_field():
    with pytest.raises(ValueError) as err:
        BillingProfileIn(country="CA", state="BC", city="Vancouver", address_line1="1 Main", postal_code="V5K 0A1",
                         tax_id="123456789RT0001")
    assert err.value.errors()[0]["loc"] == ("tax_id",)


def test_rates_follow_their_effective_dates():
    # Finland raised VAT from 24% to 25.5% on 2024-09-01: an invoice uses the rate on its period's last day.
    before = tax_lines_for(country="FI", subdivision=None, tax_id_valid=False, product=ATLAS, amount=THOUSAND,
                           currency="USD", on=date(2024, 8, 31))
    after = tax_lines_for(country="FI", subdivision=None, tax_id_valid=False, product=ATLAS, amount=THOUSAND,
                          currency="USD", on=date(2024, 9, 30))
    assert (before[0].amount, after[0].amount) == (Decimal("240.00"), Decimal("255.00"))


def test_a_rate_change_is_one_line_of_data(tmp_path: Path):
    data = TABLE_FILE.read_text()
    lines = data.splitlines(keepends=True)
    after = next(i for i, line in enumerate(lines) if line.lstrip().startswith('{from = 2024-03-01, rate = "0.08"}'))
    changed = "".join(lines[:after + 1] + ['    {from = 2027-07-01, rate = "0.10"},  # a change to come\n']
                      + lines[after + 1:])
    assert changed != data
    path = tmp_path / "table.toml"
    path.write_text(changed)
    table = TaxTable.load(path)
    rate = lambda day: tax_lines_for(country="MY", subdivision=None, tax_id_valid=False, product=ATLAS,  # noqa: E731
                                     amount=THOUSAND, currency="USD", on=day, table=table)[0].rate
    assert (rate(date(2027, 6, 30)), rate(date(2027, 7, 31))) == (Decimal("0.08"), Decimal("0.10"))


amounts = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False, allow_infinity=False)
rates = st.lists(st.decimals(min_value=0, max_value=Decimal("0.5"), places=5, allow_nan=False), min_size=1,
                 max_size=3)


@given(amount=amounts, rate_values=rates)
def test_tax_lines_sum_to_the_tax_and_rounding_never_moves_a_cent(amount, rate_values):
    table = TaxTable([TaxRule(country="ZZ", name=f"T{i}", atlas=True, flex_consulting=True,
                              exempt_with_valid_id=False, rates=[TaxRate(start=date(1970, 1, 1), rate=r)])
                      for i, r in enumerate(rate_values)])
    lines = tax_lines_for(country="ZZ", subdivision=None, tax_id_valid=False, product=ATLAS, amount=amount,
                          currency="USD", on=ON, table=table)
    assert len(lines) == len(rate_values)
    for line, rate in zip(lines, rate_values):
        exact = amount * rate
        assert line.amount == line.amount.quantize(Decimal("0.01"))
        assert abs(line.amount - exact) <= Decimal("0.005")  # half-up: at most half a cent, never more
    exact_total = sum((amount * rate for rate in rate_values), Decimal(0))
    tax = quote(country="ZZ", subdivision=None, tax_id=None, product=ATLAS, amount=amount, currency="USD", on=ON,
                registry=OfflineRegistry(), table=table).tax
    assert tax == sum((line.amount for line in lines), Decimal(0))  # the invoice's tax is its lines' sum
    assert abs(tax - exact_total) <= Decimal("0.005") * len(lines)  # one half-cent at most per line


@given(amount=amounts, country=st.sampled_from(sorted(default_table().countries())), with_id=st.booleans())
def test_real_table_lines_are_exactly_rounded(amount, country, with_id):
    lines = tax_lines_for(country=country, subdivision="BC" if country == "CA" else None, tax_id_valid=with_id,
                          product=ATLAS, amount=amount, currency="USD", on=ON)
    for line in lines:
        assert abs(line.amount - amount * line.rate) <= Decimal("0.005")


async def test_simulated_invoices_carry_the_worked_example_taxes(new_database):
    output = await run_scenario(load_scenario(str(Path(__file__).parents[1] / "scenarios" / "tax_by_region.yaml")),
                                new_database())
    taxes = {invoice["org"]: (invoice["tax"], invoice["total"]) for invoice in closed_invoices(output)}
    assert taxes == {
        "ie-vat": ("230.00", "1230.00"), "de-vat": ("0.00", "1000.00"), "de": ("190.00", "1190.00"),
        "gb-vat": ("0.00", "1000.00"), "gb": ("200.00", "1200.00"), "ca-bc-gst": ("70.00", "1070.00"),
        "ca-bc": ("120.00", "1120.00"), "ca-on": ("130.00", "1130.00"), "my": ("80.00", "1080.00"),
        "us": ("0.00", "1000.00")}
    for invoice in output["invoices"]:
        assert sum(Decimal(t["amount"]) for t in invoice["tax_lines"]) == Decimal(invoice["tax"])
        assert Decimal(invoice["total"]) == Decimal(invoice["billed_usage"]) + Decimal(invoice["tax"])
    paid = {p["org"]: p["amount"] for p in output["payments"] if p["status"] == "PAID"}
    assert paid == {org: total for org, (_, total) in taxes.items()}


@pytest.mark.parametrize("country, typed, canonical", [
    ("FR", "40303265045", "FR40303265045"),  # the country prefix is optional as typed
    ("FR", "fr 403 032 650 45", "FR40303265045"),
    ("FR", "FR-403.032.650-45", "FR40303265045"),
    ("DE", "136695976", "DE136695976"),
    ("DE", " de 136 695 976 ", "DE136695976"),
    ("AT", "U13585627", "ATU13585627"),
    ("IE", "6388047V", "IE6388047V"),
    ("GR", "094259216", "EL094259216"),  # Greece's VAT prefix is EL
    ("GR", "EL094259216", "EL094259216"),
])
def test_an_eu_vat_number_gets_its_country_prefix(country, typed, canonical):
    assert normalize_tax_id(country, typed) == canonical
    assert OfflineRegistry().is_valid(country, typed) is True


@pytest.mark.parametrize("country, typed, message", [
    ("DE", "FR40303265045", "a VAT number for DE starts with DE, not FR"),
    ("DE", "ZZ123", "a VAT number for DE starts with DE, not ZZ"),
    ("GR", "GR094259216", "a VAT number for GR starts with EL, not GR"),
    ("DE", "136695975", "not a valid DE VAT number: The number's checksum or check digit is invalid."),
    ("US", "123456789", "a US billing profile has no VAT/GST tax ID (SPEC A2)"),
    ("DE", "   ", "is empty"),
    ("CA", "123456782", "a GST ID is the 9-digit business number, 'RT' and a 4-digit reference "
                        "(e.g. 123456782RT0001)"),
    ("SA", "123", "not a valid SA tax ID: expected 15 digits starting and ending with 3"),
])
def test_a_refused_tax_id_says_why(country, typed, message):
    with pytest.raises(InvalidTaxId) as err:
        normalize_tax_id(country, typed)
    assert str(err.value) == message
    assert OfflineRegistry().is_valid(country, typed) is False


def test_a_country_outside_the_table_uses_python_stdnum_when_it_knows_a_scheme():
    assert normalize_tax_id("JP", " 5-8356-7825-6246 ") == "5835678256246"
    assert normalize_tax_id("BR", "16.727.230/0001-97") == "16727230000197"
    with pytest.raises(InvalidTaxId) as err:
        normalize_tax_id("JP", "5835678256245")
    assert str(err.value) == "not a valid JP tax ID: The number's checksum or check digit is invalid."


def test_a_country_with_no_scheme_keeps_the_id_as_given_up_to_40_characters():
    assert normalize_tax_id("AE", " 100123456700003 ") == "100123456700003"
    assert normalize_tax_id("AE", "x" * 40) == "x" * 40
    with pytest.raises(InvalidTaxId) as err:
        normalize_tax_id("AE", "x" * 41)
    assert str(err.value) == "is longer than 40 characters"
    assert OfflineRegistry().is_valid("AE", "anything") is True
    assert OfflineRegistry().is_valid("AE", None) is False


def test_a_day_before_every_rate_of_a_charged_tax_is_an_error():
    table = TaxTable([TaxRule(country="ZZ", name="VAT", atlas=True, flex_consulting=False, exempt_with_valid_id=True,
                              rates=[TaxRate(start=date(2027, 1, 1), rate=Decimal("0.2")),
                                     TaxRate(start=date(2026, 1, 1), rate=Decimal("0.1"))])])

    def lines(on: date, product: Product = ATLAS, tax_id_valid: bool = False) -> list[tuple[str, Decimal, Decimal]]:
        return [(line.name, line.rate, line.amount)
                for line in tax_lines_for(country="ZZ", subdivision=None, tax_id_valid=tax_id_valid, product=product,
                                          amount=Decimal("10.05"), currency="USD", on=on, table=table)]

    assert lines(date(2026, 1, 1)) == [("VAT", Decimal("0.1"), Decimal("1.01"))]  # 1.005 rounds half-up
    assert lines(date(2026, 12, 31)) == [("VAT", Decimal("0.1"), Decimal("1.01"))]
    assert lines(date(2027, 1, 1)) == [("VAT", Decimal("0.2"), Decimal("2.01"))]
    assert lines(date(2027, 1, 1), product=FLEX) == []
    assert lines(date(2027, 1, 1), tax_id_valid=True) == []
    with pytest.raises(LookupError) as err:
        lines(date(2025, 12, 31))
    assert str(err.value) == "no VAT rate for ZZ in force on 2025-12-31"
    assert lines(date(2025, 12, 31), product=FLEX) == []  # a tax that is not charged needs no rate


@pytest.mark.parametrize("country, typed, canonical", [
    ("DE", "D-E 136.695.976", "DE136695976"),  # separators are dropped before the prefix is read
    ("DE", "136695976", "DE136695976"),  # the prefix is optional as typed
    ("GB", "gb 980 7806 84", "GB980780684"),
    ("IM", "980780684", "GB980780684"),  # the Isle of Man's IDs are GB VAT numbers
])
def test_a_tax_id_is_stored_in_its_canonical_form(country, typed, canonical):
    assert normalize_tax_id(country, typed) == canonical


@pytest.mark.parametrize("regex, description, country, typed, canonical", [
    (r"4\d{9}", "a 10-digit VAT number starting with 4", "ZA", "4-123.456 789", "4123456789"),
    (r"[A-Z]\d{2}\d{4}\d{8}", "an SST registration number such as W10-1808-31000003", "MY", "w10-1808-31000003",
     "W10180831000003"),
    (r"3\d{13}3", "15 digits starting and ending with 3", "SA", "300 0000 0000 0003", "300000000000003"),
])
def test_a_format_only_validator_compacts_upper_cases_and_refuses_the_wrong_shape(regex, description, country,
                                                                                  typed, canonical):
    # The validators are built when the module loads; a fresh one is built here so that the check itself runs
    # under the test (the table's own entries are exercised by the samples above).
    check = _pattern(regex, description)
    assert check(typed, country) == canonical
    with pytest.raises(InvalidTaxId, match=f"^not a valid {country} tax ID: expected {re.escape(description)}$"):
        check(typed + "0", country)
