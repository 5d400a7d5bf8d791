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
