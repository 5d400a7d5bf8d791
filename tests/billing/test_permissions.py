"""SPEC B2, every row: who may view and raise support cases."""

from __future__ import annotations

import pytest

from billing.permissions import (ORGANIZATION_OWNER, PROJECT_ROLES, Action, Caller, PermissionDenied, allowed,
                                 require)

VIEW, RAISE = Action.VIEW_CASES, Action.RAISE_CASE

CASES = (
    # Can View (project scope): any user with any role in the project.
    [(f"{role} in web", set(), {"web": {role}}, VIEW, "web", True) for role in sorted(PROJECT_ROLES)]
    # Can Raise (project scope): any project role except Project Read Only.
    + [(f"{role} in web", set(), {"web": {role}}, RAISE, "web", role != "Project Read Only")
       for role in sorted(PROJECT_ROLES)]
    # Can View and Raise (organization and project scope): Organization Owner.
    + [("Organization Owner, no project role", {ORGANIZATION_OWNER}, {}, action, "web", True)
       for action in (VIEW, RAISE)]
    + [
        ("no role at all", set(), {}, VIEW, "web", False),
        ("no role at all", set(), {}, RAISE, "web", False),
        ("a role in another project", set(), {"api": {"Project Owner"}}, VIEW, "web", False),
        ("a role in another project", set(), {"api": {"Project Owner"}}, RAISE, "web", False),
        ("read-only plus a writer role", set(), {"web": {"Project Read Only", "Project Cluster Manager"}}, RAISE,
         "web", True),
        ("an organization role that is not Owner", {"Organization Billing Admin"}, {}, VIEW, "web", False),
    ]
)


@pytest.mark.parametrize("who, org_roles, project_roles, action, project, expected", CASES,
                         ids=[f"{c[0]}-{c[3].value}" for c in CASES])
def test_support_case_roles(who, org_roles, project_roles, action, project, expected):
    caller = Caller(user="ada@acme.test", org_roles=org_roles, project_roles=project_roles)
    assert allowed(caller, action, project) is expected
    if expected:
        require(caller, action, project)
    else:
        with pytest.raises(PermissionDenied, match="SPEC B2"):
            require(caller, action, project)
