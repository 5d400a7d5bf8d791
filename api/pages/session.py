"""Who is signed in, and forms that cannot be forged (SPEC G5, I2): a signed, HttpOnly, SameSite session cookie
naming a server-side session; a CSRF token in every form, bound to a per-browser cookie; page settings.

Sign-in links and sessions run on the wall clock, not the business clock: a link's 15 minutes are real minutes
even when a test or demo moves the billing date."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from fastapi import Request
from fastapi.responses import Response

from activities.email import SmtpSettings
from billing import config
from billing.permissions import Access, ApiRole, grants
from services import signin
from services.signin import Member

SESSION_COOKIE = "billing_session"
CSRF_COOKIE = "billing_csrf"
CSRF_FIELD = "csrf_token"


@dataclass
class PagesSettings:
    # Signs session and CSRF cookies; sessions themselves live in the database, so a new secret (a restart without
    # BILLING_SESSION_SECRET) only signs everyone out.
    secret: bytes = field(default_factory=lambda: (os.environ.get("BILLING_SESSION_SECRET") or "").encode()
                          or secrets.token_bytes(32))
    smtp: SmtpSettings = field(default_factory=lambda: SmtpSettings(host=config.smtp_host(),
                                                                    port=config.smtp_port()))
    link_ttl: timedelta = signin.LINK_TTL
    session_ttl: timedelta = signin.SESSION_TTL
    secure_cookies: bool = os.environ.get("BILLING_SECURE_COOKIES", "") == "1"  # behind HTTPS in production
    usage_page_size: int = 100  # G2 Usage Details lines per page


def settings(request: Request) -> PagesSettings:
    return request.app.state.pages


def wall_now() -> datetime:
    return datetime.now(timezone.utc)


def _sign(secret: bytes, value: str, purpose: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def signed(secret: bytes, value: str) -> str:
    return f"{value}.{_sign(secret, value, 'session')}"


def unsigned(secret: bytes, cookie: str | None) -> str | None:
    if not cookie or "." not in cookie:
        return None
    value, _, signature = cookie.rpartition(".")
    return value if hmac.compare_digest(signature, _sign(secret, value, "session")) else None


async def current_member(request: Request, org_id: str | None = None) -> Member | None:
    """The member signed in on this browser (for `org_id`, when given), or None."""
    pages = settings(request)
    session_id = unsigned(pages.secret, request.cookies.get(SESSION_COOKIE))
    if session_id is None:
        return None
    ctx = request.app.state.context
    found = await asyncio.to_thread(signin.session_member, ctx.db, session_id, wall_now())
    if found is None or (org_id is not None and found.org_id != org_id):
        return None
    return found


def may(member: Member, access: Access) -> bool:
    """I2: the member's role decides (billing changes need Organization Owner or Billing Admin)."""
    return grants(ApiRole(member.role), access)


def set_session(response: Response, pages: PagesSettings, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, signed(pages.secret, session_id), httponly=True, samesite="lax",
                        secure=pages.secure_cookies, path="/", max_age=int(pages.session_ttl.total_seconds()))


def clear_session(response: Response, pages: PagesSettings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=pages.secure_cookies)


def csrf_pair(request: Request) -> tuple[str, str, bool]:
    """(browser cookie value, the token forms carry, whether the cookie is new and must be set)."""
    pages = settings(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    new = not cookie or len(cookie) < 32
    if new:
        cookie = secrets.token_urlsafe(32)
    return cookie, _sign(pages.secret, cookie, "csrf"), new


def csrf_valid(request: Request, token: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not token:
        return False
    return hmac.compare_digest(token, _sign(settings(request).secret, cookie, "csrf"))


def set_csrf_cookie(response: Response, pages: PagesSettings, cookie: str) -> None:
    response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=pages.secure_cookies,
                        path="/")
