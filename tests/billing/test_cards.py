"""Card and PayPal input validation at the edge (SPEC A5, A6)."""

from datetime import date

import pytest
from pydantic import ValidationError

from billing.cards import CardIn, PayPalIn, card_brand, payment_method_adapter

TODAY = date(2025, 6, 15)
CONTEXT = {"today": TODAY}


def card(**fields: str) -> dict[str, str]:
    return {"type": "card", "number": "4242424242424242", "exp": "12/30", "cvc": "123", "name": "Ada Lovelace"} | fields


def validation_error(data: dict[str, str]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        payment_method_adapter.validate_python(data, context=CONTEXT)
    return caught.value


@pytest.mark.parametrize(
    ("number", "cvc", "brand"),
    [
        ("4242424242424242", "123", "visa"),
        ("5555555555554444", "123", "mastercard"),
        ("378282246310005", "1234", "amex"),
        ("4000000000000002", "123", "visa"),
        ("4000000000009995", "123", "visa"),
        ("4000002760003184", "123", "visa"),
        ("4000003560000123", "123", "visa"),
        ("4242 4242 4242 4242", "123", "visa"),
        ("3782-822463-10005", "1234", "amex"),
    ],
)
def test_test_cards_validate(number, cvc, brand):
    method = payment_method_adapter.validate_python(card(number=number, cvc=cvc), context=CONTEXT)
    digits = number.replace(" ", "").replace("-", "")
    assert isinstance(method, CardIn)
    assert method.brand == brand
    assert method.pan() == digits
    assert method.last4 == digits[-4:]
    assert (method.exp_month, method.exp_year) == (12, 2030)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"number": "4242424242424241"}, "number", "not valid"),
        ({"number": "424242424242428"}, "number", "Visa card numbers have 16 digits"),
        ({"number": "3782822463100052", "cvc": "1234"}, "number", "American Express card numbers have 15 digits"),
        ({"number": "4242x42424242424"}, "number", "only digits"),
        ({"number": "  "}, "number", "required"),
        ({"number": "378282246310005", "cvc": "123"}, "cvc", "American Express CVC has 4 digits"),
        ({"cvc": "1234"}, "cvc", "CVC has 3 digits"),
        ({"cvc": "12a"}, "cvc", "only digits"),
        ({"exp": "05/25"}, "exp", "expired"),
        ({"exp": "13/30"}, "exp", "month"),
        ({"exp": "00/30"}, "exp", "month"),
        ({"exp": "1230"}, "exp", "MM/YY"),
        ({"name": "   "}, "name", "required"),
    ],
)
def test_invalid_card_fields_are_reported_without_the_number(fields, field, message):
    data = card(**fields)
    error = validation_error(data)
    assert [e["loc"] for e in error.errors()] == [("card", field)]
    assert message in error.errors()[0]["msg"]
    secrets = {data["number"], data["number"].replace(" ", "").replace("-", ""), data["cvc"]} - {"", "  "}
    rendered = [str(error), repr(error), error.json()]
    for secret in secrets:
        assert not any(secret in text for text in rendered)


def test_a_card_is_valid_through_the_last_day_of_its_expiry_month():
    last_day = {"today": date(2025, 6, 30)}
    assert payment_method_adapter.validate_python(card(exp="06/25"), context=last_day)
    with pytest.raises(ValidationError):
        payment_method_adapter.validate_python(card(exp="06/25"), context={"today": date(2025, 7, 1)})


def test_missing_and_unexpected_fields_do_not_echo_the_card():
    data = {"type": "card", "number": "4242424242424242", "cvc": "123", "card_number": "4000002760003184"}
    error = validation_error(data)
    assert {e["loc"] for e in error.errors()} == {("card", "exp"), ("card", "name"), ("card", "card_number")}
    dumped = str(error) + error.json() + repr(error.errors())
    for secret in ("4242424242424242", "4000002760003184", "'123'"):
        assert secret not in dumped


def test_unknown_method_type_does_not_echo_the_card():
    error = validation_error({"type": "crypto", "number": "4242424242424242"})
    assert "4242424242424242" not in str(error) + error.json()


def test_valid_card_never_shows_number_or_cvc():
    method = CardIn.model_validate(card(number="378282246310005", cvc="7373"), context=CONTEXT)
    for text in (repr(method), str(method), method.model_dump_json(), str(method.model_dump())):
        assert "378282246310005" not in text
        assert "7373" not in text


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("5105105105105100", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720999999999996", "mastercard"),
        ("2721000000000004", "unknown"),
        ("340000000000009", "amex"),
        ("6011111111111117", "discover"),
        ("6500000000000002", "discover"),
        ("3530111333300000", "unknown"),
    ],
)
def test_card_brand_from_prefix(number, brand):
    assert card_brand(number) == brand


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("billing@example.com", True),
        ("first.last+tag@Sub.Example.CO.UK", True),
        ("no-at-sign.example.com", False),
        ("two@@example.com", False),
        ("user@localhost", False),
        ("user@-bad-.com", False),
        ("user name@example.com", False),
        (".leading@example.com", False),
        ("", False),
    ],
)
def test_paypal_email(email, valid):
    data = {"type": "paypal", "email": email}
    if valid:
        method = payment_method_adapter.validate_python(data)
        assert isinstance(method, PayPalIn)
        assert method.email.split("@")[1] == email.split("@")[1].lower()
    else:
        assert [e["loc"] for e in validation_error(data).errors()] == [("paypal", "email")]


