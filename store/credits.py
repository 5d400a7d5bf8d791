"""The credit lines as stored (D3): reading them in draw order, and storing a draw with the invoice's `credits` payment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from billing.credits import CreditLineState, Drawdown
from billing.statuses import PaymentStatus
from store.tables import CreditLine, Payment, PaymentEvent

# Built once: the month-end settlement reads and draws every organization's credits.
_CREDITS, _PAYMENTS = CreditLine.__table__, Payment.__table__
_CREDIT_LINES = (select(_CREDITS.c.id, _CREDITS.c.position, _CREDITS.c.kind, _CREDITS.c.amount, _CREDITS.c.used,
                        _CREDITS.c.start_date, _CREDITS.c.end_date, _CREDITS.c.currency)
                 .where(_CREDITS.c.org_id == bindparam("org_id")).order_by(_CREDITS.c.position, _CREDITS.c.id))
_USE_CREDIT = update(_CREDITS).where(_CREDITS.c.id == bindparam("line_id")).values(used=bindparam("used"))
_CREDIT_PAYMENTS = select(func.count()).select_from(_PAYMENTS).where(_PAYMENTS.c.invoice_id == bindparam("invoice_id"),
                                                                     _PAYMENTS.c.method == "credits")
_INSERT_PAYMENT = insert(_PAYMENTS).returning(_PAYMENTS.c.id)
_INSERT_PAYMENT_EVENT = insert(PaymentEvent.__table__)


def credit_lines(conn: Connection, org_id: str) -> Sequence[Row]:
    """The organization's credit lines, top to bottom (the order they are drawn in, D3)."""
    return conn.execute(_CREDIT_LINES, {"org_id": org_id}).all()


def line_states(rows: Sequence[Row]) -> list[CreditLineState]:
    return [CreditLineState(position=r.position, kind=r.kind, amount=r.amount, used=r.used, start=r.start_date,
                            end=r.end_date, currency=r.currency) for r in rows]


def store_draw(conn: Connection, rows: Sequence[Row], drawdown: Drawdown, *, org_id: str, invoice_id: int,
               invoice_number: str, currency: str, at: datetime, key: str = "credits") -> None:
    """Store a draw from `rows` (as `credit_lines` read them): each line's new use and, when the draw covered
    anything, a PAID `credits` payment on the invoice (idempotency key `<invoice>:<key>`) with an event naming
    the lines drawn."""
    changed = [dict(line_id=row.id, used=state.used) for row, state in zip(rows, drawdown.lines)
               if row.used != state.used]
    if changed:
        conn.execute(_USE_CREDIT, changed)
    if drawdown.covered <= 0:
        return
    # Credit draws take attempt numbers 0, -1, ...; card attempts count 1, 2, ...
    attempt = -conn.execute(_CREDIT_PAYMENTS, {"invoice_id": invoice_id}).scalar_one()
    payment_id = conn.execute(_INSERT_PAYMENT, dict(
        idempotency_key=f"{invoice_number}:{key}", org_id=org_id, invoice_id=invoice_id, attempt=attempt,
        method="credits", payment_method_id=None, status=PaymentStatus.PAID, amount=drawdown.covered,
        currency=currency, fx_rate=None, refundable=True, failure_code=None, gateway_charge_id=None, created_at=at,
        updated_at=at)).scalar_one()
    conn.execute(_INSERT_PAYMENT_EVENT, dict(
        payment_id=payment_id, status=PaymentStatus.PAID, at=at,
        detail=", ".join(f"{d.kind} #{d.position}: {d.amount}" for d in drawdown.draws)))
