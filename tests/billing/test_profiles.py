"""Organizations and billing profiles at the edge (SPEC A1-A3): what is accepted, normalized, and how each error
names its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from billing.cards import CardIn, PayPalIn
from billing.profiles import BillingProfileIn, OrganizationIn, TaxAddress, check_email

ADDRESS = {"country": "DE", "state": "Bavaria", "address_line1": "1 Main St", "city": "Munich",
           "postal_code": "80331"}


def profile(**fields: Any) -> dict[str, Any]:
    return ADDRESS | fields


def errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


def test_a_complete_profile_is_normalized():
    parsed = BillingProfileIn(**profile(country=" de ", state=" Bavaria ", tax_id=" de 136 695 976 ",
                                        address_line1=" 1 Main St ", city=" Munich ", postal_code=" 80331 ",
                                        billing_email=" billing@acme.test ", company_name="Acme GmbH"))
    assert parsed.model_dump() == {
        "country": "DE", "state": "Bavaria", "tax_id": "DE136695976", "address_line1": "1 Main St",
        "address_line2": None, "city": "Munich", "postal_code": "80331", "company_name": "Acme GmbH",
        "billing_email": "billing@acme.test", "only_invoice_emails": False}


@pytest.mark.parametrize("field", ["address_line1", "city", "postal_code", "state"])
def test_each_address_field_is_required(field):
    assert errors(BillingProfileIn, profile(**{field: "   "})) == [((field,), "Value error, is required")]


@pytest.mark.parametrize("country", ["XX", "DEU", "", "D"])
def test_the_country_is_an_iso_code(country):
    assert errors(TaxAddress, {"country": country, "state": "Somewhere"}) == [
        (("country",), f"Value error, {country!r} is not an ISO 3166-1 alpha-2 country code")]


@pytest.mark.parametrize("country, state, expected", [
    ("US", "ny", "NY"), ("us", " ca ", "CA"), ("CA", "bc", "BC"), ("CA", "YT", "YT"),
    ("DE", "Bavaria", "Bavaria"), ("GB", "greater london", "greater london"),  # free text elsewhere
])
def test_a_us_state_or_canadian_province_is_a_code(country, state, expected):
    assert TaxAddress(country=country, state=state).state == expected


@pytest.mark.parametrize("country, state, message", [
    ("US", "ZZ", "'ZZ' is not a US state code"),
    ("US", "New York", "'New York' is not a US state code"),
    ("US", "bc", "'bc' is not a US state code"),
    ("CA", "NY", "'NY' is not a Canadian province or territory code"),
])
def test_an_unknown_state_or_province_is_refused(country, state, message):
    assert errors(TaxAddress, {"country": country, "state": state}) == [(("state",), f"Value error, {message}")]


def test_a_refused_country_leaves_the_state_and_tax_id_alone():
    assert errors(TaxAddress, {"country": "XX", "state": "zz", "tax_id": "anything"}) == [
        (("country",), "Value error, 'XX' is not an ISO 3166-1 alpha-2 country code")]


@pytest.mark.parametrize("tax_id", [None, "", "   "])
def test_no_tax_id_is_none(tax_id):
    assert TaxAddress(country="DE", state="Bavaria", tax_id=tax_id).tax_id is None
    assert TaxAddress(country="US", state="NY", tax_id=tax_id).tax_id is None


def test_a_tax_id_is_checked_against_the_country():
    assert TaxAddress(country="FR", state="Paris", tax_id="40303265045").tax_id == "FR40303265045"
    assert TaxAddress(country="AE", state="Dubai", tax_id=" 100123456700003 ").tax_id == "100123456700003"
    assert errors(TaxAddress, {"country": "US", "state": "NY", "tax_id": "12-3456789"}) == [
        (("tax_id",), "Value error, a US billing profile has no VAT/GST tax ID (SPEC A2)")]
    assert errors(TaxAddress, {"country": "DE", "state": "Bavaria", "tax_id": "FR40303265045"}) == [
        (("tax_id",), "Value error, a VAT number for DE starts with DE, not FR")]


@pytest.mark.parametrize("email, expected", [
    ("billing@acme.test", "billing@acme.test"), (" a@b.co ", "a@b.co"), ("First.Last+x@Sub.Acme.test", None)])
def test_e_mail_addresses(email, expected):
    assert check_email(email) == (expected or email)


@pytest.mark.parametrize("email", ["billing", "billing@acme", "@acme.test", "bil ling@acme.test", "a@b@c.test",
                                   "a@b.", "a@.b"])
def test_what_is_not_an_e_mail_address(email):
    with pytest.raises(ValueError) as err:
        check_email(email)
    assert str(err.value) == f"{email!r} is not an e-mail address"


def test_the_billing_email_is_optional_but_checked():
    assert BillingProfileIn(**profile(billing_email="")).billing_email is None
    assert BillingProfileIn(**profile()).billing_email is None
    assert errors(BillingProfileIn, profile(billing_email="nobody")) == [
        (("billing_email",), "Value error, 'nobody' is not an e-mail address")]


def test_a_profile_refuses_unknown_fields():
    assert [loc for loc, _ in errors(BillingProfileIn, profile(vat="DE136695976"))] == [("vat",)]


def organization(**fields: Any) -> dict[str, Any]:
    return {"id": "acme", "owners": ["ada@acme.test"], "billing_profile": profile()} | fields


@pytest.mark.parametrize("org_id", ["acme", "a", "0", "acme-1_eu", "a" * 64])
def test_an_organization_id(org_id):
    assert OrganizationIn(**organization(id=org_id)).id == org_id


@pytest.mark.parametrize("org_id", ["", "Acme", "-acme", "_acme", "acme corp", "a" * 65, "acme.eu", "acme\n"])
def test_an_organization_id_is_lower_case_letters_digits_dash_underscore(org_id):
    assert errors(OrganizationIn, organization(id=org_id)) == [
        (("id",), "Value error, an organization ID is 1-64 lower-case letters, digits, '-' or '_'")]


def test_an_organization_needs_an_owner_and_every_member_an_e_mail():
    parsed = OrganizationIn(**organization(owners=[" ada@acme.test "], billing_admins=["bob@acme.test"]))
    assert (parsed.owners, parsed.billing_admins) == (["ada@acme.test"], ["bob@acme.test"])
    assert OrganizationIn(**organization()).billing_admins == []
    assert [loc for loc, _ in errors(OrganizationIn, organization(owners=[]))] == [("owners",)]
    assert errors(OrganizationIn, organization(owners=["ada@acme.test", "bob"])) == [
        (("owners",), "Value error, 'bob' is not an e-mail address")]
    assert errors(OrganizationIn, organization(billing_admins=["carol"])) == [
        (("billing_admins",), "Value error, 'carol' is not an e-mail address")]


def test_an_organization_may_bring_a_payment_method():
    assert OrganizationIn(**organization()).payment_method is None
    paypal = OrganizationIn(**organization(payment_method={"type": "paypal", "email": "ada@acme.test"}))
    assert isinstance(paypal.payment_method, PayPalIn)
    card = OrganizationIn(**organization(payment_method={"type": "card", "number": "4242424242424242",
                                                         "exp": "12/99", "cvc": "123", "name": "Ada"}))
    assert isinstance(card.payment_method, CardIn) and card.payment_method.last4 == "4242"
    assert errors(OrganizationIn, organization(billing_profile=profile(city=""))) == [
        (("billing_profile", "city"), "Value error, is required")]
