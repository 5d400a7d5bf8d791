"""The HTTP API's application: `create_app(billing)` for `make run`, the compose service and the tests."""

from __future__ import annotations

from fastapi import FastAPI

from api import problems
from api.context import ApiContext, ApiSettings
from api.middleware import GuardMiddleware
from api.problems import Problem
from api.pages import PagesSettings
from api.pages.routes import install as install_pages
from api.routes import (codec, consulting, credits, downloads, events, invoice_actions, invoices, metrics, operator,
                        organization, payment_methods, subscriptions, support, usage, webhooks)
from services.client import BillingClient

DESCRIPTION = """The billing engine's door (SPEC I1-I6).

* **Authentication**: every request carries an API key, `Authorization: Bearer bk_…`, created with
  `billing api-key create --org ORG --role ROLE` (shown once, stored hashed). A key sees its own organization
  only; anything of another answers 404. An operator key (`--role operator`) names the organization with `?org=`.
* **Idempotency**: every POST accepts `Idempotency-Key`; the same key with the same request answers the first
  response again (header `Idempotent-Replayed: true`) for 24 hours; with another request, 409.
* **Errors** are `application/problem+json` (RFC 9457); a 422 lists each offending field's path in `errors`.
* **Money** is a decimal string (`"12.34"`), never a float; amounts are in the currency next to them.
"""

ERROR_RESPONSES = {status: {"model": Problem, "content": {"application/problem+json": {}},
                            "description": title}
                   for status, title in ((400, "the body could not be read (not UTF-8 JSON)"),
                                         (401, "no API key, or an unknown or revoked one"),
                                         (403, "the key's role may not do this (I2)"),
                                         (404, "no such thing for this key's organization"),
                                         (409, "refused: a conflict with the current state, or an Idempotency-Key "
                                               "reused with another request"),
                                         (413, "the body is over the size limit"),
                                         (422, "invalid input: `errors` names each field"))}


def create_app(billing: BillingClient, settings: ApiSettings | None = None,
               pages_settings: PagesSettings | None = None) -> FastAPI:
    context = ApiContext(billing=billing, settings=settings or ApiSettings())
    app = FastAPI(title="Billing engine API", version="1.0.0", description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None, responses=ERROR_RESPONSES)
    app.state.context = context
    problems.install(app)
    app.add_middleware(GuardMiddleware, db=lambda: context.db, max_body_bytes=context.settings.max_body_bytes,
                       idempotency_hours=context.settings.idempotency_hours,
                       secret=context.codec.derive_key(b"idempotency request hash"))
    for module in (invoices, invoice_actions, downloads, usage, operator, organization, payment_methods,
                   subscriptions, credits, support, consulting, webhooks, events):
        app.include_router(module.router, prefix="/v1")
    app.include_router(codec.router)
    app.include_router(metrics.router)
    install_pages(app, pages_settings)  # G5: the customer's pages under /orgs/{org}/…

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
