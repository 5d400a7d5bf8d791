#!/bin/sh
# One-shot: waits until the Temporal frontend's gRPC health check answers SERVING (the server container's own check
# only sees its port open, which happens before its membership ring is ready), then creates the namespace unless it
# exists.
# Service `temporal-create-namespace` of docker-compose.yml, after temporalio/samples-server compose/scripts.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
NAMESPACE=${DEFAULT_NAMESPACE:-default}
RETENTION=${DEFAULT_NAMESPACE_RETENTION:-30d}
ATTEMPTS=${TEMPORAL_HEALTH_CHECK_MAX_ATTEMPTS:-60}

attempt=1
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    echo "Temporal at $TEMPORAL_ADDRESS not SERVING after $ATTEMPTS attempts" >&2
    exit 1
  fi
  echo "waiting for Temporal at $TEMPORAL_ADDRESS ($attempt/$ATTEMPTS)"
  attempt=$((attempt + 1))
  sleep 5
done

attempt=1
until temporal operator namespace describe --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  if temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
      --address "$TEMPORAL_ADDRESS"; then
    echo "namespace $NAMESPACE created (retention $RETENTION)"
    break
  fi
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    echo "namespace $NAMESPACE could not be created after $ATTEMPTS attempts" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 5
done
echo "namespace $NAMESPACE is ready"
