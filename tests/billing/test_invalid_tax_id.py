"""SPEC A2, C1: the tax-ID registry refuses a malformed ID for every country it knows, so a profile carrying one
(written before a rule tightened, or past the edge) is taxed, never reverse-charged."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from activities.tax import quote
from billing.tax import VALIDATORS, InvalidTaxId, OfflineRegistry, Product, normalize_tax_id
from tests.billing.test_tax import VALID_IDS

# One ID per country that has the right shape but a wrong check digit or an impossible value; a registry that
# accepted any non-empty ID would call each of them valid.
INVALID_IDS = {"AU": "51824753557", "CA": "123456789RT0001", "DE": "DE136695975", "FR": "FR40303265046",
               "NL": "NL004495446B01", "IE": "IE6388048V", "IN": "27AAPFU0939F1ZX", "IM": "GB980780685",
               "KE": "P05136594", "MY": "W10-1808-3100000", "NO": "NO995525829MVA", "SA": "300000000000004",
               "ZA": "5123456789", "SG": "00192200X", "CH": "CHE-107.787.578 IVA", "GB": "GB980780685"}


def test_every_registry_country_has_a_valid_and_an_invalid_sample():
    assert set(VALID_IDS) == set(INVALID_IDS) and set(INVALID_IDS) - set(VALIDATORS) == set()


@pytest.mark.parametrize("country, number", sorted(INVALID_IDS.items()))
def test_the_registry_refuses_a_malformed_id(country, number):
    registry = OfflineRegistry()
    assert registry.is_valid(country, VALID_IDS[country]) is True
    assert registry.is_valid(country, number) is False
    with pytest.raises(InvalidTaxId, match=country if country not in ("CA", "GB", "IM") else "not a valid"):
        normalize_tax_id(country, number)


@pytest.mark.parametrize("tax_id", [None, "", "   "])
def test_no_tax_id_is_not_a_valid_one(tax_id):
    assert OfflineRegistry().is_valid("DE", tax_id) is False


@pytest.mark.parametrize("country, vat", [("DE", "190.00"), ("FR", "200.00"), ("NL", "210.00")])
def test_a_quote_with_an_invalid_id_charges_the_vat_a_valid_one_reverse_charges(country, vat):
    def tax(tax_id: str) -> tuple[bool, Decimal]:
        result = quote(country=country, subdivision=None, tax_id=tax_id, product=Product.ATLAS,
                       amount=Decimal("1000.00"), currency="USD", on=date(2027, 1, 31), registry=OfflineRegistry())
        return result.tax_id_valid, result.tax

    assert tax(VALID_IDS[country]) == (True, Decimal("0"))  # C1: reverse charge
    assert tax(INVALID_IDS[country]) == (False, Decimal(vat))
