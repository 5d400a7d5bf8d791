"""SPEC D3: a credit line covers only usage dated inside its validity (start to end, both inclusive); a usage
span that straddles its start or end counts pro rata by days, with its share of the tax."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.credits import (CreditLineState, DatedAmount, _split_at, date_by_usage, draw_credits, usage_by_span,
                             usage_days)
from tests.scenario_harness import closed_invoices, run_scenario

D = Decimal
JAN_1, JAN_31 = date(2027, 1, 1), date(2027, 1, 31)
cents = st.integers(min_value=0, max_value=10**7).map(lambda u: D(u).scaleb(-2))
days = st.integers(min_value=-20, max_value=70).map(lambda d: JAN_1 + timedelta(days=d))


def line(position: int, amount: str, start: date, end: date, used: str = "0.00") -> CreditLineState:
    return CreditLineState(position=position, kind="promotional", amount=D(amount), used=D(used), start=start,
                           end=end)


def january(amount: str) -> list[DatedAmount]:
    """Usage recorded from 2027-01-01 to 2027-02-01: the 31 days of January."""
    return usage_by_span([("web", JAN_1, date(2027, 2, 1))], [D(amount)], D(amount), start=1, end=2)


def test_a_usage_line_to_date_is_exclusive():
    assert usage_days(JAN_1, date(2027, 2, 1)) == (JAN_1, JAN_31)
    assert usage_days(JAN_1, JAN_1) == (JAN_1, JAN_1)
    assert january("310.00") == [DatedAmount(first=JAN_1, last=JAN_31, amount=D("310.00"))]


def test_a_line_that_expires_mid_month_covers_the_usage_before_its_end():
    result = draw_credits([line(0, "1000.00", date(2026, 12, 1), date(2027, 1, 15))], D("310.00"), JAN_31,
                          dated=january("310.00"))
    assert (result.covered, result.uncovered) == (D("150.00"), D("160.00"))  # 15 of 31 days, 10.00 a day


def test_a_line_that_starts_mid_month_covers_nothing_before_its_start():
    result = draw_credits([line(0, "1000.00", date(2027, 1, 20), date(2027, 12, 31))], D("310.00"), JAN_31,
                          dated=january("310.00"))
    assert (result.covered, result.uncovered) == (D("120.00"), D("190.00"))  # January 20 to 31


def test_each_line_carries_its_share_of_the_tax_and_cents_add_up():
    total = D("372.01")  # 310.00 of usage and its tax, dated like the usage
    dated = date_by_usage(total, january("310.00"), JAN_1, JAN_31)
    result = draw_credits([line(0, "1000.00", JAN_1, date(2027, 1, 10)), line(1, "1000.00", date(2027, 1, 11),
                                                                           date(2027, 1, 20))], total, JAN_31,
                          dated=dated)
    assert [d.amount for d in result.draws] == [D("120.00"), D("120.00")]  # 10 of 31 days each, rounded
    assert result.covered + result.uncovered == total and result.uncovered == D("132.01")


def test_usage_spans_share_the_total_in_proportion_to_their_amounts():
    spans = usage_by_span([(JAN_1, date(2027, 1, 16)), (date(2027, 1, 16), date(2027, 2, 1)),
                           (JAN_1, date(2027, 1, 16))], [D("100.00"), D("200.00"), D("50.00")], D("350.00"))
    assert [(s.first, s.last, s.amount) for s in spans] == [(JAN_1, date(2027, 1, 15), D("150.00")),
                                                           (date(2027, 1, 16), JAN_31, D("200.00"))]
    assert [s.amount for s in date_by_usage(D("420.01"), spans, JAN_1, JAN_31)] == [D("180.00"), D("240.01")]
    assert date_by_usage(D("1000.00"), [], JAN_1, JAN_31) == [DatedAmount(first=JAN_1, last=JAN_31,
                                                                         amount=D("1000.00"))]


@st.composite
def tables(draw: st.DrawFn) -> list[CreditLineState]:
    count = draw(st.integers(min_value=0, max_value=5))
    lines = []
    for position in draw(st.permutations(range(count))):  # table order need not be list order
        amount = draw(cents)
        used = draw(st.integers(min_value=0, max_value=int(amount * 100)).map(lambda u: D(u).scaleb(-2)))
        start, end = sorted([draw(days), draw(days)])
        lines.append(CreditLineState(position=position, kind="promotional", amount=amount, used=used, start=start,
                                     end=end))
    return lines


@st.composite
def usage(draw: st.DrawFn) -> list[DatedAmount]:
    spans = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        first, last = sorted([draw(days), draw(days)])
        spans.append(DatedAmount(first=first, last=last, amount=draw(cents)))
    return spans


def _inside(piece, credit: CreditLineState) -> bool:
    return credit.start <= piece.first and piece.last <= credit.end


@given(tables(), usage())
def test_drawing_by_date_creates_loses_nothing_respects_windows_and_table_order(lines, spans):
    amount = sum((s.amount for s in spans), D(0))
    result = draw_credits(lines, amount, JAN_31, dated=spans)
    by_position = {credit.position: credit for credit in lines}
    after = {credit.position: credit for credit in result.lines}

    # Nothing created or lost: Σ drawn + Σ left due = the total, piece by piece and line by line.
    assert sum((d.amount for d in result.draws), D(0)) + result.uncovered == amount
    assert result.covered == sum((d.amount for d in result.draws), D(0))
    assert sum((p.amount for p in result.pieces), D(0)) == amount
    for draw in result.draws:
        assert draw.amount == sum((p.amount for p in result.pieces if p.position == draw.position), D(0))
        assert after[draw.position].used == by_position[draw.position].used + draw.amount
    for credit in result.lines:
        assert 0 <= credit.used <= credit.amount
    # Every piece of the amount lies within the usage's dates, and is cut where it straddles a line's boundary.
    for piece in result.pieces:
        assert any(s.first <= piece.first and piece.last <= s.last for s in spans)
        for credit in lines:
            assert _inside(piece, credit) or piece.last < credit.start or credit.end < piece.first
    # No line covers usage outside its window.
    for piece in result.pieces:
        if piece.position is not None:
            assert _inside(piece, by_position[piece.position])
    # Table order: a piece is left to a later line, or left due, only when every earlier line that could cover it
    # (its window contains the piece) has nothing left.
    for piece in result.pieces:
        later = piece.position if piece.position is not None else len(lines)
        for credit in lines:
            if credit.position < later and _inside(piece, credit):
                assert after[credit.position].remaining == 0, (piece, credit)


@given(tables(), usage())
def test_pro_rata_by_days_within_a_cent_per_piece(lines, spans):
    """A span split at boundaries gives each part its days' share of the span, each off by less than a cent."""
    amount = sum((s.amount for s in spans), D(0))
    result = draw_credits(lines, amount, JAN_31, dated=spans)
    if len(spans) != 1:
        return
    [span] = spans
    per_day = span.amount / span.days
    parts: dict[tuple[date, date], D] = {}
    for piece in result.pieces:
        parts[(piece.first, piece.last)] = parts.get((piece.first, piece.last), D(0)) + piece.amount
    for (first, last), part in parts.items():
        assert abs(part - per_day * ((last - first).days + 1)) < D("0.01")


