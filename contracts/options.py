"""How long each kind of activity may take and how it is retried: one place for every workflow.

Infrastructure failures retry with backoff for as long as it takes; business outcomes (a declined card, an invalid
code) are results or non-retryable errors, never retries."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))

# Database work and computations (one transaction each).
ACTIVITY = {"start_to_close_timeout": timedelta(minutes=1), "retry_policy": RETRY}
# The settlement's steps, run as local activities: no server round trip each.
LOCAL = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": RETRY}
# E-mail: the SMTP server may be down for a while; each message is keyed, so a retry sends it once.
EMAIL = {"start_to_close_timeout": timedelta(seconds=30), "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=5))}
# The payment gateway: idempotency keys make a retried charge safe (M3); an unknown token or a key reused for
# another charge is a bug, not a glitch.
GATEWAY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                            non_retryable_error_types=["UnknownToken", "IdempotencyConflict"])
GATEWAY = {"start_to_close_timeout": timedelta(seconds=60), "retry_policy": GATEWAY_RETRY}
# The card issuer (E1): verifying the customer and registering a mandate can take minutes; heartbeats say it lives.
ISSUER = {"start_to_close_timeout": timedelta(minutes=5), "heartbeat_timeout": timedelta(seconds=30),
          "retry_policy": GATEWAY_RETRY}
# A page of the month-end's settlement starts (50 at a time), heartbeating as it goes.
PAGE = {"start_to_close_timeout": timedelta(minutes=10), "heartbeat_timeout": timedelta(minutes=1), "retry_policy": RETRY}
# One HTTP attempt at delivering an event (I6): its answer is a result, the workflow's timers do the backing off;
# only a failure to record the attempt (the database) retries here.
DELIVERY_ATTEMPT = {"start_to_close_timeout": timedelta(seconds=30), "retry_policy": RETRY}
