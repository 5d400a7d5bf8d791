"""Registering an RBI e-mandate when an India-issued card is added (SPEC E1): the issuer may take minutes."""

from __future__ import annotations


from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.options import ISSUER
    from contracts import clock
    from contracts.rbi import MandateRequest, RbiActivities


class RegisterMandateInput(BaseModel):
    org_id: str


@workflow.defn
class RegisterMandateWorkflow:
    @workflow.run
    async def run(self, request: RegisterMandateInput) -> bool:
        workflow.set_current_details("Verifying the customer and registering a USD 1,400 monthly mandate with the "
                                     "card issuer (may take up to 2 minutes)")
        registered = await workflow.execute_activity_method(
            RbiActivities.register_mandate, MandateRequest(org_id=request.org_id, at=clock.now()), **ISSUER)
        workflow.set_current_details("Mandate registered" if registered else "Not an India-issued card: no mandate")
        return registered
