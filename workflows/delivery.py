"""Delivering one event to one endpoint (SPEC I6): signed POSTs until the endpoint answers 2xx, backing off between
attempts with durable timers, for up to 3 days; then the delivery is recorded as failed (an operator can resend)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import clock
    from contracts.delivery import (AttemptRequest, DeliveryActivities, DeliveryInput, DeliveryResult,
                                    GiveUpRequest)
    from contracts.options import ACTIVITY, DELIVERY_ATTEMPT


@workflow.defn
class DeliveryWorkflow:
    @workflow.run
    async def run(self, request: DeliveryInput) -> DeliveryResult:
        # Timers measure the 3 days (the same in every clock frame); each attempt is stamped on the business clock.
        deadline = workflow.now() + request.give_up_after
        backoff, attempts = request.first_backoff, 0
        while True:
            result = await workflow.execute_activity_method(
                DeliveryActivities.deliver_event, AttemptRequest(delivery_id=request.delivery_id, at=clock.now()),
                **DELIVERY_ATTEMPT)
            attempts += 1
            if result.delivered:
                workflow.set_current_details(f"Delivered {request.event_type} on attempt {result.attempt}")
                return DeliveryResult(delivery_id=request.delivery_id, status="delivered", attempts=attempts)
            if result.endpoint_gone:
                reason = "the endpoint was deleted"
                break
            wait = min(backoff, deadline - workflow.now())
            if wait <= timedelta(0):
                reason = f"no 2xx answer within {request.give_up_after} ({attempts} attempts)"
                break
            answer = f"HTTP {result.status_code}" if result.status_code is not None else result.error
            workflow.set_current_details(f"Attempt {result.attempt} of {request.event_type} failed ({answer}); "
                                         f"next attempt in {wait}")
            await workflow.sleep(wait)
            backoff = min(backoff * 2, request.max_backoff)
        await workflow.execute_activity_method(
            DeliveryActivities.give_up, GiveUpRequest(delivery_id=request.delivery_id, reason=reason, at=clock.now()),
            **ACTIVITY)
        workflow.set_current_details(f"Failed: {reason}")
        return DeliveryResult(delivery_id=request.delivery_id, status="failed", attempts=attempts)
