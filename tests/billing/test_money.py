"""Properties of Money, round_money and allocate (SPEC M1)."""

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    MINOR_UNITS,
    CurrencyMismatch,
    Money,
    UnknownCurrency,
    allocate,
    format_amount,
    minor_unit,
    round_money,
    sum_money,
)

currencies = st.sampled_from(sorted(MINOR_UNITS))
amounts = st.integers(min_value=0, max_value=8).flatmap(
    lambda places: st.decimals(
        min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=places, allow_nan=False, allow_infinity=False
    )
)


def quantum(currency: str) -> Fraction:
    return Fraction(1, 10 ** minor_unit(currency))


def rounded_amounts(currency: str, min_size: int = 0) -> st.SearchStrategy[list[Decimal]]:
    units = st.integers(min_value=-(10**12), max_value=10**12)
    return st.lists(units.map(lambda u: Decimal(u).scaleb(-minor_unit(currency))), min_size=min_size, max_size=20)


def money(currency: str) -> st.SearchStrategy[Money]:
    return amounts.map(lambda a: Money(a, currency))


@given(amounts, currencies)
def test_round_money_is_half_up_to_the_minor_unit(amount, currency):
    rounded = round_money(amount, currency)
    q = quantum(currency)
    exact = Fraction(amount)
    sign = -1 if exact < 0 else 1
    # Reference half-up, computed with exact fractions: ties go away from zero.
    assert Fraction(rounded) == sign * floor(abs(exact) / q + Fraction(1, 2)) * q
    assert rounded.as_tuple().exponent == -minor_unit(currency)


@given(amounts, currencies)
def test_round_money_is_idempotent(amount, currency):
    once = round_money(amount, currency)
    twice = round_money(once, currency)
    assert twice == once
    assert str(twice) == str(once)


@given(st.data(), currencies)
def test_sum_of_rounded_lines_needs_no_further_rounding(data, currency):
    lines = [Money(a, currency) for a in data.draw(rounded_amounts(currency))]
    total = sum_money(lines, currency)
    assert Fraction(total.amount) == sum((Fraction(line.amount) for line in lines), Fraction(0))
    assert total.amount.as_tuple().exponent == -minor_unit(currency)
    assert total.rounded() == total
    assert str(total.rounded().amount) == str(total.amount)


@given(st.data(), currencies)
def test_addition_is_associative_commutative_and_conserves_money(data, currency):
    a, b, c = (data.draw(money(currency)) for _ in range(3))
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert a + b - b == a
    assert a - a == Money.zero(currency)
    assert -(-a) == a


@given(st.data(), currencies)
def test_allocate_parts_sum_to_the_total_and_stay_within_one_minor_unit(data, currency):
    (total_amount,) = data.draw(rounded_amounts(currency, min_size=1).map(lambda xs: xs[:1]))
    total = Money(total_amount, currency)
    weights = data.draw(
        st.lists(
            st.decimals(min_value=0, max_value=Decimal("1e6"), places=4, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=12,
        ).filter(lambda ws: sum(ws) > 0)
    )
    parts = allocate(total, weights)

    assert len(parts) == len(weights)
    assert sum_money(parts, currency) == total
    weight_sum = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights):
        assert part.rounded() == part
        share = Fraction(total.amount) * Fraction(weight) / weight_sum
        assert abs(Fraction(part.amount) - share) < quantum(currency)


def test_allocate_gives_leftover_cents_to_the_largest_remainders():
    parts = allocate(Money.of("100.00", "USD"), [Decimal(1), Decimal(1), Decimal(1)])
    assert [str(p) for p in parts] == ["33.34", "33.33", "33.33"]
    parts = allocate(Money.of("-0.05", "EUR"), [Decimal("0.3"), Decimal("0.7")])
    assert [str(p) for p in parts] == ["-0.02", "-0.03"]  # a tie goes to the earlier part


