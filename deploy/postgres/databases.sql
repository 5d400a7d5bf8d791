-- One-shot (service `billing-databases` of docker-compose.yml, psql as the cluster's superuser): the billing engine's
-- database and the sandbox gateway's ledger database, each owned by its own role. Idempotent: it runs on every
-- `docker compose up`, so a data volume from an earlier deployment gains what it lacks. Temporal's own databases come
-- from the `temporal-schema` job. Local credentials: keep in sync with DATABASE_URL and BILLING_GATEWAY_DATABASE_URL
-- in docker-compose.yml.
\set ON_ERROR_STOP on

SELECT 'CREATE ROLE billing LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'billing') \gexec
ALTER ROLE billing WITH LOGIN PASSWORD 'billing';
SELECT 'CREATE DATABASE billing OWNER billing'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'billing') \gexec

SELECT 'CREATE ROLE gateway LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gateway') \gexec
ALTER ROLE gateway WITH LOGIN PASSWORD 'gateway';
SELECT 'CREATE DATABASE gateway OWNER gateway'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gateway') \gexec