def test_today_defaults_to_the_real_clock():
    assert CardIn.model_validate(card(exp="12/99"))
    with pytest.raises(ValidationError):
        CardIn.model_validate(card(exp="01/20"))


def test_the_validation_day_may_be_a_datetime_and_must_be_a_date():
    from datetime import datetime, timezone
    moment = datetime(2025, 7, 1, 0, 0, tzinfo=timezone.utc)
    with pytest.raises(ValidationError):
        payment_method_adapter.validate_python(card(exp="06/25"), context={"today": moment})
    assert payment_method_adapter.validate_python(card(exp="07/25"), context={"today": moment})
    with pytest.raises(TypeError) as err:
        payment_method_adapter.validate_python(card(), context={"today": "2025-07-01"})
    assert str(err.value) == "validation context 'today' must be a datetime.date, got str"
    assert CardIn.model_validate(card(exp="12/99"), context={"other": 1})  # no 'today': the real clock


@pytest.mark.parametrize("number, cvc, message", [
    ("4242", "12", "CVC has 3 digits (American Express: 4)"),  # the number is refused, so the brand is unknown
    ("4242", "12345", "CVC has 3 digits (American Express: 4)"),
])
def test_a_cvc_is_checked_even_when_the_number_is_refused(number, cvc, message):
    error = validation_error(card(number=number, cvc=cvc))
    assert [(e["loc"], e["msg"]) for e in error.errors()] == [
        (("card", "number"), "Visa card numbers have 16 digits, got 4"), (("card", "cvc"), message)]


@pytest.mark.parametrize("cvc", ["123", "1234"])
def test_a_cvc_of_either_length_passes_when_the_number_is_refused(cvc):
    error = validation_error(card(number="4242", cvc=cvc))
    assert [e["loc"] for e in error.errors()] == [("card", "number")]


@pytest.mark.parametrize("fields, field, message", [
    ({"number": "4242424242424241"}, "number", "card number is not valid (check digit mismatch)"),
    ({"number": "9242424242424242"}, "number", "card number is not valid (check digit mismatch)"),
    ({"number": "12345"}, "number", "Card card numbers have 16 digits, got 5"),
    ({"number": "5555 5555 5555 444"}, "number", "Mastercard card numbers have 16 digits, got 15"),
    ({"number": "4242x42424242424"}, "number", "card number may contain only digits, spaces and dashes"),
    ({"number": " - "}, "number", "card number is required"),
    ({"number": "378282246310005", "cvc": "123"}, "cvc", "American Express CVC has 4 digits"),
    ({"cvc": "1234"}, "cvc", "CVC has 3 digits"),
    ({"cvc": "12"}, "cvc", "CVC has 3 digits"),
    ({"cvc": " 1a3 "}, "cvc", "CVC must contain only digits"),
    ({"exp": "05/25"}, "exp", "card expired at the end of 05/2025"),
    ({"exp": "12/24"}, "exp", "card expired at the end of 12/2024"),
    ({"exp": "13/30"}, "exp", "expiry month must be between 01 and 12"),
    ({"exp": "00/30"}, "exp", "expiry month must be between 01 and 12"),
    ({"exp": "1/30"}, "exp", "expiry must be MM/YY, e.g. 04/29"),
    ({"exp": "12/2030"}, "exp", "expiry must be MM/YY, e.g. 04/29"),
    ({"name": "   "}, "name", "name on card is required"),
])
def test_each_card_error_message(fields, field, message):
    assert [(e["loc"], e["msg"]) for e in validation_error(card(**fields)).errors()] == [(("card", field), message)]


def test_a_card_keeps_its_fields_normalized():
    method = payment_method_adapter.validate_python(
        card(number="5555-5555-5555-4444", exp=" 01/26 ", cvc=" 321 ", name="  Grace Hopper "), context=CONTEXT)
    assert (method.pan(), method.exp, method.cvc.get_secret_value(), method.name) == (
        "5555555555554444", "01/26", "321", "Grace Hopper")
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == ("mastercard", "4444", 1, 2026)
    june = payment_method_adapter.validate_python(card(exp="06/25"), context=CONTEXT)  # this month: still valid
    assert (june.exp_month, june.exp_year) == (6, 2025)


@pytest.mark.parametrize("email, normalized", [
    (" Billing@Example.COM ", "Billing@example.com"),  # the domain is case-insensitive, the local part is not
    ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
])
def test_paypal_email_is_normalized(email, normalized):
    assert payment_method_adapter.validate_python({"type": "paypal", "email": email}).email == normalized


@pytest.mark.parametrize("email", ["a" * 65 + "@example.com", "a@" + "b" * 63 + "." + ("c" * 63 + ".") * 3 + "com"])
def test_paypal_email_lengths_are_limited(email):
    assert [(e["loc"], e["msg"]) for e in validation_error({"type": "paypal", "email": email}).errors()] == [
        (("paypal", "email"), "not a valid e-mail address")]


@pytest.mark.parametrize("number, brand", [
    ("3400", "amex"), ("3700", "amex"), ("3500", "unknown"), ("5000", "unknown"), ("5100", "mastercard"),
    ("5500", "mastercard"), ("5600", "unknown"), ("2220999999999999", "unknown"), ("222", "unknown"),
    ("6011", "discover"), ("6012", "unknown"), ("6500", "discover"), ("6400", "unknown"), ("", "unknown"),
    ("4", "visa"), ("4242-4242", "visa"), ("3-4", "amex"), ("2221", "mastercard"), ("2720", "mastercard"),
    ("2721", "unknown"),
])
def test_card_brand_at_the_edges_of_each_range(number, brand):
    assert card_brand(number) == brand
