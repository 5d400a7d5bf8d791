"""The published OpenAPI document against the app itself (schemathesis, in process over ASGI): every operation with
generated requests, then a stateful run following the document's links, as an Organization Owner and as an
operator. No answer is a 5xx and none breaks the schema it documents (status, content type, body).

The app runs on a BillingClient over a time-skipping Temporal server with a worker (on their own event loop in a
thread, since schemathesis calls the ASGI app from its own), so a request that reaches a workflow is answered as
in production."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)
from hypothesis.stateful import run_state_machine_as_test
from sqlmodel import SQLModel
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from billing.permissions import ApiRole
from services.client import BillingClient
from starter.processes import binary
from starter.simulate import SimulatedClock
from starter.temporal_setup import register_search_attributes
from store.db import Database
from store.gateway import SandboxGateway
from store.tables import Invoice
from tests.api.conftest import OTHER, OWN, auth, make_keys
from tests.conftest import BUSINESS_START
from tests.factories import VISA, card, org_with_method
from worker import build_worker

# No 5xx, and every answer as documented: its status, content type, headers and body. (Not schemathesis' "valid
# data accepted" check: a well-formed request may still name an unknown cursor, or an org this key may not see.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CHECKS_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)


class TemporalThread(threading.Thread):
    """A time-skipping server, a worker and the BillingClient, on an event loop of their own."""

    def __init__(self, db: Database, smtp) -> None:
        super().__init__(name="schema-temporal", daemon=True)
        self.db, self.smtp = db, smtp
        self.ready = threading.Event()
        self.billing: BillingClient | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=binary("temporal-test-server"), data_converter=pydantic_data_converter)
        except BaseException as err:  # noqa: BLE001 - reported to the test, which fails with it
            self.error = err
            self.ready.set()
            return
        try:
            await register_search_attributes(env.client)
            clock = await SimulatedClock.starting_at(env, BUSINESS_START)
            gateway = SandboxGateway(self.db)
            self.billing = BillingClient(clock.client(), self.db, gateway, clock=clock.now, task_queue="schema")
            async with build_worker(clock.client(), self.db, gateway, self.smtp, task_queue="schema"):
                self.ready.set()
                await self._stopping.wait()
        finally:
            await env.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory, smtp_server) -> Iterator[tuple[object, dict[str, str]]]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('schema') / 'store.db'}")
    SQLModel.metadata.create_all(db.engine)
    gateway = SandboxGateway(db)
    created = datetime(2026, 10, 1, tzinfo=timezone.utc)
    for org in (OWN, OTHER):
        org_with_method(db, gateway, card(VISA), org_id=org, created=created)
    with db.session() as s:
        for period, status in (("2026-10", "PAID"), ("2026-11", "FREE")):
            invoice = Invoice(key=f"{OWN}:{period}:cloud", org_id=OWN, kind="cloud", period=period, status=status,
                              currency="USD", usage=Decimal("5"), billed_usage=Decimal("5"), tax=Decimal(0),
                              total=Decimal("5") if status == "PAID" else Decimal(0), amount_due=Decimal(0),
                              created_at=created)
            s.add(invoice)
            s.flush()
            invoice.number = f"INV-{period.replace('-', '')}-{invoice.id:06d}"
    keys = make_keys(db)
    temporal = TemporalThread(db, smtp_server[1])
    temporal.start()
    temporal.ready.wait(timeout=60)
    if temporal.error is not None or temporal.billing is None:
        raise RuntimeError(f"the time-skipping server did not start: {temporal.error!r}")
    try:
        APP.state.context.billing = temporal.billing
        yield APP, {"owner": keys[ApiRole.ORGANIZATION_OWNER],
                                             "operator": keys[ApiRole.OPERATOR]}
    finally:
        temporal.stop()
        db.dispose()


# The app exists at import, for schemathesis to read its document and generate the tests; `served` gives it the
# BillingClient over the database and the Temporal server before any request is made.
APP = create_app(BillingClient(None, None, None))  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _as(case, who: str, keys: dict[str, str]) -> dict[str, str]:
    """The operator names acme (the one organization with invoices); an owner's key needs no `org`."""
    query = dict(case.query or {})
    query.pop("org", None)
    if who == "operator":
        query["org"] = OWN
    case.query = query
    return auth(keys[who])


@schema.parametrize()
@CHECKS_SETTINGS
def test_every_operation(case, served):
    _, keys = served
    original = dict(case.query or {})
    for who in ("owner", "operator"):
        case.query = dict(original)
        response = case.call_and_validate(headers=_as(case, who, keys), checks=CHECKS)
        assert response.status_code < 500


@pytest.mark.parametrize("who", ["owner", "operator"])
def test_stateful_over_the_links(served, who):
    app, keys = served
    machine_schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    links = sum(len(response.get("links", {})) for path in machine_schema.raw_schema["paths"].values()
                for operation in path.values() for response in operation.get("responses", {}).values())
    assert links >= 10  # the actions and the settlement link to the invoice they answer about

    class Machine(machine_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": _as(case, who, keys)}

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(Machine, settings=settings(max_examples=8, stateful_step_count=4, deadline=None,
                                                         suppress_health_check=list(HealthCheck), database=None))
