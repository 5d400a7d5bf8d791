"""Validation of payment-method input at the edge: cards and PayPal (SPEC A5, A6)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from stdnum import luhn

_BRAND_NAMES = {
    "amex": "American Express",
    "visa": "Visa",
    "mastercard": "Mastercard",
    "discover": "Discover",
}
_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[\s-]")
_EXP = re.compile(r"([0-9]{2})/([0-9]{2})")
_EMAIL_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"({_EMAIL_LOCAL})@((?:{_EMAIL_LABEL}\.)+[A-Za-z]{{2,63}})")


def card_brand(number: str) -> str:
    """The card network from the number's leading digits: amex, visa, mastercard, discover or unknown."""
    digits = _SEPARATORS.sub("", number)
    if digits[:2] in ("34", "37"):
        return "amex"
    if digits[:1] == "4":
        return "visa"
    if "51" <= digits[:2] <= "55" or (len(digits) >= 4 and "2221" <= digits[:4] <= "2720"):
        return "mastercard"
    if digits[:4] == "6011" or digits[:2] == "65":
        return "discover"
    return "unknown"


def _errors_without_input(value: Any, handler: Callable[[Any], Any]) -> Any:
    # A6: pydantic puts the raw input (the whole dict, card number and CVC included) into every
    # error; drop it so that no API response or log line built from the errors can echo it.
    try:
        return handler(value)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(
            exc.title,
            [
                {"type": PydanticCustomError(error["type"], error["msg"]), "loc": error["loc"], "input": None}
                for error in exc.errors(include_url=False, include_context=False, include_input=False)
            ],
            hide_input=True,
        ) from None


class _EdgeModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    @model_validator(mode="wrap")
    @classmethod
    def _hide_input(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        return _errors_without_input(data, handler)


def _today(info: ValidationInfo) -> date:
    # The simulator validates against its simulated clock, passed as context={"today": ...}.
    today = info.context.get("today") if isinstance(info.context, Mapping) else None
    if today is None:
        return date.today()
    if isinstance(today, datetime):
        return today.date()
    if isinstance(today, date):
        return today
    raise TypeError(f"validation context 'today' must be a datetime.date, got {type(today).__name__}")


class CardIn(_EdgeModel):
    """A card as the customer typed it; number and CVC stay secret until the gateway tokenizes them."""

    type: Literal["card"]
    number: SecretStr
    exp: str
    cvc: SecretStr
    name: str

    @field_validator("number")
    @classmethod
    def _check_number(cls, value: SecretStr) -> SecretStr:
        digits = _SEPARATORS.sub("", value.get_secret_value())
        if not digits:
            raise PydanticCustomError("card_number_missing", "card number is required")
        if not _DIGITS.fullmatch(digits):
            raise PydanticCustomError("card_number_format", "card number may contain only digits, spaces and dashes")
        brand = card_brand(digits)
        expected = 15 if brand == "amex" else 16
        if len(digits) != expected:
            network = _BRAND_NAMES.get(brand, "Card")
            raise PydanticCustomError(
                "card_number_length", f"{network} card numbers have {expected} digits, got {len(digits)}"
            )
        if not luhn.is_valid(digits):
            raise PydanticCustomError("card_number_checksum", "card number is not valid (check digit mismatch)")
        return SecretStr(digits)

    @field_validator("exp")
    @classmethod
    def _check_exp(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        match = _EXP.fullmatch(value)
        if not match:
            raise PydanticCustomError("card_exp_format", "expiry must be MM/YY, e.g. 04/29")
        month, year = int(match[1]), 2000 + int(match[2])
        if not 1 <= month <= 12:
            raise PydanticCustomError("card_exp_month", "expiry month must be between 01 and 12")
        today = _today(info)
        # A card is valid through the last day of its expiry month.
        if (year, month) < (today.year, today.month):
            raise PydanticCustomError("card_expired", f"card expired at the end of {month:02d}/{year}")
        return value

    @field_validator("cvc")
    @classmethod
    def _check_cvc(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        cvc = value.get_secret_value().strip()
        if not _DIGITS.fullmatch(cvc):
            raise PydanticCustomError("cvc_format", "CVC must contain only digits")
        number = info.data.get("number")
        if number is None:
            # The number was invalid, so the brand is unknown: only the brand-independent check applies.
            if len(cvc) not in (3, 4):
                raise PydanticCustomError("cvc_length", "CVC has 3 digits (American Express: 4)")
        elif card_brand(number.get_secret_value()) == "amex":
            if len(cvc) != 4:
                raise PydanticCustomError("cvc_length", "American Express CVC has 4 digits")
        elif len(cvc) != 3:
            raise PydanticCustomError("cvc_length", "CVC has 3 digits")
        return SecretStr(cvc)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("card_name_blank", "name on card is required")
        return value

    def pan(self) -> str:
        """The normalized card number, for the gateway's tokenization only."""
        return self.number.get_secret_value()

    @property
    def brand(self) -> str:
        return card_brand(self.pan())

    @property
    def last4(self) -> str:
        return self.pan()[-4:]

    @property
    def exp_month(self) -> int:
        return int(self.exp[:2])

    @property
    def exp_year(self) -> int:
        return 2000 + int(self.exp[3:])


class PayPalIn(_EdgeModel):
    """A PayPal account; approval happens at PayPal."""

    type: Literal["paypal"]
    email: str

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        value = value.strip()
        match = _EMAIL.fullmatch(value)
        if not match or len(value) > 254 or len(match[1]) > 64:
            raise PydanticCustomError("email_format", "not a valid e-mail address")
        return f"{match[1]}@{match[2].lower()}"


PaymentMethodIn = Annotated[
    Union[CardIn, PayPalIn], Field(discriminator="type"), WrapValidator(_errors_without_input)
]
payment_method_adapter: TypeAdapter[CardIn | PayPalIn] = TypeAdapter(
    PaymentMethodIn, config=ConfigDict(hide_input_in_errors=True, title="PaymentMethodIn")
)


class TokenizedMethod(BaseModel):
    """What the gateway gives back for a card or PayPal account: safe to store and to log."""

    token: str
    kind: str  # card | paypal
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    issuing_country: str | None = None
    paypal_email: str | None = None
