-- The read-only PostgreSQL role of Grafana's SQL data source (docs/grafana.md).
--
--   psql "$TELEMETRY_DATABASE_URL" -v ON_ERROR_STOP=1 -v role=grafana_reader \
--        -v password='a long random password' -f deploy/grafana/readonly-role.sql
--
-- Run it as the owner of the collector's tables, after `telemetry-collector migrate`; it
-- can run again (it updates the password). The role reads the telemetry of EVERY project,
-- so it is for operators: teams read their own project through the API keys.
-- It can read spans, logs, metrics, error groups and the per-minute rollups, and project
-- names; not API keys, nor alerting configuration (channels hold webhook URLs and headers).
-- Day partitions are read through their parent table, whose privileges are the ones that
-- count, so partitions created later need no grant of their own.

SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec

ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
-- Every session of the role is read-only and cannot run a query for more than 30 seconds.
ALTER ROLE :"role" SET default_transaction_read_only = on;
ALTER ROLE :"role" SET statement_timeout = '30s';

SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec
GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT ON spans, logs, metric_series, metric_points, error_groups, error_events,
    span_rollups TO :"role";
GRANT SELECT (id, name) ON projects TO :"role";
