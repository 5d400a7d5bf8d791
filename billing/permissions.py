"""Who may view and raise support cases (SPEC B2), as a role check the starter and the API call."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Action(StrEnum):
    VIEW_CASES = "view_support_cases"
    RAISE_CASE = "raise_support_case"


ORGANIZATION_OWNER = "Organization Owner"
PROJECT_READ_ONLY = "Project Read Only"
PROJECT_ROLES = frozenset({"Project Owner", "Project Cluster Manager", "Project Data Access Admin",
                           "Project Data Access Read/Write", "Project Data Access Read Only", "Project Read Only",
                           "Project Search Index Editor", "Project Stream Processing Owner"})


class Caller(BaseModel):
    """A user's roles: organization-wide ones, and project roles by project."""

    user: str
    org_roles: set[str] = set()
    project_roles: dict[str, set[str]] = {}


class PermissionDenied(Exception):
    """A refused action: the message says which rule refused it; nothing was changed."""


def allowed(caller: Caller, action: Action, project: str) -> bool:
    """SPEC B2: any project role may view; any project role but Project Read Only may raise; an Organization
    Owner may view and raise for every project of the organization."""
    if ORGANIZATION_OWNER in caller.org_roles:
        return True
    roles = caller.project_roles.get(project, set()) & PROJECT_ROLES
    if action is Action.VIEW_CASES:
        return bool(roles)
    return bool(roles - {PROJECT_READ_ONLY})


def require(caller: Caller, action: Action, project: str) -> None:
    if not allowed(caller, action, project):
        verb = "view support cases of" if action is Action.VIEW_CASES else "raise a support case for"
        needs = ("any role in the project" if action is Action.VIEW_CASES
                 else "a project role other than Project Read Only")
        raise PermissionDenied(f"{caller.user} may not {verb} project {project!r}: that needs {needs}, or "
                               f"{ORGANIZATION_OWNER} (SPEC B2)")


class ApiRole(StrEnum):
    """The role an API key acts with (SPEC I2): the seeds' organization and project roles, or the operator's."""

    ORGANIZATION_OWNER = "organization-owner"
    BILLING_ADMIN = "billing-admin"
    ORGANIZATION_READ_ONLY = "organization-read-only"
    PROJECT_OWNER = "project-owner"
    PROJECT_READ_ONLY = "project-read-only"
    OPERATOR = "operator"  # the service's own staff: every organization, operator actions

    @property
    def title(self) -> str:
        return _TITLES[self]

    @property
    def is_project_role(self) -> bool:
        return self in (ApiRole.PROJECT_OWNER, ApiRole.PROJECT_READ_ONLY)


_TITLES = {ApiRole.ORGANIZATION_OWNER: ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN: "Billing Admin",
           ApiRole.ORGANIZATION_READ_ONLY: "Organization Read Only", ApiRole.PROJECT_OWNER: "Project Owner",
           ApiRole.PROJECT_READ_ONLY: PROJECT_READ_ONLY, ApiRole.OPERATOR: "Operator"}


class Access(StrEnum):
    """What an API request needs of its key's role."""

    READ_BILLING = "read billing"  # invoices, payments, credits, the billing profile, the payment method
    CHANGE_BILLING = "change billing"  # I2: billing changes need Organization Owner or Billing Admin
    MANAGE_MEMBERS = "manage members"
    OPERATE = "operate"  # month-end, settling one organization, forgiving, issuing keys for others


_GRANTS: dict[Access, frozenset[ApiRole]] = {
    Access.READ_BILLING: frozenset({ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN,
                                    ApiRole.ORGANIZATION_READ_ONLY, ApiRole.OPERATOR}),
    Access.CHANGE_BILLING: frozenset({ApiRole.ORGANIZATION_OWNER, ApiRole.BILLING_ADMIN, ApiRole.OPERATOR}),
    Access.MANAGE_MEMBERS: frozenset({ApiRole.ORGANIZATION_OWNER, ApiRole.OPERATOR}),
    Access.OPERATE: frozenset({ApiRole.OPERATOR}),
}


def grants(role: ApiRole, access: Access) -> bool:
    """SPEC I2: whether a key with `role` may do what `access` names (support cases follow B2: `caller_for_key`)."""
    return role in _GRANTS[access]


def caller_for_key(key_name: str, role: ApiRole, project: str | None) -> Caller:
    """The B2 caller an API key stands for: organization roles organization-wide, project roles on its project."""
    if role.is_project_role:
        return Caller(user=key_name, project_roles={project: {role.title}} if project else {})
    if role is ApiRole.OPERATOR:  # the service's staff act for the organization as its owner would
        return Caller(user=key_name, org_roles={ORGANIZATION_OWNER})
    return Caller(user=key_name, org_roles={role.title})
