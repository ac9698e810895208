-- A read-only login role for BI tools (Grafana, Metabase, psql users) on Postgres: it can read every
-- table and view of the service, and write nothing (docs/sql.md, "Connecting").
--
-- Run it in the service's database as the role that owns the tables (the one that runs
-- `forecaster db upgrade`), with psql 15 or newer. Name and password come from the environment,
-- so the password never shows in a process list or a shell history:
--
--   BI_USER=forecaster_bi BI_PASSWORD='...' psql "postgresql://forecaster@HOST:5432/forecaster" -f db/readonly.sql
--
-- Safe to run again: it creates the role if missing, sets the password to the one given, and
-- grants SELECT on what exists now. Tables and views created later by the same owner (future
-- migrations) are readable too, through default privileges; that is why the docker compose stack
-- can run it on the empty database, before the migrations (deploy/grafana, docker-compose.yml).
-- Creating the role needs CREATEROLE (or a superuser); the rest only ownership of the tables.
\set ON_ERROR_STOP on
\getenv bi_user BI_USER
\getenv bi_password BI_PASSWORD

\if :{?bi_user}
\else
  DO $$ BEGIN RAISE EXCEPTION 'db/readonly.sql: set BI_USER, the name of the read-only role'; END $$;
\endif
\if :{?bi_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'db/readonly.sql: set BI_PASSWORD, the password of the read-only role'; END $$;
\endif

-- A plain login role: no superuser, no CREATEDB, no CREATEROLE, no replication (the defaults).
SELECT format('CREATE ROLE %I LOGIN', :'bi_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'bi_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'bi_user', :'bi_password') \gexec

-- Belt and braces beyond the privileges: its sessions start read-only, and a runaway dashboard
-- query is stopped instead of loading the database the forecaster writes to.
SELECT format('ALTER ROLE %I SET default_transaction_read_only = on', :'bi_user') \gexec
SELECT format('ALTER ROLE %I SET statement_timeout = %L', :'bi_user', '60s') \gexec
-- No JIT compilation: BI queries read a market's window through indexes in milliseconds, and JIT,
-- triggered by row estimates taken over all markets, spent 30-45 ms compiling each of them
-- (accuracy_7d, bench/query_speed.py).
SELECT format('ALTER ROLE %I SET jit = off', :'bi_user') \gexec

-- Read what exists now, and what this owner creates later. Nothing else is granted: no INSERT,
-- UPDATE, DELETE, TRUNCATE, no sequence use, no CREATE in the schema (PostgreSQL 15 and newer no
-- longer let PUBLIC create in `public`; on 14 or older also run REVOKE CREATE ON SCHEMA public FROM PUBLIC).
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'bi_user') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'bi_user') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I', :'bi_user') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO %I', :'bi_user') \gexec

\echo read-only role :bi_user can read the tables and views of :DBNAME
