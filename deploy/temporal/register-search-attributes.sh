#!/bin/sh
# One-shot: registers the billing search attributes (SPEC H2; the list is contracts/flows.py SEARCH_ATTRIBUTES) on
# the namespace, after `temporal-create-namespace`. Re-runs are fine: an attribute that exists with the same type is
# kept; one that exists with another type fails the job, since workflows would then upsert values of the wrong type.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE=${DEFAULT_NAMESPACE:-default}

register() {
  if out=$(temporal operator search-attribute create --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" \
      "$@" 2>&1); then
    echo "registered: $*"
  elif echo "$out" | grep -q "different type"; then
    echo "$out" >&2
    return 1
  elif echo "$out" | grep -qi "already exists"; then
    echo "already exists: $*"
  else
    echo "$out" >&2
    return 1
  fi
}

register --name OrgId --type Keyword
register --name InvoiceId --type Keyword
register --name PaymentStatus --type Keyword
register --name BillingPeriod --type Keyword
register --name OrgStatus --type Keyword
register --name PaymentWaitingFor --type Keyword
register --name ActivationStatus --type Keyword
register --name GraceEndsAt --type Datetime
temporal operator search-attribute list --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS"
