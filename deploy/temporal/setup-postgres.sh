#!/bin/sh
# One-shot schema setup of Temporal's two PostgreSQL databases (the `temporal-schema` service of
# docker-compose.yml, image temporalio/admin-tools; the steps of temporalio/samples-server compose/scripts).
# Safe to run on every `docker compose up`: `create-database` accepts an existing database, `setup-schema -v 0.0`
# leaves a newer version alone, and `update-schema` applies only the versions not yet applied, which is also how a
# newer admin-tools image upgrades the schema before a newer server starts.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin "${DB:-postgres12}" --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  database=${pair%%:*}
  schema=${pair#*:}
  echo "schema setup of $database ($schema)"
  sql_tool --db "$database" create-database
  sql_tool --db "$database" setup-schema -v 0.0
  sql_tool --db "$database" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "Temporal schema is up to date"
