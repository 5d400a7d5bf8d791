"""The `billing simulate` scenario file (SCENARIOS.md), validated with pydantic; errors name the field."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator,
                      model_validator)

from billing.cards import PaymentMethodIn
from billing.config import BillingDurations
from billing.profiles import BillingProfileIn, check_email
from billing.support import SupportPlan
from services.client import CreditLineIn, SubscriptionIn, UsageIn



class ScenarioError(ValueError):
    """A malformed scenario: `field` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FxRate(_Strict):
    at: AwareDatetime
    currency: str
    rate: Decimal


class SubscriptionSpec(SubscriptionIn):
    activation_code: Literal["applied", "pending"] = "applied"


class SupportPlanSpec(_Strict):
    plan: SupportPlan
    trial_ends: date | None = None


class OrgSpec(_Strict):
    created: date | None = None
    name: str | None = None
    owners: list[str] = Field(min_length=1)
    billing_admins: list[str] = []
    billing_profile: BillingProfileIn
    payment_method: PaymentMethodIn | None = None
    subscription: SubscriptionSpec | None = None
    credits: list[CreditLineIn] = []
    support_plan: SupportPlanSpec | None = None

    @field_validator("owners", "billing_admins")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return [check_email(v) for v in value]


class UsageSpec(UsageIn):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    org: str
    start_date: date = Field(alias="from")
    end_date: date = Field(alias="to")

    @model_validator(mode="after")
    def _dates(self) -> "UsageSpec":
        if self.end_date < self.start_date:
            raise ValueError("'to' is before 'from'")
        return self


class _Event(_Strict):
    at: AwareDatetime
    org: str


class UpdatePaymentMethod(_Event):
    do: Literal["update_payment_method"]
    payment_method: PaymentMethodIn
    authenticate: bool = False


class RetryPayment(_Event):
    do: Literal["retry_payment"]
    invoice: str | int = "latest"


class ApplyActivationCode(_Event):
    do: Literal["apply_activation_code"]


class AuthorizePayment(_Event):
    do: Literal["authorize_payment"]
    invoice: str | int = "latest"


class RevokeMandate(_Event):
    do: Literal["revoke_mandate"]


class ReversePayment(_Event):
    do: Literal["reverse_payment"]
    invoice: str | int = "latest"


class BuyFlexConsulting(_Event):
    do: Literal["buy_flex_consulting"]
    level: str
    amount: Decimal = Field(gt=0)

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        return UsageIn._no_float(value)


class SetBillingContact(_Event):
    do: Literal["set_billing_contact"]
    billing_email: str | None = None
    only_invoice_emails: bool = False

    @field_validator("billing_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value) if value else None


class SetBillingProfile(_Event):
    do: Literal["set_billing_profile"]
    billing_profile: BillingProfileIn


class ChangeSupportPlan(_Event):
    do: Literal["change_support_plan"]
    plan: SupportPlan


class PayNowEvent(_Event):  # SPEC G2/E2
    do: Literal["pay_now"]
    invoice: str | int = "latest"


class RecordPaymentEvent(_Event):  # SPEC D10
    do: Literal["record_payment"]
    invoice: str | int = "latest"
    method: Literal["wire", "ach"]
    amount: Decimal = Field(gt=0)
    _no_float = field_validator("amount", mode="before")(classmethod(lambda cls, v: UsageIn._no_float(v)))


class ForgiveInvoiceEvent(_Event):  # SPEC D10
    do: Literal["forgive_invoice"]
    invoice: str | int = "latest"
    reason: str = Field(min_length=1)


class RefundPaymentEvent(_Event):  # SPEC D10
    do: Literal["refund_payment"]
    invoice: str | int = "latest"


Event = Annotated[Union[UpdatePaymentMethod, RetryPayment, ApplyActivationCode, AuthorizePayment, RevokeMandate,
                        ReversePayment, BuyFlexConsulting, SetBillingContact, SetBillingProfile, ChangeSupportPlan,
                        PayNowEvent, RecordPaymentEvent, ForgiveInvoiceEvent, RefundPaymentEvent],
                  Field(discriminator="do")]


class Scenario(_Strict):
    start: AwareDatetime
    until: AwareDatetime
    config: BillingDurations = BillingDurations()
    fx: list[FxRate] = []
    orgs: dict[str, OrgSpec]
    usage: list[UsageSpec] = []
    events: list[Event] = []

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.until <= self.start:
            raise ScenarioError("until", "must be after start")
        for i, line in enumerate(self.usage):
            if line.org not in self.orgs:
                raise ScenarioError(f"usage[{i}].org", f"unknown organization {line.org!r}")
        for i, event in enumerate(self.events):
            if event.org not in self.orgs:
                raise ScenarioError(f"events[{i}].org", f"unknown organization {event.org!r}")
            if isinstance(event, ApplyActivationCode):
                subscription = self.orgs[event.org].subscription
                if subscription is None or subscription.activation_code != "pending":
                    raise ScenarioError(f"events[{i}].org", f"{event.org!r} has no subscription with a pending "
                                        "activation code")
            if not (self.start <= event.at <= self.until):
                raise ScenarioError(f"events[{i}].at", "must lie between start and until")
        return self


_TAGS = {"card", "paypal", "update_payment_method", "retry_payment", "apply_activation_code", "authorize_payment",
         "revoke_mandate", "reverse_payment", "buy_flex_consulting", "set_billing_contact", "change_support_plan",
         "pay_now", "record_payment", "forgive_invoice", "refund_payment", "set_billing_profile"}


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _TAGS and path.endswith(("payment_method", "]")):
            continue  # a union's tag is not a field of the file
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_scenario(data: Any) -> Scenario:
    """Validate a loaded scenario document; raise ScenarioError naming the first offending field."""
    if not isinstance(data, dict):
        raise ScenarioError("(document)", "a scenario is a mapping with start, until, orgs, ...")
    try:
        start = TypeAdapter(AwareDatetime).validate_python(data.get("start"))
    except ValidationError as err:
        raise ScenarioError("start", _message(err.errors()[0])) from None
    try:
        # Cards are validated against the simulated clock, not the machine's.
        return Scenario.model_validate(data, context={"today": start.astimezone(timezone.utc).date()})
    except ScenarioError:
        raise
    except ValidationError as err:
        first = err.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, ScenarioError):
            raise cause from None
        raise ScenarioError(_field_path(tuple(first["loc"])) or "(document)", _message(first)) from None


def _message(error: dict[str, Any]) -> str:
    message = error["msg"]
    return message.removeprefix("Value error, ")


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 would read the province `ON` or the country `NO` as booleans."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


def load_scenario(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as handle:
            data = load_yaml(handle.read())
    except OSError as err:
        raise ScenarioError("(file)", f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ScenarioError("(file)", f"not valid YAML: {err}") from None
    return parse_scenario(data)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
