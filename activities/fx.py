"""The fx activity: the USD -> currency rate in force at a moment, from the rate table (SPEC M2, E3)."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from store.db import Database
from store.tables import FxRate
from contracts.fx import FxRequest, FxQuote  # noqa: F401


class FxActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="fx_rate")
    def fx_rate(self, request: FxRequest) -> FxQuote:
        if request.currency == "USD":
            return FxQuote(currency="USD", rate=Decimal("1"))
        with self.db.session() as s:
            return rate_in_force(s, request)


def rate_in_force(s: Session, request: FxRequest) -> FxQuote:
    """The newest USD -> currency rate effective at `request.at`, read in session `s`."""
    if request.currency == "USD":
        return FxQuote(currency="USD", rate=Decimal("1"))
    row = s.exec(select(FxRate).where(FxRate.currency == request.currency, FxRate.effective_at <= request.at)
                 .order_by(FxRate.effective_at.desc())).first()
    if row is None:
        raise ApplicationError(f"no USD->{request.currency} rate in force at {request.at.isoformat()}",
                               type="NoFxRate", non_retryable=True)
    return FxQuote(currency=row.currency, rate=row.rate, effective_at=row.effective_at)