def test_allocate_refuses_an_unrounded_total_and_useless_weights():
    with pytest.raises(ValueError):
        allocate(Money.of("1.005", "USD"), [Decimal(1)])
    with pytest.raises(ValueError):
        allocate(Money.of("1.00", "USD"), [Decimal(0), Decimal(0)])
    with pytest.raises(ValueError):
        allocate(Money.of("1.00", "USD"), [Decimal(1), Decimal(-1)])
    with pytest.raises(ValueError):
        allocate(Money.of("1.00", "USD"), [])


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "USD", "0.01"),
        ("2.675", "USD", "2.68"),
        ("-0.005", "USD", "-0.01"),
        ("2.665", "EUR", "2.67"),
        ("0.004", "INR", "0.00"),
        ("-0.004", "USD", "0.00"),
        ("0.5", "JPY", "1"),
        ("-1.5", "JPY", "-2"),
        ("1234.4999", "GBP", "1234.50"),
    ],
)
def test_round_money_examples(amount, currency, expected):
    assert str(round_money(Decimal(amount), currency)) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [("59.515", "USD", "59.52"), ("1000", "USD", "1000.00"), ("100", "JPY", "100"), ("100.4", "JPY", "100"),
     ("1E+3", "EUR", "1000.00"), ("-0.001", "USD", "0.00")],
)
def test_money_prints_exactly_the_minor_unit_places(amount, currency, text):
    assert str(Money.of(amount, currency)) == text
    assert format_amount(Decimal(amount), currency) == text


def test_jpy_has_no_minor_unit():
    assert minor_unit("JPY") == 0
    assert Money.zero("JPY").amount.as_tuple().exponent == 0
    assert round_money(Decimal("99.5"), "JPY") == Decimal(100)


def test_multiplication_is_exact_until_rounded():
    line = Money.of("0.0123", "USD") * Decimal("1000.5")
    assert line.amount == Decimal("12.30615")
    assert str(line.rounded().amount) == "12.31"
    assert 3 * Money.of("1.10", "USD") == Money.of("3.30", "USD")


@pytest.mark.parametrize(
    "operation",
    [
        lambda: Money(0.1, "USD"),  # type: ignore[arg-type]
        lambda: Money.of(0.1, "USD"),  # type: ignore[arg-type]
        lambda: round_money(0.1, "USD"),  # type: ignore[arg-type]
        lambda: format_amount(0.1, "USD"),  # type: ignore[arg-type]
        lambda: Money.of("1", "USD") * 1.5,
        lambda: allocate(Money.of("1.00", "USD"), [0.5, 0.5]),  # type: ignore[list-item]
    ],
)
def test_float_is_refused(operation):
    with pytest.raises(TypeError):
        operation()


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
        lambda a, b: sum_money([a, b], "USD"),
    ],
)
def test_currency_mismatch_is_refused(operation):
    with pytest.raises(CurrencyMismatch):
        operation(Money.of("1.00", "USD"), Money.of("1.00", "EUR"))


@pytest.mark.parametrize("currency", ["XXX", "usd", "", "US"])
def test_unknown_currency_is_refused(currency):
    with pytest.raises(UnknownCurrency):
        Money.of("1", currency)
    with pytest.raises(UnknownCurrency):
        minor_unit(currency)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "one"])
def test_non_numbers_are_refused(amount):
    with pytest.raises(ValueError):
        Money.of(amount, "USD")


def test_comparisons_and_zero():
    a, b = Money.of("1.00", "USD"), Money.of("2.50", "USD")
    assert a < b <= b and b > a >= a
    assert Money.of("1.0", "USD") == Money.of("1.00", "USD")
    assert Money.zero("USD").is_zero() and not a.is_zero()
    assert sum_money([], "EUR") == Money.zero("EUR")


@pytest.mark.parametrize("amount, kind", [("1.00", "str"), (True, "bool"), (None, "NoneType"),
                                          (Fraction(1, 2), "Fraction")])
def test_only_decimal_or_int_is_money(amount, kind):
    with pytest.raises(TypeError) as err:
        Money(amount, "USD")  # type: ignore[arg-type]
    assert str(err.value) == f"money amounts must be Decimal or int, got {kind}"
    with pytest.raises(TypeError) as err:
        Money(0.5, "USD")  # type: ignore[arg-type]
    assert str(err.value) == "money amounts must be Decimal, never float"
    assert Money(3, "USD").amount == Decimal(3) and isinstance(Money(3, "USD").amount, Decimal)


def test_error_messages_name_the_problem():
    with pytest.raises(UnknownCurrency) as err:
        minor_unit("usd")
    assert str(err.value) == "unknown currency 'usd' (expected an upper-case ISO 4217 code)"
    with pytest.raises(CurrencyMismatch) as err:
        Money.of("1", "USD") + Money.of("1", "EUR")
    assert str(err.value) == "cannot combine USD with EUR"
    with pytest.raises(ValueError) as err:
        Money.of("one", "USD")
    assert str(err.value) == "not a decimal amount: 'one'"
    with pytest.raises(ValueError) as err:
        Money(Decimal("NaN"), "USD")
    assert str(err.value) == "money amounts must be finite, got NaN"
    with pytest.raises(TypeError) as err:
        Money.of("1", "USD") * 1.5
    assert str(err.value) == "cannot multiply money by a float; use Decimal"


