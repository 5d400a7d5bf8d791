"""The roles x organizations table (SPEC I2, B2): EVERY route of the app x every ApiRole x the key's own
organization and another one, plus no key at all, asserting the answer.

The expectations are the ROUTE_ACCESS dicts of every tests/api/access_table*.py module, keyed by (method, path
template); a route of the app without an entry (or an entry without a route) fails the first test. A module may
also define ROUTE_REQUESTS: {(method, path): callable(db) -> {"path": {...}, "json": ..., "params": {...}}}, the
request to send for a route, e.g. a valid body where the role check comes after validation (B2 needs the project
from the body) or a path parameter naming a resource of organization `acme` (`{number}` is acme's FREE invoice by
default). Requests without one send `{}` as the body of a POST/PUT/PATCH.

Answers: allowed -> not 401/403/404 and not 5xx (e.g. 200, 409 nothing to do, 422 for the empty body); not allowed
-> 403; a key of another organization naming acme (path and ?org=acme) -> 404; no key -> 401. "public" routes
answer the same with or without a key, never a 5xx. The app runs over a time-skipping Temporal server with a
worker, so a route that reaches a workflow answers as it would in production."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from billing.permissions import PROJECT_READ_ONLY, Access, ApiRole, grants
from services import apikeys
from services.client import BillingClient
from store.gateway import SandboxGateway
from store.tables import EventDelivery, Invoice, WebhookEndpoint
from tests.api.conftest import OTHER, OWN, PROJECT, auth, make_keys
from tests.api.workflow_api import workflow_api

VALUES = {"operator", "b2", "public"}
# Operator routes that name no organization (the others scope to one first: another organization's is 404, I2).
ORGANIZATION_FREE = ("/v1/operator/", "/codec/", "/metrics")


def _tables() -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Callable]]:
    access: dict[tuple[str, str], Any] = {}
    requests: dict[tuple[str, str], Callable] = {}
    for path in sorted(Path(__file__).parent.glob("access_table*.py")):
        module = importlib.import_module(f"tests.api.{path.stem}")
        for key, value in module.ROUTE_ACCESS.items():
            assert key not in access, f"{key} is in two access tables"
            access[key] = value
        requests.update(getattr(module, "ROUTE_REQUESTS", {}))
    return access, requests


ROUTE_ACCESS, ROUTE_REQUESTS = _tables()


def app_routes() -> list[tuple[str, str]]:
    """Every API route of the app, included routers' too (FastAPI includes them lazily: iter_route_contexts)."""
    app = create_app(BillingClient(None, None, None))  # type: ignore[arg-type]
    # The pages (/orgs/…) answer to a member's signed session and a CSRF token, not to API keys: tests/pages/.
    return sorted((method, context.path) for context in iter_route_contexts(app.routes)
                  if isinstance(context.route, APIRoute) and not context.path.startswith("/orgs/")
                  for method in context.methods if method != "HEAD")


def test_every_route_has_an_entry_and_every_entry_a_route():
    routes = set(app_routes())
    assert sorted(routes - set(ROUTE_ACCESS)) == [], "routes without an entry in tests/api/access_table*.py"
    assert sorted(set(ROUTE_ACCESS) - routes) == [], "entries of tests/api/access_table*.py without a route"
    bad = {k: v for k, v in ROUTE_ACCESS.items() if not isinstance(v, Access) and v not in VALUES}
    assert bad == {}


def b2_allows(role: ApiRole, method: str) -> bool:
    """SPEC B2 for keys (billing.permissions.caller_for_key): any project role views its project's cases, all but
    Project Read Only raise them; an Organization Owner (and the operator, acting as one) does both."""
    if role in (ApiRole.ORGANIZATION_OWNER, ApiRole.OPERATOR):
        return True
    if not role.is_project_role:
        return False
    return method == "GET" or role.title != PROJECT_READ_ONLY


def allowed(access: Any, role: ApiRole, method: str) -> bool:
    if access == "operator":
        return role is ApiRole.OPERATOR
    if access == "b2":
        return b2_allows(role, method)
    return grants(role, access)


