"""The codec server (SPEC J1): the Temporal UI and CLI send encrypted payloads here and read them decrypted, so
operators see inputs and results while the histories hold ciphertext. Protocol: POST `/codec/decode` and
`/codec/encode` (also `/codec/{namespace}/…`), a protobuf-JSON `{"payloads": [...]}` body and answer.

Authenticated: an operator API key (`--codec-auth "Bearer bk_…"` for the CLI). The embedded default's UI has no
sign-in to pass a token with, so with `BILLING_CODEC_TRUST_LOCAL_UI=1` (set by `make run` only) a request from a
loopback address carrying the UI's own Origin is accepted too. CORS allows the UI's origin only, preflight
included (the browser calls this directly)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from api.context import context_of
from api.problems import ApiProblem
from contracts.codec import UnknownKey
from services.apikeys import authenticate

router = APIRouter(prefix="/codec", tags=["operators"], include_in_schema=False)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def ui_origins() -> set[str]:
    return {o.strip() for o in os.environ.get("BILLING_CODEC_CORS_ORIGINS",
                                              "http://127.0.0.1:8233,http://localhost:8233").split(",") if o.strip()}


def _cors(request: Request, response: Response) -> None:
    origin = request.headers.get("origin")
    if origin in ui_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Namespace, Authorization"
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"


async def _authorize(request: Request, authorization: str | None) -> None:
    """An operator key (a key of another role: 403), or the embedded UI when trusted; otherwise 401."""
    if authorization and authorization.lower().startswith("bearer "):
        found = await asyncio.to_thread(authenticate, context_of(request).db, authorization[7:].strip())
        if found is not None and not found.is_operator:
            raise ApiProblem(403, "Forbidden", f"a {found.role.title} key may not decode payloads: operator keys only")
        if found is not None:
            return
    client = request.client.host if request.client else ""
    if (os.environ.get("BILLING_CODEC_TRUST_LOCAL_UI") == "1" and client in LOOPBACK
            and request.headers.get("origin") in ui_origins()):
        return
    raise ApiProblem(401, "Unauthorized", "the codec server needs an operator API key",
                     headers={"WWW-Authenticate": "Bearer"})


@router.options("/decode")
@router.options("/encode")
@router.options("/{namespace}/decode")
@router.options("/{namespace}/encode")
async def preflight(request: Request, namespace: str | None = None) -> Response:
    response = Response(status_code=204)
    _cors(request, response)
    return response


async def _apply(request: Request, direction: str, authorization: str | None) -> Response:
    await _authorize(request, authorization)
    codec = context_of(request).codec
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
        out = [codec.decode_one(p) if direction == "decode" else codec.encode_one(p) for p in payloads.payloads]
    except (json_format.ParseError, DecodeError, ValueError) as err:
        detail = str(err) if isinstance(err, UnknownKey) else "the body is not protobuf-JSON Payloads"
        raise ApiProblem(422, "Unprocessable Content", detail) from None
    except Exception:  # a tampered ciphertext fails authentication (InvalidTag): say so, show nothing of it
        raise ApiProblem(422, "Unprocessable Content", "a payload could not be decrypted") from None
    response = Response(json_format.MessageToJson(Payloads(payloads=out)), media_type="application/json")
    _cors(request, response)
    return response


@router.post("/decode")
@router.post("/{namespace}/decode")
async def decode(request: Request, authorization: Annotated[str | None, Header()] = None,
                 namespace: str | None = None) -> Response:
    return await _apply(request, "decode", authorization)


@router.post("/encode")
@router.post("/{namespace}/encode")
async def encode(request: Request, authorization: Annotated[str | None, Header()] = None,
                 namespace: str | None = None) -> Response:
    return await _apply(request, "encode", authorization)
