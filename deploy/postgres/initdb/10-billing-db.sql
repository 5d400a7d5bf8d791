-- Runs once, when the postgresql service initialises an empty data volume
-- (mounted at /docker-entrypoint-initdb.d). Temporal's own databases (temporal,
-- temporal_visibility) are created by temporalio/auto-setup; this adds the billing
-- application's database and its owner role. Dev credentials: keep in sync with
-- DATABASE_URL in docker-compose.yml.
CREATE ROLE billing WITH LOGIN PASSWORD 'billing';
CREATE DATABASE billing OWNER billing;
