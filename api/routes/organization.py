"""The organization (SPEC I1, I2, A1-A3, D7): its details, members, billing profile and billing contact, each
change audited with the API key's name as who made it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.auth import Caller, OrgId, needs
from api.context import ApiContext, context
from billing.permissions import Access
from billing.profiles import BillingProfileIn
from services import organizations
from services.organizations import (BillingContactIn, BillingContactView, BillingProfileView, ContactChange,
                                    ContactSaved, Member, MemberIn, OrganizationView, ProfileChange, ProfileSaved)

DB_INT_MAX = 2**31 - 1  # the ids' column type: a larger id names no member and is refused at the edge (422)

router = APIRouter(tags=["organization"])
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/organization", response_model=OrganizationView, operation_id="getOrganization",
            dependencies=[needs(Access.READ_BILLING)])
async def get_organization(org: OrgId, ctx: Ctx) -> OrganizationView:
    """The organization: name, status (D9: ACTIVE, SUSPENDED, LOCKED) and when it was created."""
    return await asyncio.to_thread(organizations.organization, ctx.db, org)


@router.get("/organization/members", response_model=list[Member], operation_id="listMembers",
            dependencies=[needs(Access.READ_BILLING)])
async def list_members(org: OrgId, ctx: Ctx) -> list[Member]:
    """Organization Owners and Billing Admins: who manages billing and receives its alerts (A3)."""
    return await asyncio.to_thread(organizations.members, ctx.db, org)


@router.post("/organization/members", response_model=Member, status_code=201, operation_id="addMember",
             dependencies=[needs(Access.MANAGE_MEMBERS)])
async def add_member(member: MemberIn, org: OrgId, ctx: Ctx) -> Member:
    return await asyncio.to_thread(organizations.add_member, ctx.db, org, member)


@router.delete("/organization/members/{member_id}", status_code=204, response_class=Response,
               operation_id="removeMember", dependencies=[needs(Access.MANAGE_MEMBERS)])
async def remove_member(member_id: Annotated[int, Path(ge=1, le=DB_INT_MAX, description="the member's id")],
                        org: OrgId, ctx: Ctx) -> Response:
    """Remove a member's role; the last Organization Owner cannot be removed (409)."""
    await asyncio.to_thread(organizations.remove_member, ctx.db, org, member_id)
    return Response(status_code=204)


@router.get("/organization/billing-profile", response_model=BillingProfileView, operation_id="getBillingProfile",
            dependencies=[needs(Access.READ_BILLING)])
async def get_billing_profile(org: OrgId, ctx: Ctx) -> BillingProfileView:
    return await asyncio.to_thread(organizations.billing_profile, ctx.db, org)


@router.put("/organization/billing-profile", response_model=ProfileSaved, operation_id="putBillingProfile",
            dependencies=[needs(Access.CHANGE_BILLING)])
async def put_billing_profile(profile: BillingProfileIn, org: OrgId, caller: Caller, ctx: Ctx) -> ProfileSaved:
    """A1-A2: the billing address and tax ID, validated on save (a tax ID on a US profile, or one not in its
    country's format, is a 422 naming `body.tax_id`); audited; the next invoices are taxed by it."""
    return await organizations.save_billing_profile(ctx.billing, org, profile, changed_by=caller.name)


@router.get("/organization/billing-profile/changes", response_model=list[ProfileChange],
            operation_id="listBillingProfileChanges", dependencies=[needs(Access.READ_BILLING)])
async def billing_profile_changes(org: OrgId, ctx: Ctx) -> list[ProfileChange]:
    """The audit trail of the billing profile, newest first: who, when, each field's old and new value."""
    return await asyncio.to_thread(organizations.profile_changes, ctx.db, org)


@router.get("/organization/billing-contact", response_model=BillingContactView, operation_id="getBillingContact",
            dependencies=[needs(Access.READ_BILLING)])
async def get_billing_contact(org: OrgId, ctx: Ctx) -> BillingContactView:
    """A3: the billing e-mail, the "only send invoice e-mails to it" flag, and who billing alerts go to."""
    return await asyncio.to_thread(organizations.billing_contact, ctx.db, org)


@router.put("/organization/billing-contact", response_model=ContactSaved, operation_id="putBillingContact",
            dependencies=[needs(Access.CHANGE_BILLING)])
async def put_billing_contact(contact: BillingContactIn, org: OrgId, caller: Caller, ctx: Ctx) -> ContactSaved:
    """A3/D7: change the billing contact, audited."""
    return await organizations.save_billing_contact(ctx.billing, org, contact, changed_by=caller.name)


@router.get("/organization/billing-contact/changes", response_model=list[ContactChange],
            operation_id="listBillingContactChanges", dependencies=[needs(Access.READ_BILLING)])
async def billing_contact_changes(org: OrgId, ctx: Ctx) -> list[ContactChange]:
    """D7: the billing contact's audit trail, newest first."""
    return await asyncio.to_thread(organizations.contact_changes, ctx.db, org)
