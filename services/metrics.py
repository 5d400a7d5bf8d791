"""Business metrics in Prometheus format (SPEC J2), read from the database at each scrape: the database is the
record of every worker's work, so the figures agree however many workers run and survive their restarts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select

from billing.invoicing import last_closed_period, period_end
from billing.statuses import InvoiceStatus, PaymentStatus
from store.db import Database
from store.tables import EventDelivery, Invoice, Organization, Payment

CHARGED_METHODS = ("card", "paypal")


class BusinessCollector(Collector):
    def __init__(self, db: Database, now=lambda: datetime.now(timezone.utc)) -> None:
        self.db = db
        self.now = now

    def collect(self) -> Iterator:
        now = self.now()
        last_period = last_closed_period(now)
        with self.db.engine.connect() as conn:
            by_status = conn.execute(select(Payment.status, Payment.method, func.count())
                                     .group_by(Payment.status, Payment.method)).all()
            charged = conn.execute(select(Payment.currency, func.sum(Payment.amount))
                                   .where(Payment.status == PaymentStatus.PAID, Payment.method.in_(CHARGED_METHODS))
                                   .group_by(Payment.currency)).all()
            waiting = conn.execute(select(func.count()).select_from(Invoice)
                                   .where(Invoice.status == InvoiceStatus.FAILED)).scalar_one()
            processing = conn.execute(select(func.count()).select_from(Payment)
                                      .where(Payment.status == PaymentStatus.PROCESSING)).scalar_one()
            organizations = conn.execute(select(func.count()).select_from(Organization)
                                         .where(Organization.created_at < period_end(last_period))).scalar_one()
            settled = conn.execute(select(func.count(), func.max(Invoice.created_at))
                                   .where(Invoice.period == last_period, Invoice.kind == "cloud",
                                          Invoice.status != InvoiceStatus.PENDING)).one()
            deliveries = conn.execute(select(EventDelivery.status, func.count())
                                      .group_by(EventDelivery.status)).all()

        payments = GaugeMetricFamily("billing_payments", "Payment attempts by status and method (D8)",
                                     labels=["status", "method"])
        for status, method, count in by_status:
            payments.add_metric([status, method], count)
        yield payments

        amount = CounterMetricFamily("billing_amount_charged", "Amount charged to cards and PayPal, by currency "
                                     "(paid attempts; refunds are not subtracted)", labels=["currency"])
        for currency, total in charged:
            amount.add_metric([currency], float(total or 0))  # a metric sample, never money arithmetic
        yield amount

        yield GaugeMetricFamily("billing_payments_waiting_for_retry", "Invoices whose payment failed and waits for "
                                "a RETRY or a new payment method (F3)", value=waiting)
        yield GaugeMetricFamily("billing_webhooks_pending", "India charges in PROCESSING, waiting for the issuer's "
                                "webhook (E3)", value=processing)

        count, last_at = settled
        completed = GaugeMetricFamily("billing_settlements_completed", "Cloud invoices closed for the last month",
                                      labels=["period"])
        completed.add_metric([last_period], count)
        yield completed
        due = GaugeMetricFamily("billing_settlements_due", "Organizations that existed in the last month",
                                labels=["period"])
        due.add_metric([last_period], organizations)
        yield due
        # How long after the 1st the month-end has run: to its last invoice once all are closed, else until now.
        end = period_end(last_period)
        finished = count >= organizations and last_at is not None
        lag = ((last_at if finished else now) - end).total_seconds()
        settlement_lag = GaugeMetricFamily("billing_settlement_lag_seconds", "Seconds from the 1st 00:00 UTC to the "
                                           "last settlement of the last month (to now while some are open)",
                                           labels=["period", "finished"])
        settlement_lag.add_metric([last_period, "true" if finished else "false"], max(lag, 0.0))
        yield settlement_lag

        outbound = GaugeMetricFamily("billing_event_deliveries", "Outbound webhook deliveries by status (I6)",
                                     labels=["status"])
        for status, n in deliveries:
            outbound.add_metric([status], n)
        yield outbound


def registry(db: Database) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(BusinessCollector(db))
    return reg
