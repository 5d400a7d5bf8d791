"""Tax by region (SPEC C1-C4): the region table as data, tax-ID validation, and tax lines for an amount."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, field_validator
from stdnum import util as stdnum_util
from stdnum.au import abn
from stdnum.ca import bn
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import vat as gb_vat
from stdnum.in_ import gstin
from stdnum.ke import pin as ke_pin
from stdnum.no import mva
from stdnum.sg import uen

from billing.money import round_money

TABLE = Path(__file__).parent / "data" / "tax_regions.toml"


class Product(StrEnum):
    ATLAS = "atlas"  # everything on the cloud invoice, support included
    FLEX_CONSULTING = "flex_consulting"


class TaxRate(BaseModel):
    start: date
    rate: Decimal


class TaxRule(BaseModel):
    country: str
    subdivisions: list[str] | None = None
    name: str
    replaces: str | None = None
    atlas: bool
    flex_consulting: bool
    exempt_with_valid_id: bool
    rates: list[TaxRate]

    @field_validator("rates")
    @classmethod
    def _ordered(cls, rates: list[TaxRate]) -> list[TaxRate]:
        return sorted(rates, key=lambda r: r.start)

    def charges(self, product: Product) -> bool:
        return self.atlas if product is Product.ATLAS else self.flex_consulting

    def rate_on(self, day: date) -> Decimal | None:
        in_force = [r for r in self.rates if r.start <= day]
        return in_force[-1].rate if in_force else None


class TaxLine(BaseModel):
    name: str
    rate: Decimal
    amount: Decimal


class TaxTable:
    """The region table (`data/tax_regions.toml`)."""

    def __init__(self, rules: list[TaxRule]) -> None:
        self.rules = rules

    @classmethod
    def load(cls, path: Path = TABLE) -> "TaxTable":
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        return cls([TaxRule(**{**row, "rates": [{"start": r["from"], "rate": r["rate"]} for r in row["rates"]]})
                    for row in data["tax"]])

    def rules_for(self, country: str, subdivision: str | None) -> list[TaxRule]:
        local = [r for r in self.rules if r.country == country
                 and (r.subdivisions is None or (subdivision is not None and subdivision in r.subdivisions))]
        replaced = {r.replaces for r in local if r.replaces}
        return [r for r in local if r.name not in replaced or r.subdivisions is not None]

    def countries(self) -> set[str]:
        return {r.country for r in self.rules}


@cache
def default_table() -> TaxTable:
    return TaxTable.load()


def tax_lines_for(*, country: str, subdivision: str | None, tax_id_valid: bool, product: Product,
                  amount: Decimal, currency: str, on: date, table: TaxTable | None = None) -> list[TaxLine]:
    """The taxes on `amount` of `product` billed to an address; each line rounded once (SPEC M1)."""
    lines = []
    for rule in (table or default_table()).rules_for(country, subdivision):
        if not rule.charges(product) or (tax_id_valid and rule.exempt_with_valid_id):
            continue
        rate = rule.rate_on(on)
        if rate is None:
            raise LookupError(f"no {rule.name} rate for {country} in force on {on.isoformat()}")
        lines.append(TaxLine(name=rule.name, rate=rate, amount=round_money(amount * rate, currency)))
    return lines


# --- tax IDs (SPEC A2) ---------------------------------------------------------------------------------

class InvalidTaxId(ValueError):
    pass


def _stdnum(module) -> Callable[[str, str], str]:
    def check(number: str, country: str) -> str:
        try:
            return module.validate(number)
        except StdnumError as err:
            raise InvalidTaxId(f"not a valid {country} tax ID: {err}") from None
    return check


def _eu_vat(number: str, country: str) -> str:
    prefix = "EL" if country == "GR" else country
    # The country prefix is optional as typed; stdnum's compact() needs it to pick the country's format.
    compact = re.sub(r"[\s./,-]", "", number).upper()
    if not compact[:2].isalpha():
        compact = prefix + compact
    if compact[:2] != prefix:
        raise InvalidTaxId(f"a VAT number for {country} starts with {prefix}, not {compact[:2]}")
    try:
        return eu_vat.validate(compact)
    except StdnumError as err:
        raise InvalidTaxId(f"not a valid {country} VAT number: {err}") from None


def _canada_gst(number: str, country: str) -> str:
    # SPEC A2: 9-digit business number + 2-letter program identifier (RT: GST/HST) + 4-digit reference.
    compact = bn.compact(number)
    if not re.fullmatch(r"\d{9}RT\d{4}", compact):
        raise InvalidTaxId("a GST ID is the 9-digit business number, 'RT' and a 4-digit reference "
                           "(e.g. 123456782RT0001)")
    try:
        return bn.validate(compact)
    except StdnumError as err:
        raise InvalidTaxId(f"not a valid GST ID: {err}") from None


def _gb_vat(number: str, country: str) -> str:
    compact = gb_vat.compact(number)
    try:
        return "GB" + gb_vat.validate(compact)
    except StdnumError as err:
        raise InvalidTaxId(f"not a valid GB VAT registration number: {err}") from None


def _pattern(regex: str, description: str) -> Callable[[str, str], str]:
    # For registries python-stdnum does not cover: the published format only, no check digit.
    def check(number: str, country: str) -> str:
        compact = re.sub(r"[\s.-]", "", number).upper()
        if not re.fullmatch(regex, compact):
            raise InvalidTaxId(f"not a valid {country} tax ID: expected {description}")
        return compact
    return check


_EU = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
       "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
VALIDATORS: dict[str, Callable[[str, str], str]] = {
    **{cc: _eu_vat for cc in _EU},
    "GB": _gb_vat, "IM": _gb_vat,  # the Isle of Man uses GB VAT registration numbers
    "CA": _canada_gst,
    "IN": _stdnum(gstin), "AU": _stdnum(abn), "NO": _stdnum(mva), "CH": _stdnum(ch_vat), "SG": _stdnum(uen),
    "KE": _stdnum(ke_pin),
    "SA": _pattern(r"3\d{13}3", "15 digits starting and ending with 3"),
    "ZA": _pattern(r"4\d{9}", "a 10-digit VAT number starting with 4"),
    "MY": _pattern(r"[A-Z]\d{2}\d{4}\d{8}", "an SST registration number such as W10-1808-31000003"),
}


def normalize_tax_id(country: str, number: str) -> str:
    """Validate a tax ID against its billing country's format; return it in canonical form.

    Countries with no known scheme (and no tax in the region table) keep the ID as given.
    """
    if country == "US":
        raise InvalidTaxId("a US billing profile has no VAT/GST tax ID (SPEC A2)")
    number = number.strip()
    if not number:
        raise InvalidTaxId("is empty")
    validator = VALIDATORS.get(country)
    if validator is not None:
        return validator(number, country)
    module = stdnum_util.get_cc_module(country.lower(), "vat")
    if module is not None:
        return _stdnum(module)(number, country)
    if len(number) > 40:
        raise InvalidTaxId("is longer than 40 characters")
    return number


class TaxIdRegistry(Protocol):
    """Whether a tax ID is valid for reverse charge; an online registry (e.g. VIES) fits behind this."""

    def is_valid(self, country: str, tax_id: str | None) -> bool: ...


class OfflineRegistry:
    """The default: format and check digits only (python-stdnum), no network."""

    def is_valid(self, country: str, tax_id: str | None) -> bool:
        if not tax_id:
            return False
        try:
            normalize_tax_id(country, tax_id)
        except InvalidTaxId:
            return False
        return True