def seed(db) -> dict[str, str]:
    """A FREE invoice of acme (every action on it is a clean 'nothing to do') and globex's keys of every role."""
    with db.session() as s:
        invoice = Invoice(key=f"{OWN}:2027-01:cloud", org_id=OWN, kind="cloud", period="2027-01", status="FREE",
                          currency="USD", usage=Decimal(0), billed_usage=Decimal(0), tax=Decimal(0),
                          total=Decimal(0), amount_due=Decimal(0), created_at=datetime(2027, 2, 1, tzinfo=timezone.utc))
        s.add(invoice)
        s.flush()
        invoice.number = f"INV-202701-{invoice.id:06d}"
        number = invoice.number
    return {"number": number}


def other_keys(db) -> dict[ApiRole, str]:
    return {role: apikeys.create_key(db, role, org_id=OTHER, project=PROJECT if role.is_project_role else None,
                                     name=f"globex {role.value}").secret
            for role in ApiRole if role is not ApiRole.OPERATOR}


def request_for(method: str, path: str, db, defaults: dict[str, str]) -> dict[str, Any]:
    made = ROUTE_REQUESTS[(method, path)](db) if (method, path) in ROUTE_REQUESTS else {}
    params = {**defaults, **made.get("path", {})}
    url = path.format(**{name: params.get(name, "x") for name in _names(path)})
    body = made.get("json", {} if method in ("POST", "PUT", "PATCH") else None)
    return {"url": url, "json": body, "params": made.get("params", {})}


def _names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


@pytest.mark.asyncio
async def test_roles_by_organization(time_skipping_env, two_orgs, smtp, task_queue):
    db = two_orgs
    own, other = make_keys(db), other_keys(db)
    defaults = seed(db)
    failures: list[str] = []
    async with workflow_api(time_skipping_env, db, smtp, task_queue, SandboxGateway(db)) as world:
        http = world.http
        # A resource of acme behind every path parameter: a Flex Consulting checkout for {checkout_id} (B3).
        created = await http.post("/v1/consulting/checkouts", json={"level": "standard", "price": "100.00"},
                                  headers=auth(own[ApiRole.ORGANIZATION_OWNER]))
        assert created.status_code == 201, created.text
        defaults["checkout_id"] = created.json()["id"]
        # A webhook endpoint of acme and a failed delivery to it, for {endpoint_id} and {delivery_id} (I6).
        with db.session() as s:
            s.add(WebhookEndpoint(id="we_roles", org_id=OWN, url="http://127.0.0.1:9/events",
                                  secret="whsec_" + "A" * 32, created_at=datetime(2027, 2, 1, tzinfo=timezone.utc)))
            s.flush()
            s.add(EventDelivery(id="dl_roles", event_id="evt_roles", event_type="invoice.paid", org_id=OWN,
                                endpoint_id="we_roles", payload="{}", status="failed",
                                created_at=datetime(2027, 2, 1, tzinfo=timezone.utc)))
        defaults.update(endpoint_id="we_roles", delivery_id="dl_roles")

        async def send(method: str, request: dict[str, Any], key: str | None, org: str | None) -> int:
            params = {**request["params"], **({"org": org} if org else {})}
            response = await http.request(method, request["url"], json=request["json"], params=params,
                                          headers=auth(key) if key else {})
            return response.status_code

        for (method, path), access in sorted(ROUTE_ACCESS.items(), key=lambda item: item[0]):
            request = request_for(method, path, db, defaults)
            route = f"{method} {path}"
            anonymous = await send(method, request, None, None)
            if access == "public":
                for role in ApiRole:
                    status = await send(method, request, own[role], None)
                    if status >= 500 or status != anonymous:
                        failures.append(f"{route} public: {role} got {status}, without a key {anonymous}")
                continue
            if anonymous != 401:
                failures.append(f"{route}: without a key {anonymous}, expected 401")
            for role in ApiRole:
                # the key's own organization (an operator key names it)
                status = await send(method, request, own[role], OWN if role is ApiRole.OPERATOR else None)
                if allowed(access, role, method):
                    if status in (401, 403, 404) or status >= 500:
                        failures.append(f"{route}: {role} of {OWN} got {status}, expected it allowed")
                elif status != 403:
                    failures.append(f"{route}: {role} of {OWN} got {status}, expected 403")
                if role is ApiRole.OPERATOR:
                    continue
                # a key of another organization asking for acme's
                status = await send(method, request, other[role], OWN)
                expected = 403 if access == "operator" and path.startswith(ORGANIZATION_FREE) else 404
                if status != expected:
                    failures.append(f"{route}: {role} of {OTHER} got {status}, expected {expected}")
    assert failures == [], "\n".join(failures)
