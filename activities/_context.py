"""Log context for activities: every log line carries the workflow, the organization and the invoice."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator

import structlog
from temporalio import activity


@contextmanager
def activity_log_context(**fields: object) -> Iterator[structlog.stdlib.BoundLogger]:
    info = activity.info()
    with structlog.contextvars.bound_contextvars(workflow_id=info.workflow_id, activity=info.activity_type,
                                                 activity_attempt=info.attempt, **fields):
        yield structlog.get_logger("billing.activities")
