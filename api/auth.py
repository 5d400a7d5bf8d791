"""Authentication and scoping (SPEC I2): every request carries an API key; a key never sees another
organization (404, as if it did not exist); a role that may not do a thing gets 403."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext, context
from api.problems import ApiProblem, not_found
from billing.permissions import Access, grants
from services.apikeys import Principal, authenticate
from store.tables import Organization

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bk_…` "
                                                   "(`billing api-key create`)")


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                    ctx: Annotated[ApiContext, Depends(context)]) -> Principal:
    if credentials is None:
        raise ApiProblem(401, "Unauthorized", "give an API key: Authorization: Bearer <key>",
                         headers={"WWW-Authenticate": "Bearer"})
    secret = credentials.credentials
    found = ctx.recent_keys.get(secret)
    if found is None:
        found = await asyncio.to_thread(authenticate, ctx.db, secret)
        if found is not None:
            ctx.recent_keys.put(secret, found)
    if found is None:
        raise ApiProblem(401, "Unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


def require(caller: Principal, access: Access) -> None:
    if not grants(caller.role, access):
        raise ApiProblem(403, "Forbidden", f"a {caller.role.title} key may not {access.value}"
                         + (" (that needs Organization Owner or Billing Admin)"
                            if access is Access.CHANGE_BILLING else ""))


async def organization(caller: Caller, ctx: Annotated[ApiContext, Depends(context)],
                       org: Annotated[str | None, Query(description="operator keys only: the organization to act "
                                                                    "on", max_length=64)] = None) -> str:
    """The organization a request acts on: the key's own, or (operator keys) the `org` query parameter.
    Another organization's, or one that does not exist, is 404 either way (I2)."""
    if caller.org_id is not None:
        if org is not None and org != caller.org_id:
            raise not_found(f"no organization {org!r}")
        return caller.org_id
    if org is None:
        raise ApiProblem(422, "Unprocessable Content", "an operator key names the organization: ?org=<id>",
                         errors=[{"field": "query.org", "message": "required with an operator key"}])

    def exists() -> bool:
        with ctx.db.session() as s:
            return s.get(Organization, org) is not None

    if not await asyncio.to_thread(exists):
        raise not_found(f"no organization {org!r}")
    return org


OrgId = Annotated[str, Depends(organization)]


def needs(access: Access):
    """A dependency refusing a key whose role lacks `access` (403), after authenticating it (401) and scoping the
    request to its organization (404 for another's: that answer comes first, whatever the role)."""
    async def check(caller: Caller, org: OrgId) -> Principal:
        require(caller, access)
        return caller
    return Depends(check)


def operator_only():
    """Operator endpoints (month-end, settling one organization): operator keys only (403 for the others)."""
    async def check(caller: Caller) -> Principal:
        require(caller, Access.OPERATE)
        return caller
    return Depends(check)
