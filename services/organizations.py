"""The organization as its members manage it (SPEC I1, A1-A3, D7): its details, members and their roles, the
billing profile and the billing contact, each with its audit trail. Reads and member changes live here; profile
and contact edits go through BillingClient (one implementation for the CLI, the simulator and the API)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing.emails import billing_recipients
from billing.profiles import BillingProfileIn, check_email
from billing.statuses import OrgStatus, Role
from contracts.outcomes import NothingToDo
from services.client import BillingClient, BillingError
from services.invoices import NotFound
from store.db import Database
from store.tables import BillingContactChange, BillingProfile, BillingProfileChange, Organization, OrgMember


class OrganizationView(BaseModel):
    id: str
    name: str
    status: OrgStatus  # D9: ACTIVE, SUSPENDED after 30 days overdue, LOCKED after 60
    created_at: datetime


class MemberRole(StrEnum):
    """The organization roles that receive billing alerts (A3) and hold billing rights (I2), by the seeds' names."""

    OWNER = "Organization Owner"
    BILLING_ADMIN = "Billing Admin"

    @property
    def stored(self) -> Role:
        return Role.ORG_OWNER if self is MemberRole.OWNER else Role.ORG_BILLING_ADMIN

    @classmethod
    def of(cls, role: str) -> MemberRole:
        return cls.OWNER if role == Role.ORG_OWNER else cls.BILLING_ADMIN


class Member(BaseModel):
    id: int
    email: str
    role: MemberRole


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str
    role: MemberRole

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value).lower()


class BillingProfileView(BaseModel):
    """A1-A3 as saved: the billing address, the tax ID (never on a US profile, A2) and the billing e-mail settings."""

    country: str
    state: str
    city: str
    address_line1: str
    address_line2: str | None
    postal_code: str
    company_name: str | None
    tax_id: str | None
    billing_email: str | None
    only_invoice_emails: bool
    updated_at: datetime


class ProfileSaved(BaseModel):
    profile: BillingProfileView
    changed: list[str]  # the fields this request changed; empty when the profile already was so


class ProfileChange(BaseModel):
    """One audited edit of the billing address or tax ID: who, when, each changed field's old and new value."""

    changed_by: str
    at: datetime
    changes: dict[str, tuple[Any, Any]]


class BillingContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    billing_email: str | None = None  # None or "": no billing e-mail, alerts go to Owners and Billing Admins
    only_invoice_emails: bool = False

    @field_validator("billing_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value) if value else None


class BillingContactView(BaseModel):
    billing_email: str | None
    only_invoice_emails: bool
    recipients: list[str]  # A3: who billing alerts go to under these settings


class ContactSaved(BaseModel):
    contact: BillingContactView
    changed: bool


class ContactChange(BaseModel):
    """D7: one audited change of the billing contact."""

    changed_by: str
    at: datetime
    old_billing_email: str | None
    new_billing_email: str | None
    old_only_invoice_emails: bool
    new_only_invoice_emails: bool


def organization(db: Database, org_id: str) -> OrganizationView:
    with db.session() as s:
        org = s.get(Organization, org_id)
    if org is None:
        raise NotFound(f"no organization {org_id!r}")
    return OrganizationView(id=org.id, name=org.name, status=OrgStatus(org.status), created_at=org.created_at)


def members(db: Database, org_id: str) -> list[Member]:
    with db.session() as s:
        rows = s.exec(select(OrgMember).where(OrgMember.org_id == org_id).order_by(OrgMember.id)).all()
    return [Member(id=row.id, email=row.email, role=MemberRole.of(row.role)) for row in rows]


def add_member(db: Database, org_id: str, member: MemberIn) -> Member:
    """Give a person an organization role; the same person with the same role twice is refused (409)."""
    try:
        with db.session() as s:
            row = OrgMember(org_id=org_id, email=member.email, role=member.role.stored)
            s.add(row)
            s.flush()
            created = Member(id=row.id, email=row.email, role=member.role)
    except IntegrityError:
        raise BillingError(f"{member.email} is already {member.role.value} of {org_id}", field="email") from None
    return created


def remove_member(db: Database, org_id: str, member_id: int) -> None:
    """Take a role away; the last Organization Owner stays (someone must be able to manage the organization)."""
    with db.session() as s:
        row = s.get(OrgMember, member_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"no member {member_id}")
        if row.role == Role.ORG_OWNER:
            owners = s.exec(select(OrgMember.id).where(OrgMember.org_id == org_id,
                                                       OrgMember.role == Role.ORG_OWNER)).all()
            if len(owners) <= 1:
                raise BillingError(f"{row.email} is the last Organization Owner of {org_id}: add another owner "
                                   "first")
        s.delete(row)


def _profile_row(db: Database, org_id: str) -> BillingProfile:
    with db.session() as s:
        row = s.get(BillingProfile, org_id)
    if row is None:
        raise NotFound(f"organization {org_id!r} has no billing profile")
    return row


def billing_profile(db: Database, org_id: str) -> BillingProfileView:
    return BillingProfileView.model_validate(_profile_row(db, org_id), from_attributes=True)


async def save_billing_profile(billing: BillingClient, org_id: str, profile: BillingProfileIn,
                               changed_by: str) -> ProfileSaved:
    """A1-A2: replace the billing profile (validated on save by BillingProfileIn), audited by BillingClient. Saving
    what is already there changes nothing and says so (`changed` empty): a PUT may be repeated."""
    try:
        changed = await billing.set_billing_profile(org_id, profile, changed_by=changed_by)
    except NothingToDo:
        changed = []
    return ProfileSaved(profile=await asyncio.to_thread(billing_profile, billing.db, org_id), changed=changed)


def profile_changes(db: Database, org_id: str) -> list[ProfileChange]:
    with db.session() as s:
        rows = s.exec(select(BillingProfileChange).where(BillingProfileChange.org_id == org_id)
                      .order_by(BillingProfileChange.at.desc(), BillingProfileChange.id.desc())).all()
    return [ProfileChange(changed_by=row.changed_by, at=row.at,
                          changes={name: tuple(values) for name, values in json.loads(row.changes).items()})
            for row in rows]


def billing_contact(db: Database, org_id: str) -> BillingContactView:
    row = _profile_row(db, org_id)
    people = members(db, org_id)
    return BillingContactView(
        billing_email=row.billing_email, only_invoice_emails=row.only_invoice_emails,
        recipients=billing_recipients([m.email for m in people if m.role is MemberRole.OWNER],
                                      [m.email for m in people if m.role is MemberRole.BILLING_ADMIN],
                                      row.billing_email, row.only_invoice_emails))


async def save_billing_contact(billing: BillingClient, org_id: str, contact: BillingContactIn,
                               changed_by: str) -> ContactSaved:
    """A3/D7: set the billing e-mail and its "only invoice e-mails" flag, audited by BillingClient."""
    try:
        await billing.set_billing_contact(org_id, contact.billing_email, contact.only_invoice_emails,
                                          changed_by=changed_by)
        changed = True
    except NothingToDo:
        changed = False
    return ContactSaved(contact=await asyncio.to_thread(billing_contact, billing.db, org_id), changed=changed)


def contact_changes(db: Database, org_id: str) -> list[ContactChange]:
    with db.session() as s:
        rows = s.exec(select(BillingContactChange).where(BillingContactChange.org_id == org_id)
                      .order_by(BillingContactChange.at.desc(), BillingContactChange.id.desc())).all()
    return [ContactChange.model_validate(row, from_attributes=True) for row in rows]
