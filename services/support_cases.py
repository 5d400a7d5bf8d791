"""Support cases (SPEC B2): any project role may view a project's cases; any project role but Project Read Only
may raise one; an Organization Owner may view and raise for every project. The rule is billing.permissions; this
module applies it to the stored cases."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from billing.permissions import ORGANIZATION_OWNER, Action, Caller, PermissionDenied, require
from store.db import Database
from store.tables import SupportCase


class Severity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class SupportCaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    project: str = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    severity: Severity = Severity.NORMAL


class SupportCaseView(BaseModel):
    id: int
    project: str
    subject: str
    description: str
    severity: Severity
    status: str
    raised_by: str
    created_at: datetime


def _view(row: SupportCase) -> SupportCaseView:
    return SupportCaseView.model_validate(row, from_attributes=True)


def list_cases(db: Database, org_id: str, caller: Caller, project: str | None) -> list[SupportCaseView]:
    """B2: one project's cases (any role in it may view them), or, without a project, every project's: that is an
    Organization Owner's view only."""
    if project is None and ORGANIZATION_OWNER not in caller.org_roles:
        projects = [name for name, roles in caller.project_roles.items() if roles]
        if len(projects) != 1:
            raise PermissionDenied(f"{caller.user} may not view the support cases of every project: name one with "
                                   f"?project= (that needs a role in it), or be {ORGANIZATION_OWNER} (SPEC B2)")
        project = projects[0]  # a project key's own project
    if project is not None:
        require(caller, Action.VIEW_CASES, project)
    with db.session() as s:
        query = select(SupportCase).where(SupportCase.org_id == org_id)
        if project is not None:
            query = query.where(SupportCase.project == project)
        rows = s.exec(query.order_by(SupportCase.created_at.desc(), SupportCase.id.desc())).all()
    return [_view(row) for row in rows]


def raise_case(db: Database, org_id: str, caller: Caller, case: SupportCaseIn, at: datetime) -> SupportCaseView:
    require(caller, Action.RAISE_CASE, case.project)  # B2, before anything is written
    with db.session() as s:
        row = SupportCase(org_id=org_id, project=case.project, subject=case.subject, description=case.description,
                          severity=case.severity, raised_by=caller.user, created_at=at)
        s.add(row)
        s.flush()
        return _view(row)
