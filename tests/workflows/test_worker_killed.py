"""Exactly once across a real crash (SPEC M3): a worker *process* killed with SIGKILL after the gateway charged the
card and before the payment activity wrote its row; a fresh worker process finishes the payment, and the card was
charged once. The worker is tests/crash_worker.py (the product's worker with a gateway that hangs after charging,
a test-only wrapper), run against the dev server and a database both processes share."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType

from services.client import BillingClient
from store.gateway import SandboxGateway
from store.tables import Invoice, Payment, PaymentStatus, SandboxCharge
from tests.factories import card, closed_invoice, org_with_method

ROOT = Path(__file__).parents[2]
CHARGE_TIMEOUT = 60  # GATEWAY start_to_close_timeout (contracts/options.py): an upper bound on the wait for a retry


def _worker(url: str, address: str, task_queue: str, smtp_port: int, log: Path, crash_marker: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k != "CRASH_AFTER_CHARGE"}
    env.update(DATABASE_URL=url, TEMPORAL_ADDRESS=address, TASK_QUEUE=task_queue, SMTP_PORT=str(smtp_port),
               LOG_LEVEL="INFO")
    if crash_marker is not None:
        env["CRASH_AFTER_CHARGE"] = str(crash_marker)
    return subprocess.Popen([sys.executable, "-m", "tests.crash_worker"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _charges(db, key: str) -> list[SandboxCharge]:
    with db.session() as s:
        return s.exec(select(SandboxCharge).where(SandboxCharge.idempotency_key == key)).all()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.timeout(CHARGE_TIMEOUT + 420)
async def test_a_worker_killed_between_the_charge_and_the_database_write_charges_once(dev_env, db, smtp, task_queue,
                                                                                         tmp_path):
    gateway = SandboxGateway(db)
    org_with_method(db, gateway, card())
    invoice = closed_invoice(db)
    with db.session() as s:  # a number of its own: the session's dev server keeps earlier tests' payment workflows
        invoice.number = f"INV-202701-{secrets.randbelow(10**6):06d}"
        s.add(invoice)
    key = f"{invoice.number}:1"  # the first attempt's idempotency key
    address = dev_env.client.service_client.config.target_host
    marker = tmp_path / "charged"
    first = _worker(db.url, address, task_queue, smtp.port, tmp_path / "first.log", crash_marker=marker)
    second = None
    try:
        client = BillingClient(dev_env.client, db, gateway, task_queue=task_queue)
        handle = await client.charge_invoice(invoice.number)
        deadline = time.monotonic() + 90  # a worker process starting on a busy machine
        while not marker.exists():
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first worker never charged:\n" + (tmp_path / "first.log").read_text()
            await asyncio.sleep(0.1)
        # The crash point: the gateway has the charge, our database has no settled payment.
        [charge] = _charges(db, key)
        assert (charge.id, charge.outcome) == (marker.read_text(), "succeeded")
        with db.session() as s:
            assert [p.status for p in s.exec(select(Payment))] == [PaymentStatus.NEW]
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL

        second = _worker(db.url, address, task_queue, smtp.port, tmp_path / "second.log")
        await asyncio.wait_for(handle.result(), timeout=CHARGE_TIMEOUT + 180)
    finally:
        _stop(first)
        if second is not None:
            _stop(second)

    assert [(c.id, c.outcome) for c in _charges(db, key)] == [(charge.id, "succeeded")]  # the card charged once
    with db.session() as s:
        non_verification = [c for c in s.exec(select(SandboxCharge)) if not c.idempotency_key.startswith("verify")]
        assert [c.id for c in non_verification] == [charge.id]
        [payment] = s.exec(select(Payment)).all()
        assert (payment.status, payment.gateway_charge_id, payment.amount, payment.attempt) == (
            PaymentStatus.PAID, charge.id, Decimal("59.52"), 1)
        assert s.get(Invoice, invoice.id).status == "PAID"
    # The first attempt's charge is a local activity (LEAN_PATCH): the dead worker's workflow task timed out with it,
    # and the fresh worker ran the charge again, answered by the gateway's first result (found by its key).
    kinds = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert "charge found at the gateway by its key" in (tmp_path / "second.log").read_text()
