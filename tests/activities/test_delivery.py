"""The outbox (SPEC I6): events are written in the state change's transaction, once per change, and the activity
that published them starts their deliveries on every path out of it, a retry included."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from activities.delivery import EventPublisher, dispatches_events, publish
from contracts.delivery import DeliveryInput, EventType
from services import events
from store.gateway import SandboxGateway
from store.tables import EventDelivery
from tests.factories import AT, org_with_method

AT_CHANGE = datetime(2027, 2, 3, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def acme(db):
    org_with_method(db, SandboxGateway(db), None)
    return db


def deliveries(db) -> list[EventDelivery]:
    with db.session() as s:
        return list(s.exec(select(EventDelivery).order_by(EventDelivery.endpoint_id)))


def change(db, fail: bool = False) -> None:
    with db.session() as s:
        publish(s.connection(), event_type=EventType.INVOICE_PAID, org_id="acme", subject="invoice:7",
                data={"invoice": "INV-7", "total": Decimal("1.50")}, at=AT_CHANGE)
        if fail:
            raise RuntimeError("the state change failed")


def test_an_event_is_written_only_with_its_state_change_and_once_per_subscribed_endpoint(acme):
    wanted = events.create_endpoint(acme, "acme", events.EndpointIn(url="https://a.example/h"), AT)
    events.create_endpoint(acme, "acme", events.EndpointIn(url="https://b.example/h",
                                                           event_types=[EventType.PAYMENT_FAILED]), AT)
    with pytest.raises(RuntimeError):
        change(acme, fail=True)
    assert deliveries(acme) == []  # rolled back with the change: no event for what did not happen
    change(acme)
    change(acme)  # the same change recorded again (a retried activity) publishes nothing more
    [row] = deliveries(acme)
    assert (row.endpoint_id, row.event_type, row.status, row.created_at) == (wanted.id, "invoice.paid", "pending",
                                                                             AT_CHANGE)
    assert '"total":"1.50"' in row.payload


class FakePublisher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def dispatch_since(self, org_id, since) -> None:
        self.calls.append((org_id, since))


class Request:
    org_id, at = "acme", AT_CHANGE


class Emitting:
    def __init__(self, fail_first: bool) -> None:
        self.events, self.fail_first = FakePublisher(), fail_first

    @dispatches_events(lambda self, request: request.org_id)
    def record(self, request: Request) -> str:
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("the worker lost its connection after committing")
        return "done"


def test_the_deliveries_are_started_after_the_activity_returns_and_again_on_its_retry():
    activity = Emitting(fail_first=True)
    with pytest.raises(ConnectionError):
        activity.record(Request())
    assert activity.events.calls == []  # nothing started: Temporal retries the activity
    assert activity.record(Request()) == "done"
    assert activity.events.calls == [("acme", AT_CHANGE)]  # what the first run published is started now


async def test_the_publisher_starts_each_pending_delivery_by_its_business_key(acme):
    events.create_endpoint(acme, "acme", events.EndpointIn(url="https://a.example/h"), AT)
    change(acme)
    started: list[DeliveryInput] = []

    class Client:
        pass

    publisher = EventPublisher(acme, Client(), "q")  # type: ignore[arg-type]

    async def start(found: list[DeliveryInput]) -> int:
        started.extend(found)
        return len(found)

    publisher.start = start  # type: ignore[method-assign]
    import asyncio
    await asyncio.to_thread(publisher.dispatch_since, "acme", AT_CHANGE)
    await asyncio.to_thread(publisher.dispatch_since, "globex", AT_CHANGE)
    [row] = deliveries(acme)
    assert [(d.delivery_id, d.event_id, d.endpoint_id) for d in started] == [(row.id, row.event_id, row.endpoint_id)]
