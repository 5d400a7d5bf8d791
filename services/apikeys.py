"""API keys (SPEC I2): created with a role, shown once, kept as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import select

from billing.permissions import ApiRole
from store.db import Database
from store.tables import ApiKey, Organization

KEY_PREFIX = "bk_"  # recognisable in a leaked-secret scan


class ApiKeyError(Exception):
    """A key could not be created or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a key's organization (None for an operator key), role and project."""

    key_id: str
    name: str
    org_id: str | None
    role: ApiRole
    project: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is ApiRole.OPERATOR


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: str
    secret: str  # the only time the key itself exists outside the caller's hands
    org_id: str | None
    role: ApiRole
    project: str | None
    name: str


def hash_secret(secret: str) -> str:
    """Keys are random 256-bit secrets, so a plain SHA-256 (no salt, no stretching) is enough to keep them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Database, role: ApiRole, org_id: str | None = None, project: str | None = None,
               name: str | None = None, now: datetime | None = None) -> CreatedKey:
    role = ApiRole(role)
    if role is ApiRole.OPERATOR:
        if org_id is not None:
            raise ApiKeyError("an operator key is not bound to an organization: leave out --org")
    elif org_id is None:
        raise ApiKeyError(f"a {role.title} key belongs to an organization: give --org")
    if role.is_project_role and not project:
        raise ApiKeyError(f"a {role.title} key is for one project: give --project")
    if project and not role.is_project_role:
        raise ApiKeyError(f"a {role.title} key is organization-wide: leave out --project")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id="key_" + secrets.token_hex(8), secret_hash=hash_secret(secret), org_id=org_id, role=role,
                 project=project, name=name or f"{role.title} key", created_at=now or datetime.now(timezone.utc))
    with db.session() as s:
        if org_id is not None and s.get(Organization, org_id) is None:
            raise ApiKeyError(f"no organization {org_id!r}")
        s.add(key)
    return CreatedKey(id=key.id, secret=secret, org_id=org_id, role=role, project=project, name=key.name)


def revoke_key(db: Database, key_id: str, now: datetime | None = None) -> None:
    with db.session() as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise ApiKeyError(f"no API key {key_id!r}")
        if key.revoked_at is None:
            key.revoked_at = now or datetime.now(timezone.utc)
            s.add(key)


def list_keys(db: Database, org_id: str | None = None) -> list[ApiKey]:
    with db.session() as s:
        query = select(ApiKey).order_by(ApiKey.created_at)
        if org_id is not None:
            query = query.where(ApiKey.org_id == org_id)
        return list(s.exec(query))


# One indexed lookup by the hash, as Core (no ORM object): every request of the API runs it (I2).
_KEYS = ApiKey.__table__
_AUTHENTICATE = sa_select(_KEYS.c.id, _KEYS.c.name, _KEYS.c.org_id, _KEYS.c.role, _KEYS.c.project).where(
    _KEYS.c.secret_hash == bindparam("secret_hash"), _KEYS.c.revoked_at.is_(None))


class RecentKeys:
    """Keys found valid in the last `seconds` (I2), so that a burst of requests with one key asks the database once
    per `seconds`, not once per request: a revoked key stops working within `seconds` of its revocation (the CLI
    revokes from another process, so nothing here can hear of it sooner). Only valid keys are kept, so a key
    created a moment ago works at once and an unknown one is always asked of the database. `seconds=0`: every
    request asks the database."""

    def __init__(self, seconds: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._found: dict[str, tuple[float, Principal]] = {}

    def get(self, secret: str) -> Principal | None:
        if self.seconds <= 0:
            return None
        found = self._found.get(hash_secret(secret))
        if found is None or self.clock() - found[0] >= self.seconds:
            return None
        return found[1]

    def put(self, secret: str, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        if len(self._found) >= self.size:
            self._found.clear()  # at most `size` keys are remembered; forgetting only costs a query
        self._found[hash_secret(secret)] = (self.clock(), principal)


def authenticate(db: Database, secret: str) -> Principal | None:
    """The principal a presented key stands for; None for an unknown or revoked key."""
    if not secret.startswith(KEY_PREFIX):
        return None
    with db.engine.connect() as conn:
        key = conn.execute(_AUTHENTICATE, {"secret_hash": hash_secret(secret)}).first()
    if key is None:
        return None
    return Principal(key_id=key.id, name=key.name, org_id=key.org_id, role=ApiRole(key.role), project=key.project)
