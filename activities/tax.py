"""The tax activity: taxes for an organization's billing address, computed by the domain (SPEC C1-C4).

Computed in an activity so the result is recorded in the workflow's history: a later rate change
never alters the replay of a running workflow.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from store.db import Database
from store.tables import BillingProfile
from billing.tax import OfflineRegistry, Product, TaxIdRegistry, TaxTable, default_table, tax_lines_for
from contracts.tax import TaxRequest, TaxQuote  # noqa: F401


def quote(*, country: str, subdivision: str | None, tax_id: str | None, product: Product, amount: Decimal,
          currency: str, on: date, registry: TaxIdRegistry, table: TaxTable | None = None) -> TaxQuote:
    valid = registry.is_valid(country, tax_id)
    lines = tax_lines_for(country=country, subdivision=subdivision if country in ("US", "CA") else None,
                          tax_id_valid=valid, product=product, amount=amount, currency=currency, on=on, table=table)
    return TaxQuote(country=country, subdivision=subdivision, tax_id_valid=valid, lines=lines,
                    tax=sum((line.amount for line in lines), Decimal("0")))


class TaxActivities:
    def __init__(self, db: Database, registry: TaxIdRegistry | None = None, table: TaxTable | None = None) -> None:
        self.db = db
        self.registry = registry or OfflineRegistry()
        self.table = table or default_table()

    def quote_in(self, s: Session, request: TaxRequest) -> TaxQuote:
        """The quote for the organization's billing address as read in session `s` (settlement's transaction)."""
        return self.quote_for(s.get(BillingProfile, request.org_id), request)

    def quote_for(self, profile: BillingProfile | None, request: TaxRequest) -> TaxQuote:
        """The quote for a billing address already read (anything with country, state and tax_id)."""
        if profile is None:
            raise ApplicationError(f"organization {request.org_id} has no billing profile",
                                   type="MissingBillingProfile", non_retryable=True)
        return quote(country=profile.country, subdivision=profile.state, tax_id=profile.tax_id,
                     product=request.product, amount=request.amount, currency=request.currency, on=request.on,
                     registry=self.registry, table=self.table)
