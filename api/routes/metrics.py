"""GET /metrics (SPEC J2): the SDK's own metrics (workflow and activity latency, task slots: the worker's
Prometheus exporter, `BILLING_SDK_METRICS_ADDRESS`) and the business's (services/metrics.py) on one endpoint.
Revenue figures are not public: an operator key is required (Prometheus: `authorization: credentials_file`)."""

from __future__ import annotations

import asyncio
import os

import httpx
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import operator_only
from api.context import context_of
from services.metrics import registry

router = APIRouter(include_in_schema=False)


async def _sdk_metrics() -> str:
    address = os.environ.get("BILLING_SDK_METRICS_ADDRESS")
    if not address:
        return ""
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(f"http://{address}/metrics")
        response.raise_for_status()
        return response.text
    except httpx.HTTPError as err:
        return f"# the SDK's metrics at {address} did not answer: {type(err).__name__}\n"


@router.get("/metrics", dependencies=[operator_only()])
async def metrics(request: Request) -> Response:
    db = context_of(request).db
    business = await asyncio.to_thread(generate_latest, registry(db))
    sdk = await _sdk_metrics()
    return Response(sdk + ("\n" if sdk and not sdk.endswith("\n") else "") + business.decode(),
                    media_type=CONTENT_TYPE_LATEST)
