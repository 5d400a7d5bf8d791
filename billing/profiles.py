"""Validation of organizations and billing profiles at the edge (SPEC A1-A3): every error names its field."""

from __future__ import annotations

import re

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from billing.cards import PaymentMethodIn
from billing.tax import InvalidTaxId, normalize_tax_id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ORG_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _required(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("is required")
    return value


def check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class TaxAddress(BaseModel):
    """What decides tax (SPEC A1-A2, C1-C3): country, US state / Canadian province, and the tax ID."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    country: str
    state: str
    tax_id: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        value = value.upper()
        if pycountry.countries.get(alpha_2=value) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return value

    @field_validator("state")
    @classmethod
    def _state(cls, value: str, info: ValidationInfo) -> str:
        value = _required(value)
        country = info.data.get("country")
        if country in ("US", "CA"):
            # A US state / Canadian province code; free text elsewhere.
            code = value.upper()
            if pycountry.subdivisions.get(code=f"{country}-{code}") is None:
                kind = "US state" if country == "US" else "Canadian province or territory"
                raise ValueError(f"{value!r} is not a {kind} code")
            return code
        return value

    @field_validator("tax_id")
    @classmethod
    def _tax_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        country = info.data.get("country")
        if country is None:
            return value.strip()  # the country itself was refused; that error names its field
        try:
            return normalize_tax_id(country, value)
        except InvalidTaxId as err:
            raise ValueError(str(err)) from None


class BillingProfileIn(TaxAddress):
    """SPEC A1 billing address, A2 tax ID (never on a US profile), A3 billing e-mail settings."""

    address_line1: str
    address_line2: str | None = None
    city: str
    postal_code: str
    company_name: str | None = None
    billing_email: str | None = None
    only_invoice_emails: bool = False

    @field_validator("address_line1", "city", "postal_code")
    @classmethod
    def _present(cls, value: str) -> str:
        return _required(value)

    @field_validator("billing_email")
    @classmethod
    def _billing_email(cls, value: str | None) -> str | None:
        return check_email(value) if value else None


class OrganizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    owners: list[str] = Field(min_length=1)
    billing_admins: list[str] = []
    billing_profile: BillingProfileIn
    payment_method: PaymentMethodIn | None = None

    @field_validator("id")
    @classmethod
    def _org_id(cls, value: str) -> str:
        if not _ORG_ID.fullmatch(value):  # not match(): "$" would let a trailing newline through
            raise ValueError("an organization ID is 1-64 lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("owners", "billing_admins")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return [check_email(v) for v in value]
