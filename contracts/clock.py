"""The business clock: the instant the billing rules see, which a simulation may set apart from Temporal's clock.

Production runs with no offset: business time is Temporal's time. A simulation of a period in the past cannot move
the time-skipping server's clock back (it starts at the present), so it runs the scenario at a fixed distance ahead
and every flow subtracts that distance before applying a rule: periods, grace ends, overdue days, the dates stored
in the database and printed by the simulator are the scenario's own. The distance travels with the work like a
trace context: in the memo of every workflow the simulation starts, in a header of every activity those workflows
schedule, and from there into the memo of every workflow such an activity starts. Durations (timers) are the same
in both frames, so only instants are converted.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn

import temporalio.activity
import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.worker
import temporalio.workflow

MEMO_KEY = "clock_offset_seconds"  # shown in the UI's memo: how far Temporal's clock runs ahead of the rules'
_HEADER = "billing-clock-offset"

_offset: contextvars.ContextVar[int] = contextvars.ContextVar("billing_clock_offset", default=0)


def now() -> datetime:
    """Business time inside workflow code: use this, never `workflow.now()`, for any instant a rule sees."""
    return temporalio.workflow.now() - timedelta(seconds=_workflow_offset())


def _workflow_offset() -> int:
    return temporalio.workflow.memo_value(MEMO_KEY, 0, type_hint=int)


def _with_offset_memo(memo: Mapping[str, Any] | None, seconds: int) -> Mapping[str, Any] | None:
    if not seconds:
        return memo
    return {**(memo or {}), MEMO_KEY: seconds}


class ClockInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Carries the offset from starter to workflow to activity to the workflows that activity starts.

    Given to the client, it is used by every worker built on that client as well. `offset_seconds` is the offset
    of the workflows this client starts outside an activity (a simulation's client); inside an activity, the
    offset of the workflow that scheduled it."""

    def __init__(self, offset_seconds: int = 0) -> None:
        self.offset_seconds = offset_seconds

    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next, self.offset_seconds)

    def intercept_activity(
            self, next: temporalio.worker.ActivityInboundInterceptor) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
            self, input: temporalio.worker.WorkflowInterceptorClassInput,
    ) -> type[temporalio.worker.WorkflowInboundInterceptor] | None:
        return _WorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    def __init__(self, next: temporalio.client.OutboundInterceptor, offset_seconds: int) -> None:
        super().__init__(next)
        self.offset_seconds = offset_seconds

    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:
        input.memo = _with_offset_memo(input.memo, _offset.get() or self.offset_seconds)
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
            self, input: temporalio.client.StartWorkflowUpdateWithStartInput) -> Any:
        start = input.start_workflow_input
        start.memo = _with_offset_memo(start.memo, _offset.get() or self.offset_seconds)
        return await super().start_update_with_start_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        payload = input.headers.get(_HEADER)
        if payload is None:
            return await super().execute_activity(input)
        seconds = temporalio.converter.PayloadConverter.default.from_payload(payload, int)
        token = _offset.set(seconds)
        try:
            return await super().execute_activity(input)
        finally:
            _offset.reset(token)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))


def _header(headers: Mapping[str, temporalio.api.common.v1.Payload]) -> Mapping[str, temporalio.api.common.v1.Payload]:
    seconds = _workflow_offset()
    if not seconds:
        return headers
    return {**headers, _HEADER: temporalio.converter.PayloadConverter.default.to_payload(seconds)}


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: temporalio.worker.StartActivityInput) -> temporalio.workflow.ActivityHandle:
        input.headers = _header(input.headers)
        return super().start_activity(input)

    def start_local_activity(
            self, input: temporalio.worker.StartLocalActivityInput) -> temporalio.workflow.ActivityHandle:
        input.headers = _header(input.headers)
        return super().start_local_activity(input)

    async def start_child_workflow(
            self, input: temporalio.worker.StartChildWorkflowInput) -> temporalio.workflow.ChildWorkflowHandle:
        input.memo = _with_offset_memo(input.memo, _workflow_offset())
        return await super().start_child_workflow(input)

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> NoReturn:
        input.memo = _with_offset_memo(input.memo, _workflow_offset())
        return super().continue_as_new(input)
