"""Signing in to the pages (SPEC G5, I2): a member asks for a one-time link, e-mailed to them; the link expires and
works once; redeeming it opens a browser session. Links and sessions are random 256-bit secrets kept as their
SHA-256 only, like API keys: the database never holds one that works."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage as MimeMessage

import aiosmtplib
from sqlmodel import select, update

from activities.email import SmtpSettings
from billing.permissions import ApiRole
from billing.statuses import Role
from store.db import Database
from store.tables import EmailMessage, Organization, OrgMember, PageSession, SigninToken

LINK_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)

# I2: the seeds' organization roles as the pages act with them (members are Owners or Billing Admins).
MEMBER_ROLES = {Role.ORG_OWNER: ApiRole.ORGANIZATION_OWNER, Role.ORG_BILLING_ADMIN: ApiRole.BILLING_ADMIN}
_RANK = (ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN)


class SigninRefused(Exception):
    """A sign-in link that is unknown, already used or expired; the message says which, for the member."""


@dataclass(frozen=True, slots=True)
class Member:
    org_id: str
    org_name: str
    email: str
    role: ApiRole


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def member(db: Database, org_id: str, email: str) -> Member | None:
    """The member with this e-mail (case-insensitive) and the strongest of their roles; None for anyone else."""
    email = email.strip().lower()
    with db.session() as s:
        org = s.get(Organization, org_id)
        if org is None:
            return None
        rows = s.exec(select(OrgMember).where(OrgMember.org_id == org_id)).all()
    roles = {MEMBER_ROLES[Role(r.role)] for r in rows if r.email.lower() == email and r.role in MEMBER_ROLES}
    if not roles:
        return None
    return Member(org_id=org_id, org_name=org.name, email=email, role=min(roles, key=_RANK.index))


def issue_link_token(db: Database, org_id: str, email: str, now: datetime, ttl: timedelta = LINK_TTL) -> str | None:
    """A one-time sign-in token for a member (None for anyone else: the caller answers the same either way)."""
    found = member(db, org_id, email)
    if found is None:
        return None
    token = "sl_" + secrets.token_urlsafe(32)
    with db.session() as s:
        s.add(SigninToken(token_hash=_hash(token), org_id=org_id, email=found.email, created_at=now,
                          expires_at=now + ttl))
    return token


def _record_and_compose(db: Database, org_id: str, email: str, link: str, token: str, now: datetime,
                        ttl: timedelta, sender: str) -> tuple[int, MimeMessage]:
    minutes = int(ttl.total_seconds() // 60)
    subject = "Your sign-in link to Billing"
    body = ("Sign in to the billing pages of {org} with this link. It works once and expires in {minutes} "
            "minutes:\n\n{link}\n\nIf you did not ask for it, ignore this message.\n")
    with db.session() as s:
        # The outbox keeps the message with the link masked: a working link exists only in the member's mailbox.
        row = EmailMessage(key=f"signin:{_hash(token)[:32]}", org_id=org_id, kind="signin_link",
                           recipients=json.dumps([email]), subject=subject,
                           body=body.format(org=org_id, minutes=minutes, link=link.replace(token, "sl_…")),
                           created_at=now)
        s.add(row)
        s.flush()
        message_id = row.id
    mime = MimeMessage()
    mime["From"], mime["To"], mime["Subject"] = sender, email, subject
    mime["Message-ID"] = f"<signin.{message_id}@billing>"
    mime.set_content(body.format(org=org_id, minutes=minutes, link=link))
    return message_id, mime


def _mark(db: Database, message_id: int, error: str | None, at: datetime | None) -> None:
    with db.session() as s:
        row = s.get(EmailMessage, message_id)
        row.attempts += 1
        row.last_error, row.delivered_at = error, at
        s.add(row)


async def send_link(db: Database, smtp: SmtpSettings, org_id: str, email: str, link_for, now: datetime,
                    ttl: timedelta = LINK_TTL) -> bool:
    """E-mail a member their one-time link (`link_for(token)` builds its URL), through the outbox and SMTP like
    every message the product sends. Returns whether a link was sent; nobody is told which e-mails are members."""
    token = await asyncio.to_thread(issue_link_token, db, org_id, email, now, ttl)
    if token is None:
        return False
    message_id, mime = await asyncio.to_thread(_record_and_compose, db, org_id, email.strip().lower(),
                                               link_for(token), token, now, ttl, smtp.sender)
    try:
        await aiosmtplib.send(mime, hostname=smtp.host, port=smtp.port, timeout=smtp.timeout_seconds)
    except (aiosmtplib.SMTPException, OSError) as err:
        await asyncio.to_thread(_mark, db, message_id, str(err)[:500], None)
        raise
    await asyncio.to_thread(_mark, db, message_id, None, now)
    return True


def redeem(db: Database, token: str, now: datetime, session_ttl: timedelta = SESSION_TTL) -> tuple[str, Member]:
    """Use a sign-in token (once: a conditional update wins for exactly one request) and open a session.
    Returns the session's secret id (for the cookie) and the member."""
    digest = _hash(token)
    with db.session() as s:
        row = s.get(SigninToken, digest)
        if row is None:
            raise SigninRefused("this sign-in link is not valid: ask for a new one")
        claimed = s.exec(update(SigninToken).where(SigninToken.token_hash == digest, SigninToken.used_at.is_(None),
                                                   SigninToken.expires_at > now).values(used_at=now))
        if claimed.rowcount != 1:
            used = row.used_at is not None
            raise SigninRefused("this sign-in link has already been used: ask for a new one" if used
                                else "this sign-in link has expired: ask for a new one")
        org_id, email = row.org_id, row.email
    found = member(db, org_id, email)
    if found is None:
        raise SigninRefused("you are no longer a member of this organization")
    session_id = "ps_" + secrets.token_urlsafe(32)
    with db.session() as s:
        s.add(PageSession(id_hash=_hash(session_id), org_id=org_id, email=found.email, role=found.role,
                          created_at=now, expires_at=now + session_ttl))
    return session_id, found


def session_member(db: Database, session_id: str, now: datetime) -> Member | None:
    """The member a live session stands for, with their role as it is now (a member removed since is out)."""
    with db.session() as s:
        row = s.get(PageSession, _hash(session_id))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return member(db, row.org_id, row.email)


def end_session(db: Database, session_id: str, now: datetime) -> None:
    with db.session() as s:
        row = s.get(PageSession, _hash(session_id))
        if row is not None and row.ended_at is None:
            row.ended_at = now
            s.add(row)
