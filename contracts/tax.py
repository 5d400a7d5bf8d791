"""Contract of the tax activities: their names, inputs and results."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pydantic import BaseModel
from billing.tax import Product, TaxLine


class TaxRequest(BaseModel):
    org_id: str
    product: Product
    amount: Decimal
    currency: str
    on: date  # the last day of the invoiced period: the rate in force then applies


class TaxQuote(BaseModel):
    country: str
    subdivision: str | None
    tax_id_valid: bool
    lines: list[TaxLine]
    tax: Decimal


