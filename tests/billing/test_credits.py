"""Drawing usage from credit lines in table order, and the switch to elastic billing (SPEC D3)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing.credits import (CreditDraw, CreditLineState, DatedAmount, draw_credits, elastic_billing_active,
                             line_cuts_period)
from billing.money import CurrencyMismatch

ON = date(2024, 6, 15)
cents = st.integers(min_value=0, max_value=10**9).map(lambda u: Decimal(u).scaleb(-2))
offsets = st.integers(min_value=-60, max_value=60).map(lambda d: ON + timedelta(days=d))


@st.composite
def credit_lines(draw: st.DrawFn) -> list[CreditLineState]:
    count = draw(st.integers(min_value=0, max_value=6))
    positions = draw(st.permutations(range(count)))  # table order need not be list order
    lines = []
    for position in positions:
        amount = draw(cents)
        used = draw(st.integers(min_value=0, max_value=int(amount * 100)).map(lambda u: Decimal(u).scaleb(-2)))
        start, end = sorted([draw(offsets), draw(offsets)])
        kind = draw(st.sampled_from(["prepaid", "commitment", "promotional"]))
        lines.append(CreditLineState(position=position, kind=kind, amount=amount, used=used, start=start, end=end))
    return lines


def total_used(lines: list[CreditLineState]) -> Decimal:
    return sum((line.used for line in lines), Decimal(0))


@given(credit_lines(), cents)
def test_draw_creates_or_loses_nothing(lines, amount):
    before = [line.model_copy() for line in lines]
    result = draw_credits(lines, amount, ON)
    assert result.covered + result.uncovered == amount
    assert result.covered >= 0 and result.uncovered >= 0
    assert sum((d.amount for d in result.draws), Decimal(0)) == result.covered
    assert all(d.amount > 0 for d in result.draws)
    assert total_used(result.lines) == total_used(lines) + result.covered
    assert all(line.used <= line.amount for line in result.lines)
    assert len(result.lines) == len(lines)
    assert [line.position for line in result.lines] == [line.position for line in lines]
    assert lines == before  # the input is never mutated


@given(credit_lines(), cents)
def test_draw_goes_top_to_bottom_in_table_order(lines, amount):
    result = draw_credits(lines, amount, ON)
    drawn = [d.position for d in result.draws]
    assert drawn == sorted(drawn)
    by_position = {line.position: line for line in result.lines}
    for position in drawn:
        for line in result.lines:
            if line.position < position and line.status(ON) == "active":
                assert line.remaining == 0
    if result.uncovered > 0:
        assert all(line.remaining == 0 for line in result.lines if line.status(ON) == "active")
    for d in result.draws:
        assert by_position[d.position].kind == d.kind


@given(credit_lines(), cents)
def test_expired_and_upcoming_lines_are_never_drawn(lines, amount):
    result = draw_credits(lines, amount, ON)
    drawn = {d.position for d in result.draws}
    for before, after in zip(lines, result.lines, strict=True):
        if before.status(ON) != "active":
            assert after == before
            assert before.position not in drawn


@given(credit_lines(), cents, cents)
def test_drawing_twice_covers_what_drawing_the_sum_covers(lines, a, b):
    first = draw_credits(lines, a, ON)
    second = draw_credits(first.lines, b, ON)
    together = draw_credits(lines, a + b, ON)
    assert first.covered + second.covered == together.covered
    assert second.lines == together.lines


@given(credit_lines(), cents)
def test_elastic_billing_is_active_exactly_when_no_active_credit_is_left(lines, amount):
    result = draw_credits(lines, amount, ON)
    assert result.elastic_billing_active == elastic_billing_active(result.lines, ON)
    if result.uncovered > 0:
        assert result.elastic_billing_active


def line(position: int, amount: str, start: date = date(2024, 1, 1), end: date = date(2024, 12, 31)) -> CreditLineState:
    return CreditLineState(position=position, kind="commitment", amount=Decimal(amount), start=start, end=end)


def test_credits_run_out_then_elastic_billing_takes_over():
    lines = [line(1, "300.00"), line(2, "500.00")]

    january = draw_credits(lines, Decimal("400.00"), date(2024, 1, 31))
    assert january.draws == [
        CreditDraw(position=1, kind="commitment", amount=Decimal("300.00")),
        CreditDraw(position=2, kind="commitment", amount=Decimal("100.00")),
    ]
    assert january.covered == Decimal("400.00") and january.uncovered == 0
    assert [x.remaining for x in january.lines] == [0, Decimal("400.00")]
    assert not january.elastic_billing_active

    february = draw_credits(january.lines, Decimal("500.00"), date(2024, 2, 29))
    assert february.draws == [CreditDraw(position=2, kind="commitment", amount=Decimal("400.00"))]
    assert february.covered == Decimal("400.00")
    assert february.uncovered == Decimal("100.00")
    assert february.elastic_billing_active


def test_table_order_is_position_not_list_order():
    result = draw_credits([line(2, "500.00"), line(1, "300.00")], Decimal("400.00"), ON)
    assert [(d.position, d.amount) for d in result.draws] == [(1, Decimal("300.00")), (2, Decimal("100.00"))]
    assert [x.position for x in result.lines] == [2, 1]


def test_expired_line_is_not_drawn():
    expired = line(1, "300.00", end=date(2024, 5, 31))
    result = draw_credits([expired, line(2, "500.00")], Decimal("100.00"), date(2024, 6, 1))
    assert expired.status(date(2024, 6, 1)) == "expired"
    assert result.draws == [CreditDraw(position=2, kind="commitment", amount=Decimal("100.00"))]
    assert result.lines[0] == expired


def test_upcoming_line_is_not_drawn():
    upcoming = line(2, "500.00", start=date(2024, 7, 1))
    result = draw_credits([line(1, "300.00"), upcoming], Decimal("400.00"), date(2024, 6, 30))
    assert upcoming.status(date(2024, 6, 30)) == "upcoming"
    assert result.draws == [CreditDraw(position=1, kind="commitment", amount=Decimal("300.00"))]
    assert result.uncovered == Decimal("100.00")
    assert result.lines[1] == upcoming
    assert result.elastic_billing_active


def test_line_is_active_on_its_first_and_last_day():
    credit = line(1, "1.00", start=date(2024, 1, 1), end=date(2024, 1, 31))
    assert [credit.status(d) for d in (date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 1))] == [
        "upcoming",
        "active",
        "active",
        "expired",
    ]


def test_no_credit_lines_means_paying_as_you_go():
    assert elastic_billing_active([], ON)
    result = draw_credits([], Decimal("12.34"), ON)
    assert result.draws == [] and result.uncovered == Decimal("12.34") and result.elastic_billing_active


def test_refuses_float_unrounded_and_negative_amounts():
    with pytest.raises(TypeError):
        draw_credits([line(1, "1.00")], 0.5, ON)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        draw_credits([line(1, "1.00")], Decimal("0.005"), ON)
    with pytest.raises(ValueError):
        draw_credits([line(1, "1.00")], Decimal("-1.00"), ON)
    with pytest.raises(ValidationError):
        CreditLineState(position=1, kind="prepaid", amount=100.0, start=ON, end=ON)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        CreditLineState(position=1, kind="prepaid", amount=Decimal("1.00"), used=Decimal("2.00"), start=ON, end=ON)


def test_refuses_ambiguous_table_order_and_other_currencies():
    with pytest.raises(ValueError, match="unique"):
        draw_credits([line(1, "1.00"), line(1, "2.00")], Decimal("1.00"), ON)
    eur = CreditLineState(position=1, kind="prepaid", amount=Decimal("1.00"), start=ON, end=ON, currency="EUR")
    with pytest.raises(CurrencyMismatch):
        draw_credits([eur], Decimal("1.00"), ON)


def test_a_line_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValidationError) as err:
        CreditLineState(position=3, kind="prepaid", amount=Decimal("1.00"), start=ON, end=ON - timedelta(days=1))
    assert err.value.errors()[0]["msg"] == (
        f"Value error, credit line 3 ends ({ON - timedelta(days=1)}) before it starts ({ON})")
    assert CreditLineState(position=3, kind="prepaid", amount=Decimal("1.00"), start=ON, end=ON).end == ON


def test_the_dated_amounts_must_add_up_to_the_amount():
    spans = [DatedAmount(first=ON, last=ON, amount=Decimal("0.50")), DatedAmount(first=ON, last=ON,
                                                                             amount=Decimal("0.49"))]
    with pytest.raises(ValueError) as err:
        draw_credits([line(1, "5.00")], Decimal("1.00"), ON, dated=spans)
    assert str(err.value) == "the dated amounts must add up to the amount to draw, 1.00"
    spans[1] = DatedAmount(first=ON, last=ON, amount=Decimal("0.50"))
    assert draw_credits([line(1, "5.00")], Decimal("1.00"), ON, dated=spans).covered == Decimal("1.00")


@pytest.mark.parametrize("start, end, cuts", [
    (date(2024, 3, 1), date(2024, 3, 31), False),  # valid all period
    (date(2024, 1, 1), date(2024, 12, 31), False),
    (date(2024, 4, 1), date(2024, 4, 30), False),  # not valid at all
    (date(2024, 2, 1), date(2024, 2, 29), False),
    (date(2024, 3, 2), date(2024, 12, 31), True),  # starts on the period's 2nd day
    (date(2024, 3, 31), date(2024, 12, 31), True),  # starts on its last day
    (date(2024, 1, 1), date(2024, 3, 30), True),  # ends the day before its last
    (date(2024, 1, 1), date(2024, 3, 1), True),  # ends on its first day
    (date(2024, 3, 10), date(2024, 3, 20), True),
])
def test_a_line_cuts_the_period_when_it_starts_or_ends_inside_it(start, end, cuts):
    credit = CreditLineState(position=1, kind="prepaid", amount=Decimal("1.00"), start=start, end=end)
    assert line_cuts_period(credit, date(2024, 3, 1), date(2024, 3, 31)) is cuts


def test_what_is_refused_says_why():
    with pytest.raises(TypeError, match="^money is Decimal, never float$"):
        draw_credits([line(1, "1.00")], 0.5, ON)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^the amount to draw must be a Decimal rounded to the USD minor unit, "
                                         r"got Decimal\('0.005'\)$"):
        draw_credits([line(1, "1.00")], Decimal("0.005"), ON)
    with pytest.raises(ValueError, match="^the amount to draw must not be negative, got -1.00$"):
        draw_credits([line(1, "1.00")], Decimal("-1.00"), ON)
    with pytest.raises(ValueError, match="^the amount to draw must be a Decimal rounded to the USD minor unit, got 5$"):
        draw_credits([line(1, "1.00")], 5, ON)  # type: ignore[arg-type]  # an int is not money either
    with pytest.raises(ValidationError) as refused:
        CreditLineState(position=1, kind="prepaid", amount=100.0, start=ON, end=ON)  # type: ignore[arg-type]
    assert [(e["loc"], e["msg"]) for e in refused.value.errors()] == [
        (("amount",), "Value error, money is Decimal, never float")]
    eur = CreditLineState(position=1, kind="prepaid", amount=Decimal("1.00"), start=ON, end=ON, currency="EUR")
    with pytest.raises(CurrencyMismatch, match="^cannot draw USD from credit line 1 in EUR$"):
        draw_credits([eur], Decimal("1.00"), ON)


def test_nothing_dated_draws_nothing():
    result = draw_credits([line(1, "5.00")], Decimal("0.00"), ON, dated=[])
    assert (result.draws, result.covered, result.uncovered, result.pieces, result.elastic_billing_active) == (
        [], Decimal("0.00"), Decimal("0"), [], False)


def test_a_line_with_less_than_a_dollar_left_still_counts_as_credit():
    assert elastic_billing_active([line(1, "0.50")], ON) is False
    assert elastic_billing_active([line(1, "0.00")], ON) is True