async def test_simulated_credit_lines_cover_the_usage_dated_inside_them(new_database):
    from pathlib import Path

    from starter.scenario import load_scenario
        
    path = Path(__file__).parents[1] / "scenarios" / "subscriptions" / "credit_line_mid_month.yaml"
    output = await run_scenario(load_scenario(str(path)), new_database())
    [invoice] = closed_invoices(output)
    assert (invoice["total"], invoice["credits_applied"]) == ("310.00", "270.00")
    assert [(p["method"], p["status"], p["amount"]) for p in output["payments"]] == [
        ("credits", "PAID", "270.00"), ("card", "PAID", "40.00")]
    [table] = output["credits"]
    assert [(line["used"], line["remaining"], line["status"]) for line in table["lines"]] == [
        ("150.00", "350.00", "expired"), ("120.00", "380.00", "active")]


def test_usage_by_span_sums_each_span_even_when_only_the_start_or_the_end_is_shared():
    feb_1, jan_16 = date(2027, 2, 1), date(2027, 1, 16)
    same_start = [("web", JAN_1, jan_16), ("etl", JAN_1, feb_1), ("web", JAN_1, feb_1)]
    assert usage_by_span(same_start, [D("1.00"), D("2.00"), D("3.00")], D("6.00"), start=1, end=2) == [
        DatedAmount(first=JAN_1, last=date(2027, 1, 15), amount=D("1.00")),
        DatedAmount(first=JAN_1, last=JAN_31, amount=D("5.00"))]
    same_end = [("web", jan_16, feb_1), ("etl", JAN_1, feb_1)]
    assert usage_by_span(same_end, [D("1.00"), D("2.00")], D("3.00"), start=1, end=2) == [
        DatedAmount(first=JAN_1, last=JAN_31, amount=D("2.00")),
        DatedAmount(first=jan_16, last=JAN_31, amount=D("1.00"))]


def test_spans_without_usage_carry_no_share():
    week = DatedAmount(first=JAN_1, last=date(2027, 1, 7), amount=D("0.00"))
    rest = DatedAmount(first=date(2027, 1, 8), last=JAN_31, amount=D("3.00"))
    assert date_by_usage(D("10.00"), [week, rest], JAN_1, JAN_31) == [rest.model_copy(update={"amount": D("10.00")})]
    assert date_by_usage(D("10.00"), [week], JAN_1, JAN_31) == [DatedAmount(first=JAN_1, last=JAN_31,
                                                                            amount=D("10.00"))]
    # Under a dollar is usage all the same.
    cents_only = DatedAmount(first=JAN_1, last=date(2027, 1, 7), amount=D("0.50"))
    assert [span.amount for span in date_by_usage(D("10.00"), [cents_only, rest], JAN_1, JAN_31)] == [
        D("1.43"), D("8.57")]


def test_a_cut_on_a_span_first_day_leaves_it_whole():
    span = DatedAmount(first=JAN_1, last=JAN_31, amount=D("31.00"))
    assert _split_at([span], [JAN_1], "USD") == [span]
    assert _split_at([span], [date(2027, 1, 2)], "USD") == [
        DatedAmount(first=JAN_1, last=JAN_1, amount=D("1.00")),
        DatedAmount(first=date(2027, 1, 2), last=JAN_31, amount=D("30.00"))]


def test_a_used_up_line_takes_no_piece():
    spent = line(0, "100.00", JAN_1, JAN_31, used="100.00")
    result = draw_credits([spent, line(1, "50.00", JAN_1, JAN_31)], D("31.00"), JAN_31, dated=january("31.00"))
    assert [(piece.first, piece.last, piece.amount, piece.position) for piece in result.pieces] == [
        (JAN_1, JAN_31, D("31.00"), 1)]
