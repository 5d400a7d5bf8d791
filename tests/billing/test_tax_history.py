"""The region table against official-source VAT data: today's standard rates (eu-vat-rates-data, built from the
European Commission's TEDB) and every EU standard rate day by day since 2020-01-01 (duty27-eu-vat)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import duty27_eu_vat
import eu_vat_rates_data
import pytest

from billing.tax import TABLE as TABLE_FILE
from billing.tax import Product, TaxRule, default_table, tax_lines_for
from starter import cli

HISTORY_FROM = date(2020, 1, 1)  # the table keeps its history from this day on
TODAY = date.today()
# duty27-eu-vat writes Greece as EL (the EU's code); the table and eu-vat-rates-data use ISO's GR.
EU = sorted("GR" if c.code == "EL" else c.code for c in duty27_eu_vat.list_countries())
# The Isle of Man charges UK VAT (TAX.md), so it is checked against the United Kingdom's rate.
DATASET_CODE = {"IM": "GB"}
CURRENT = EU + ["GB", "IM", "NO", "CH"]


def _national(country: str) -> TaxRule:
    rules = [r for r in default_table().rules if r.country == country and r.subdivisions is None]
    assert len(rules) == 1, f"{country}: expected one country-wide tax in the table, found {len(rules)}"
    return rules[0]


def _history(country: str) -> Callable[[date], Decimal]:
    return lambda day: duty27_eu_vat.get_standard_rate(country, day) / 100


def _change_dates(country: str) -> set[date]:
    """Each day a rate starts, in the table or in duty27-eu-vat, since 2020, and the day before it."""
    starts = {r.start for r in _national(country).rates} | {w.effective_from for w in
                                                           duty27_eu_vat.get_rate_history(country)}
    return {d for start in starts if start > HISTORY_FROM for d in (start - timedelta(days=1), start)}


CHECKED = sorted((country, day) for country in EU
                 for day in {HISTORY_FROM, TODAY} | {d for d in _change_dates(country) if d <= TODAY})


def test_the_datasets_cover_every_eu_member_and_gb_no_ch():
    assert len(EU) == 27
    assert all(eu_vat_rates_data.has_rate(DATASET_CODE.get(c, c)) for c in CURRENT)
    assert set(CURRENT) <= default_table().countries()


@pytest.mark.parametrize("country", CURRENT)
def test_todays_standard_rate_is_the_official_one(country):
    code = DATASET_CODE.get(country, country)
    ours = _national(country).rate_on(TODAY)
    official = Decimal(str(eu_vat_rates_data.get_standard_rate(code))) / 100
    assert ours == official, (f"{country}: the table says {ours} on {TODAY}, eu-vat-rates-data "
                              f"{eu_vat_rates_data.data_version} says {official} for {code}")


@pytest.mark.parametrize("country, day", CHECKED, ids=[f"{c}-{d.isoformat()}" for c, d in CHECKED])
def test_eu_standard_rate_on_each_change_date_is_the_dated_one(country, day):
    ours, dated = _national(country).rate_on(day), _history(country)(day)
    assert ours == dated, f"{country} on {day}: the table says {ours}, duty27-eu-vat says {dated}"


@pytest.mark.parametrize("country", EU)
def test_eu_standard_rate_agrees_day_by_day_since_2020(country):
    rule, dated = _national(country), _history(country)
    days = [HISTORY_FROM + timedelta(days=n) for n in range((TODAY - HISTORY_FROM).days + 1)]
    wrong = [day for day in days if rule.rate_on(day) != dated(day)]
    assert not wrong, (f"{country}: {len(wrong)} day(s) differ from duty27-eu-vat, from {wrong[0]} "
                       f"(table {rule.rate_on(wrong[0])}, dataset {dated(wrong[0])})")


def test_the_known_eu_changes_since_2020_are_among_the_dates_checked():
    known = {("DE", date(2020, 7, 1)), ("DE", date(2021, 1, 1)), ("IE", date(2020, 9, 1)), ("IE", date(2021, 3, 1)),
             ("LU", date(2023, 1, 1)), ("LU", date(2024, 1, 1)), ("EE", date(2024, 1, 1)), ("EE", date(2025, 7, 1)),
             ("FI", date(2024, 9, 1)), ("SK", date(2025, 1, 1)), ("RO", date(2025, 8, 1))}
    checked = set(CHECKED)
    listed = ", ".join(f"{c} {d}" for c, d in CHECKED if d not in (HISTORY_FROM, TODAY))
    assert known <= checked, f"dates checked: {listed}"
    assert {(c, d - timedelta(days=1)) for c, d in known} <= checked, f"dates checked: {listed}"


def test_luxembourg_charged_16_percent_for_all_of_2023():
    def rate(day: date) -> Decimal:
        return tax_lines_for(country="LU", subdivision=None, tax_id_valid=False, product=Product.ATLAS,
                             amount=Decimal("1000.00"), currency="EUR", on=day)[0].rate
    assert [rate(d) for d in (date(2022, 12, 31), date(2023, 1, 1), date(2023, 12, 31), date(2024, 1, 1))] == [
        Decimal("0.17"), Decimal("0.16"), Decimal("0.16"), Decimal("0.17")]


# Changes outside the datasets' reach, as published by each tax authority (sources in the table's comments).
OTHER_CHANGES = [
    ("SA", None, "VAT", date(2020, 7, 1), "0.05", "0.15"),
    ("KE", None, "VAT", date(2020, 4, 1), "0.16", "0.14"),
    ("KE", None, "VAT", date(2021, 1, 1), "0.14", "0.16"),
    ("SG", None, "GST", date(2023, 1, 1), "0.07", "0.08"),
    ("SG", None, "GST", date(2024, 1, 1), "0.08", "0.09"),
    ("CH", None, "VAT", date(2024, 1, 1), "0.077", "0.081"),
    ("MY", None, "SST", date(2024, 3, 1), "0.06", "0.08"),
    ("CA", "NS", "HST", date(2025, 4, 1), "0.15", "0.14"),
]


@pytest.mark.parametrize("country, sub, name, day, before, after", OTHER_CHANGES,
                         ids=[f"{c}{'-' + s if s else ''}-{d.isoformat()}" for c, s, _, d, *_ in OTHER_CHANGES])
def test_other_regions_change_rate_on_the_published_day(country, sub, name, day, before, after):
    def rate(on: date) -> Decimal:
        lines = tax_lines_for(country=country, subdivision=sub, tax_id_valid=False, product=Product.ATLAS,
                              amount=Decimal("1000.00"), currency="USD", on=on)
        return next(line.rate for line in lines if line.name == name)
    assert (rate(day - timedelta(days=1)), rate(day)) == (Decimal(before), Decimal(after))


def test_every_rate_in_the_table_names_its_source():
    entries = [line for line in TABLE_FILE.read_text().splitlines() if line.lstrip().startswith("{from = ")]
    assert entries and all(re.search(r"\},\s+#\s*\S", line) for line in entries), \
        [line for line in entries if "#" not in line]


def test_billing_tax_check_prints_no_difference(capsys):
    assert cli._tax_check(cli._parser().parse_args(["tax", "check"])) == 0
    out = capsys.readouterr().out
    assert "DIFFERS" not in out and "no difference" in out
    assert re.search(r"^LU\s+VAT\s+17%\s+17%\s+ok$", out, re.M)


def test_billing_tax_check_names_the_country_that_differs(tmp_path, capsys):
    data = TABLE_FILE.read_text()
    wrong = data.replace('{from = 2023-01-01, rate = "0.16"}', '{from = 2023-01-01, rate = "0.17"}')
    assert wrong != data
    (tmp_path / "table.toml").write_text(wrong)
    assert cli._tax_check(cli._parser().parse_args(["tax", "check", "--table", str(tmp_path / "table.toml")])) == 1
    captured = capsys.readouterr()
    assert re.search(r"LU\s+2023-01-01\.\.2023-12-31\s+ours 17%\s+dataset 16%\s+DIFFERS", captured.out)
    assert captured.err.strip().endswith("differs from the datasets for: LU")
