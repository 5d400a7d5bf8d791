"""The worker: wires the Temporal client, the data converter, the workflows and the activities."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.runtime import (LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig,
                               TelemetryFilter)
from temporalio.worker import Worker

from activities.activation import ActivationActivities
from activities.consulting import ConsultingActivities
from activities.delivery import DeliveryActivities, EventPublisher
from activities.email import EmailActivities, SmtpSettings
from activities.fx import FxActivities
from activities.invoices import InvoiceActivities
from activities.organization import OrganizationActivities
from activities.payments import PaymentActivities
from activities.rbi import RbiActivities
from activities.starting import StartingActivities
from activities.support import SupportActivities
from activities.tax import TaxActivities
from billing import config
from billing.config import BillingDurations
from store.db import Database
from store.gateway import PaymentGateway
from store.gateway_http import configured_gateway
from billing.logging import configure_logging
from contracts.codec import data_converter
from contracts.clock import ClockInterceptor
from workflows.activation import ActivationWorkflow
from workflows.checkout import CheckoutWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.mandate import RegisterMandateWorkflow
from workflows.month_end import MonthEndWorkflow
from workflows.organization import OrgBillingWorkflow
from workflows.payment import PaymentWorkflow
from workflows.settlement import SettlementWorkflow
from workflows.support_plan import SupportPlanWorkflow
from contracts.flows import TASK_QUEUE

WORKFLOWS = [PaymentWorkflow, SettlementWorkflow, MonthEndWorkflow, ActivationWorkflow, RegisterMandateWorkflow,
             OrgBillingWorkflow, CheckoutWorkflow, SupportPlanWorkflow, DeliveryWorkflow]


def activities_for(client: Client, task_queue: str, db: Database, gateway: PaymentGateway,
                   smtp: SmtpSettings, durations: BillingDurations | None = None) -> list:
    events = EventPublisher(db, client, task_queue)  # I6: starts the deliveries activities publish
    payments = PaymentActivities(db, gateway, events)
    email = EmailActivities(db, smtp)
    starting = StartingActivities(client, task_queue, db, durations or BillingDurations(),
                                  start_rate=config.month_end_start_rate())
    tax = TaxActivities(db)
    invoices = InvoiceActivities(db, tax)
    invoices.events = events
    fx = FxActivities(db)
    activation = ActivationActivities(db, email)
    rbi = RbiActivities(db, gateway, email, events)
    consulting = ConsultingActivities(db)
    support = SupportActivities(db)
    organization = OrganizationActivities(db, gateway, email, client, task_queue, durations or BillingDurations(),
                                          events)
    delivery = DeliveryActivities(db)
    return [payments.charge_payment, payments.record_manual_payment, payments.forgive_invoice, payments.refund_payment,
            invoices.settle_cloud_invoice,
            fx.fx_rate, email.send_email, starting.start_payment, starting.start_settlements, activation.issue_code,
            activation.first_usage, activation.end_grace, activation.activate, rbi.prepare_charge,
            rbi.register_mandate, rbi.authorize, rbi.mark_pending_reversal, rbi.withdraw_unauthorized,
            rbi.record_outcome, organization.attach, organization.failed_invoices, organization.set_status,
            organization.notify, consulting.price, consulting.issue_invoice, support.record_change,
            delivery.deliver_event, delivery.give_up]


def install_runtime() -> None:
    """Forward the SDK core's logs into Python logging (JSON on stderr, redacted) instead of stdout; export the SDK's
    metrics in Prometheus format on `BILLING_SDK_METRICS_ADDRESS` (host:port) when it is set (SPEC J2)."""
    address = os.environ.get("BILLING_SDK_METRICS_ADDRESS")
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(
        logging=LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                              forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"))),
        metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True) if address else None)),
        error_if_already_set=False)


def build_worker(client: Client, db: Database, gateway: PaymentGateway, smtp: SmtpSettings,
                 task_queue: str = TASK_QUEUE, executor: ThreadPoolExecutor | None = None,
                 durations: BillingDurations | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(client, task_queue, db, gateway, smtp, durations),
        activity_executor=executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity"),
        max_concurrent_activities=32,
        # Bounded so that a month-end burst of 10,000 settlements does not starve workflow tasks past their
        # timeout (which would re-run their local activities): measured in bench/settlement.py.
        max_concurrent_workflow_tasks=20,
        max_concurrent_local_activities=32,
    )


async def connect(address: str | None = None) -> Client:
    return await Client.connect(address or config.temporal_address() or "127.0.0.1:7233",
                                namespace=config.temporal_namespace(), data_converter=data_converter(),
                                interceptors=[ClockInterceptor()])


async def main() -> None:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    install_runtime()
    db = Database(config.database_url())
    client = await connect()
    smtp = SmtpSettings(host=config.smtp_host(), port=config.smtp_port())
    worker = build_worker(client, db, configured_gateway(db), smtp)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
