"""SPEC B2, every row: who may view and raise support cases."""

from __future__ import annotations

import pytest

from billing.permissions import (ORGANIZATION_OWNER, PROJECT_ROLES, Access, Action, ApiRole, Caller, PermissionDenied,
                                 allowed, caller_for_key, grants, require)

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


def test_a_refusal_names_the_caller_the_project_and_what_was_needed():
    caller = Caller(user="ada@acme.test", project_roles={"web": {"Project Read Only"}})
    with pytest.raises(PermissionDenied) as err:
        require(caller, RAISE, "web")
    assert str(err.value) == ("ada@acme.test may not raise a support case for project 'web': that needs a project "
                              "role other than Project Read Only, or Organization Owner (SPEC B2)")
    with pytest.raises(PermissionDenied) as err:
        require(Caller(user="bob@acme.test"), VIEW, "api")
    assert str(err.value) == ("bob@acme.test may not view support cases of project 'api': that needs any role in "
                              "the project, or Organization Owner (SPEC B2)")


def test_roles_outside_the_b2_list_give_nothing():
    caller = Caller(user="eve@acme.test", project_roles={"web": {"Project Janitor"}})
    assert allowed(caller, VIEW, "web") is False
    assert allowed(caller, RAISE, "web") is False


TITLES = {ApiRole.ORGANIZATION_OWNER: "Organization Owner", ApiRole.BILLING_ADMIN: "Billing Admin",
          ApiRole.ORGANIZATION_READ_ONLY: "Organization Read Only", ApiRole.PROJECT_OWNER: "Project Owner",
          ApiRole.PROJECT_READ_ONLY: "Project Read Only", ApiRole.OPERATOR: "Operator"}


@pytest.mark.parametrize("role", list(ApiRole))
def test_api_roles_have_the_seeds_titles(role):
    assert role.title == TITLES[role]
    assert role.is_project_role is (role in (ApiRole.PROJECT_OWNER, ApiRole.PROJECT_READ_ONLY))


# SPEC I2: rows are roles, columns READ_BILLING, CHANGE_BILLING, MANAGE_MEMBERS, OPERATE.
GRANTS = {
    ApiRole.ORGANIZATION_OWNER: (True, True, True, False),
    ApiRole.BILLING_ADMIN: (True, True, False, False),
    ApiRole.ORGANIZATION_READ_ONLY: (True, False, False, False),
    ApiRole.PROJECT_OWNER: (False, False, False, False),
    ApiRole.PROJECT_READ_ONLY: (False, False, False, False),
    ApiRole.OPERATOR: (True, True, True, True),
}


@pytest.mark.parametrize("role", list(ApiRole))
def test_what_each_api_role_may_do(role):
    accesses = (Access.READ_BILLING, Access.CHANGE_BILLING, Access.MANAGE_MEMBERS, Access.OPERATE)
    assert tuple(grants(role, access) for access in accesses) == GRANTS[role]


@pytest.mark.parametrize("role, project, org_roles, project_roles", [
    (ApiRole.PROJECT_OWNER, "web", set(), {"web": {"Project Owner"}}),
    (ApiRole.PROJECT_READ_ONLY, "web", set(), {"web": {"Project Read Only"}}),
    (ApiRole.PROJECT_OWNER, None, set(), {}),
    (ApiRole.OPERATOR, None, {"Organization Owner"}, {}),
    (ApiRole.OPERATOR, "web", {"Organization Owner"}, {}),
    (ApiRole.ORGANIZATION_OWNER, None, {"Organization Owner"}, {}),
    (ApiRole.BILLING_ADMIN, "web", {"Billing Admin"}, {}),
    (ApiRole.ORGANIZATION_READ_ONLY, None, {"Organization Read Only"}, {}),
])
def test_the_b2_caller_an_api_key_stands_for(role, project, org_roles, project_roles):
    caller = caller_for_key("key-1", role, project)
    assert caller == Caller(user="key-1", org_roles=org_roles, project_roles=project_roles)


def test_a_project_key_may_act_on_its_project_only_and_an_operator_everywhere():
    owner = caller_for_key("key-1", ApiRole.PROJECT_OWNER, "web")
    assert allowed(owner, RAISE, "web") and not allowed(owner, VIEW, "api")
    reader = caller_for_key("key-2", ApiRole.PROJECT_READ_ONLY, "web")
    assert allowed(reader, VIEW, "web") and not allowed(reader, RAISE, "web")
    operator = caller_for_key("ops", ApiRole.OPERATOR, None)
    assert allowed(operator, RAISE, "any-project")
    admin = caller_for_key("key-3", ApiRole.BILLING_ADMIN, None)
    assert not allowed(admin, VIEW, "web")
