"""Contract of the fx activities: their names, inputs and results."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pydantic import BaseModel
from temporalio import activity


class FxRequest(BaseModel):
    currency: str
    at: datetime


class FxQuote(BaseModel):
    currency: str
    rate: Decimal
    effective_at: datetime | None = None


class FxActivities:
    """What workflows call (activities/fx.py implements it, registered under the same names)."""

    @activity.defn(name='fx_rate')
    def fx_rate(self, request: FxRequest) -> FxQuote:
        """The fx_rate activity."""
