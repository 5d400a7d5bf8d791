"""Two guards in front of every route: a size limit on request bodies (413), and Idempotency-Key (SPEC I3):
the same key with the same request answers the first response again; with another request, 409."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM, Problem
from store.db import Database
from store.tables import IdempotencyRecord

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
UNSCOPED_PATHS = ("/v1/webhooks/",)  # signed by the sender and deduplicated by their own id (I5)


class BodyTooLarge(Exception):
    pass


async def _send_problem(send: Send, problem: Problem, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = problem.model_dump_json(exclude_none=True).encode()
    await send({"type": "http.response.start", "status": problem.status,
                "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # nothing more: wait like a quiet client would
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return receive


class GuardMiddleware:
    def __init__(self, app: ASGIApp, db: Callable[[], Database], max_body_bytes: int,
                 idempotency_hours: int, secret: bytes) -> None:
        self.app = app
        self.secret = secret
        self.db = db
        self.limit = max_body_bytes
        self.keep = timedelta(hours=idempotency_hours)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        too_large = Problem(title="Content Too Large", status=413,
                            detail=f"request bodies are limited to {self.limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_problem(send, too_large)
            return
        try:
            body = await read_body(receive, self.limit)
        except BodyTooLarge:
            await _send_problem(send, too_large)
            return
        except ConnectionError:
            return
        key = headers.get(HEADER)
        if key is None or scope["method"] != "POST" or scope["path"].startswith(UNSCOPED_PATHS):
            await self.app(scope, _replay(body), send)
            return
        await self._idempotent(scope, body, key, headers, send)

    async def _idempotent(self, scope: Scope, body: bytes, key_bytes: bytes, headers: dict[bytes, bytes],
                          send: Send) -> None:
        key = key_bytes.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(send, Problem(title="Unprocessable Content", status=422,
                                              detail=f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                                              errors=[{"field": "header.Idempotency-Key",
                                                       "message": f"1 to {MAX_KEY_LENGTH} characters"}]))
            return
        # Keys are per caller: the hash of the credentials presented (the route authenticates them).
        # Keyed hashes: a request body may hold a card number (POST /v1/payment-method), and an unkeyed hash of
        # one is reversible by trying every number (A6); the credentials likewise.
        caller = hmac.new(self.secret, headers.get(b"authorization", b""), hashlib.sha256).hexdigest()
        digest = hmac.new(self.secret, b"\n".join([scope["method"].encode(), scope["path"].encode(),
                                                   scope.get("query_string", b""), body]), hashlib.sha256).hexdigest()
        db = self.db()
        found = await asyncio.to_thread(self._reserve, db, caller, key, digest)
        if found is not None:
            if found.request_hash != digest:
                await _send_problem(send, Problem(
                    type="/problems/idempotency-key-reused", title="Conflict", status=409,
                    detail="this Idempotency-Key was used with another request; use a new key for a new request"))
            elif found.status_code is None:
                await _send_problem(send, Problem(
                    type="/problems/idempotency-key-in-use", title="Conflict", status=409,
                    detail="the first request with this Idempotency-Key is still being answered; retry shortly"),
                    [(b"retry-after", b"1")])
            else:
                replayed = found.body or b""
                await send({"type": "http.response.start", "status": found.status_code,
                            "headers": [(b"content-type", (found.content_type or "application/json").encode()),
                                        (b"content-length", str(len(replayed)).encode()),
                                        (b"idempotent-replayed", b"true")]})
                await send({"type": "http.response.body", "body": replayed})
            return

        status: int | None = None
        content_type: bytes | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay(body), capture)
        finally:
            keep = status is not None and status < 500 and status != 401
            await asyncio.to_thread(self._finish, db, caller, key, status if keep else None,
                                    content_type.decode("latin-1") if content_type else None, b"".join(chunks))

    def _reserve(self, db: Database, caller: str, key: str, digest: str) -> IdempotencyRecord | None:
        """Reserve the key for this request (None), or return the record of the request that holds it."""
        now = datetime.now(timezone.utc)
        found: IdempotencyRecord | None = None
        for _ in range(2):
            try:
                with db.session() as s:
                    s.add(IdempotencyRecord(scope=caller, key=key, request_hash=digest, created_at=now))
                return None
            except IntegrityError:
                with db.session() as s:
                    found = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.scope == caller,
                                                                   IdempotencyRecord.key == key)).first()
                    if found is not None and found.created_at < now - self.keep:
                        s.delete(found)  # expired: the key is free again
                        continue
                if found is not None:
                    return found
        return found

    def _finish(self, db: Database, caller: str, key: str, status: int | None, content_type: str | None,
                body: bytes) -> None:
        with db.session() as s:
            record = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.scope == caller,
                                                            IdempotencyRecord.key == key)).first()
            if record is None:
                return
            if status is None:  # failed on our side, or unauthenticated: a retry with the key may run again
                s.delete(record)
                return
            record.status_code, record.content_type, record.body = status, content_type, body
            s.add(record)