@pytest.mark.parametrize("operation", [
    lambda m: m + 1, lambda m: 1 + m, lambda m: m - Decimal(1), lambda m: Decimal(1) - m,
    lambda m: m < 1, lambda m: m <= 1, lambda m: m > 1, lambda m: m >= 1,
    lambda m: m * "2", lambda m: m * True, lambda m: m * m,
])
def test_money_combines_only_with_money_and_scales_only_by_numbers(operation):
    with pytest.raises(TypeError):
        operation(Money.of("1.00", "USD"))


def test_money_is_not_equal_to_a_bare_number():
    assert Money.of("1.00", "USD") != Decimal("1.00")
    assert Money.of("1.00", "USD") != Money.of("1.00", "EUR")


def test_every_comparison_at_and_around_equality():
    one, other_one, two = Money.of("1.00", "USD"), Money.of("1", "USD"), Money.of("2.00", "USD")
    assert (one < other_one, one <= other_one, one > other_one, one >= other_one) == (False, True, False, True)
    assert (one < two, one <= two, one > two, one >= two) == (True, True, False, False)
    assert (two < one, two <= one, two > one, two >= one) == (False, False, True, True)
    for compare in (lambda a, b: a <= b, lambda a, b: a > b):
        with pytest.raises(CurrencyMismatch):
            compare(one, Money.of("1.00", "EUR"))


def test_arithmetic_exact_values():
    a, b = Money.of("10.25", "USD"), Money.of("0.30", "USD")
    assert (a + b).amount == Decimal("10.55") and (a - b).amount == Decimal("9.95")
    assert (b - a).amount == Decimal("-9.95") and (-a).amount == Decimal("-10.25")
    assert (a * 3).amount == Decimal("30.75") and (2 * a).amount == Decimal("20.50")
    assert (a * Decimal("0.5")).amount == Decimal("5.125")
    assert (a + b).currency == "USD" and (a * 2).currency == "USD" and (-a).currency == "USD"
    assert str(Money.zero("USD").amount) == "0.00" and str(Money.zero("JPY").amount) == "0"
    assert str(Money.of(" 12.5 ", "USD")) == "12.50"
    assert str(Money.of("-0.004", "USD").rounded().amount) == "0.00"
    assert sum_money([a, b, a], "USD").amount == Decimal("20.80")


def test_allocate_error_messages_and_exact_splits():
    for total, weights, message in [
        (Money.of("1.00", "USD"), [], "allocate needs at least one weight"),
        (Money.of("1.005", "USD"), [Decimal(1)], "allocate needs a rounded total, got 1.005 USD"),
        (Money.of("1.00", "USD"), [Decimal(1), Decimal(-1)], "allocation weights must not be negative"),
        (Money.of("1.00", "USD"), [Decimal(0)], "allocation weights must not all be zero"),
    ]:
        with pytest.raises(ValueError) as err:
            allocate(total, weights)
        assert str(err.value) == message
    assert [p.amount for p in allocate(Money.of("1.00", "USD"), [Decimal(1), Decimal(0), Decimal(3)])] == [
        Decimal("0.25"), Decimal("0.00"), Decimal("0.75")]
    assert [str(p) for p in allocate(Money.of("0.02", "USD"), [Decimal(1)] * 3)] == ["0.01", "0.01", "0.00"]
    assert [str(p) for p in allocate(Money.of("10", "JPY"), [Decimal(1), Decimal(2)])] == ["3", "7"]
    assert [str(p) for p in allocate(Money.of("-1.00", "USD"), [Decimal(1)] * 3)] == ["-0.34", "-0.33", "-0.33"]
    assert [str(p) for p in allocate(Money.of("0.10", "USD"), [Decimal(1), Decimal(2), Decimal(2)])] == [
        "0.02", "0.04", "0.04"]
    assert [str(p) for p in allocate(Money.of("0.05", "USD"), [Decimal(1), Decimal(1), Decimal(1)])] == [
        "0.02", "0.02", "0.01"]


def test_allocate_is_exact_beyond_the_default_decimal_precision():
    # 40 significant digits: the default decimal context (28 digits) would round the minor units silently.
    total = Money(Decimal("1" * 38 + ".01"), "USD")
    parts = allocate(total, [Decimal(1), Decimal(2)])
    assert [part.amount for part in parts] == [Decimal("3703703703703703703703703703703703703.67"),
                                               Decimal("7407407407407407407407407407407407407.34")]
    assert sum_money(parts, "USD") == total
