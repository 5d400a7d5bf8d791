"""What every route works with: the application services, the database, and the business date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from fastapi import Request

from contracts.codec import EncryptionCodec, load_keys
from services.apikeys import RecentKeys
from services.client import BillingClient
from store.db import Database


@dataclass
class ApiSettings:
    max_body_bytes: int = 16 * 1024 * 1024  # a 5,000-line usage batch is ~1.5 MB
    idempotency_hours: int = 24  # I3: how long a key's first response is kept
    webhook_tolerance_seconds: int = 300  # I5: a webhook older or newer than this is refused
    key_check_seconds: float = 2.0  # I2: a revoked API key stops working within this; 0 = checked on every request


@dataclass
class ApiContext:
    billing: BillingClient
    settings: ApiSettings = field(default_factory=ApiSettings)
    codec: EncryptionCodec = field(default_factory=lambda: EncryptionCodec(load_keys()))  # the codec server's (J1)
    recent_keys: RecentKeys = field(init=False)

    def __post_init__(self) -> None:
        self.recent_keys = RecentKeys(self.settings.key_check_seconds)

    @property
    def db(self) -> Database:
        return self.billing.db

    async def now(self) -> datetime:
        return (await self.billing.clock()).astimezone(timezone.utc)

    async def today(self) -> date:
        return (await self.now()).date()


def context_of(request: Request) -> ApiContext:
    return request.app.state.context


async def context(request: Request) -> ApiContext:
    """The dependency (`Depends(context)`): a coroutine, so that FastAPI calls it on the event loop; a plain function
    would cost a thread-pool round trip on every request. Outside a dependency, use `context_of`."""
    return request.app.state.context
