"""A worker process for tests/workflows/test_worker_killed.py: the product's worker (worker.build_worker, the
SandboxGateway) with one test-only difference, here and not in production code. When CRASH_AFTER_CHARGE names a
file, the gateway, once it has recorded a charge, writes the charge's ID to that file and hangs there: the payment
activity never gets to write its row, and the test kills the process with SIGKILL at exactly that point.

    DATABASE_URL=... TEMPORAL_ADDRESS=... TASK_QUEUE=... SMTP_PORT=... [CRASH_AFTER_CHARGE=FILE] python -m tests.crash_worker
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from activities.email import SmtpSettings
from billing.logging import configure_logging
from store.db import Database
from store.gateway import ChargeResult, SandboxGateway
from worker import build_worker, connect, install_runtime


class GatewayThatHangsAfterCharging(SandboxGateway):
    def __init__(self, db: Database, marker: Path | None) -> None:
        super().__init__(db)
        self.marker = marker

    def charge(self, **kwargs) -> ChargeResult:
        result = super().charge(**kwargs)  # the charge is made and recorded on the gateway's side
        if self.marker is not None and not kwargs["idempotency_key"].startswith("verify"):
            self.marker.write_text(result.charge_id)
            threading.Event().wait()  # until SIGKILL
        return result


async def main() -> None:
    configure_logging(os.environ.get("LOG_LEVEL", "WARNING"))
    install_runtime()
    db = Database(os.environ["DATABASE_URL"])
    marker = os.environ.get("CRASH_AFTER_CHARGE")
    client = await connect(os.environ["TEMPORAL_ADDRESS"])
    worker = build_worker(client, db, GatewayThatHangsAfterCharging(db, Path(marker) if marker else None),
                          SmtpSettings(host="127.0.0.1", port=int(os.environ["SMTP_PORT"])),
                          task_queue=os.environ["TASK_QUEUE"])
    print("worker running", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
