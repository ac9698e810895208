-- A read-only login role for BI tools (Grafana, Metabase, psql users) on Postgres: it can read every
-- table and view of the service, and neither write anything nor get in the daemon's way, even in a
-- session it turns read-write (`SET default_transaction_read_only = off` is open to every role, so
-- read-only sessions are a default, not a guarantee: privileges are). docs/sql.md, "Connecting".
--
-- Run it in the service's database as a superuser (the docker compose stack does, at the first
-- start), with psql 15 or newer: taking temporary tables and large objects away from the role needs
-- one. It ends with a check of what the role can do and fails, naming what is left, if it can still
-- write anything. Name and password come from the environment, so the password never shows in a
-- process list or a shell history (BI_CONNECTION_LIMIT, default 20, caps its connections):
--
--   BI_USER=forecaster_bi BI_PASSWORD='...' psql "postgresql://postgres@HOST:5432/forecaster" -f db/readonly.sql
--
-- Safe to run again: it creates the role if missing, sets the password to the one given, and
-- grants SELECT on what exists now. Tables and views created later by the same owner (future
-- migrations) are readable too, through default privileges; that is why the docker compose stack
-- can run it on the empty database, before the migrations (deploy/grafana, docker-compose.yml).
\set ON_ERROR_STOP on
\getenv bi_user BI_USER
\getenv bi_password BI_PASSWORD
\getenv bi_connection_limit BI_CONNECTION_LIMIT
\if :{?bi_connection_limit}
\else
  \set bi_connection_limit 20
\endif

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

-- Belt and braces beyond the privileges: its sessions start read-only, a runaway dashboard query is
-- stopped instead of loading the database the forecaster writes to, and a transaction left open in
-- psql is closed before it holds up a migration for long. These are defaults the role can change for
-- itself (ALTER ROLE itself ... SET, and its own password: PostgreSQL allows every role that); run
-- this script again to put them back. What keeps it from writing are the privileges below.
SELECT format('ALTER ROLE %I SET default_transaction_read_only = on', :'bi_user') \gexec
SELECT format('ALTER ROLE %I SET statement_timeout = %L', :'bi_user', '60s') \gexec
-- No JIT compilation: BI queries read a market's window through indexes in milliseconds, and JIT,
-- triggered by row estimates taken over all markets, spent 30-45 ms compiling each of them
-- (accuracy_7d, bench/query_speed.py).
SELECT format('ALTER ROLE %I SET jit = off', :'bi_user') \gexec
SELECT format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', :'bi_user', '5min') \gexec
-- A role cannot raise its own connection limit: dashboards cannot use up max_connections and lock
-- the daemons out.
SELECT format('ALTER ROLE %I CONNECTION LIMIT %s', :'bi_user', :'bi_connection_limit'::integer) \gexec

-- Read what exists now, and what this owner creates later. Nothing else is granted: no INSERT,
-- UPDATE, DELETE, TRUNCATE, no sequence use, no CREATE in the schema (PostgreSQL 15 and newer no
-- longer let PUBLIC create in `public`; on 14 or older also run REVOKE CREATE ON SCHEMA public FROM PUBLIC).
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'bi_user') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'bi_user') \gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I', :'bi_user') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO %I', :'bi_user') \gexec

-- Writes that PUBLIC may make in any database by default, so in a read-write session this role too:
-- temporary tables (TEMP on the database) and large objects (anyone may create them and write their
-- own). Taken from PUBLIC in this database, and given back to the role running this script, the
-- service's owner. The daemon uses neither.
SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user) \gexec
REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea), lo_import(text),
  lo_import(text, oid), lo_put(oid, bigint, bytea), lowrite(integer, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea), lo_import(text),
  lo_import(text, oid), lo_put(oid, bigint, bytea), lowrite(integer, bytea) TO CURRENT_USER;

-- The daemon's locks are rows of job_locks locked with SELECT ... FOR UPDATE, which needs UPDATE on
-- the table: reading it (SELECT) is all this role may do there, and plain reads never block a lock.
-- Check what the role can do now, and stop with what is left if it can write anything.
SELECT format($check$
DO $do$
DECLARE
  bi text := %L;
  left_over text[] := '{}';
BEGIN
  IF has_database_privilege(bi, current_database(), 'TEMPORARY') THEN
    left_over := left_over || 'create temporary tables (TEMP is still granted to PUBLIC or to it)'::text;
  END IF;
  IF has_database_privilege(bi, current_database(), 'CREATE') THEN
    left_over := left_over || 'create schemas in the database'::text;
  END IF;
  IF has_schema_privilege(bi, 'public', 'CREATE') THEN
    left_over := left_over || 'create objects in schema public (REVOKE CREATE ON SCHEMA public FROM PUBLIC)'::text;
  END IF;
  IF has_function_privilege(bi, 'lo_create(oid)', 'EXECUTE') OR has_function_privilege(bi, 'lo_from_bytea(oid, bytea)', 'EXECUTE')
     OR has_function_privilege(bi, 'lo_creat(integer)', 'EXECUTE') THEN
    left_over := left_over || 'create large objects (revoking that needs a superuser)'::text;
  END IF;
  IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public'
               AND CASE WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f')
                        THEN has_table_privilege(bi, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') END) THEN
    left_over := left_over || 'write to a table (or lock the rows of job_locks)'::text;
  END IF;
  IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public'
               AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(bi, c.oid, 'USAGE, UPDATE') END) THEN
    left_over := left_over || 'use a sequence'::text;
  END IF;
  IF (SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = bi)
     OR pg_has_role(bi, 'pg_signal_backend', 'USAGE') OR pg_has_role(bi, current_user, 'USAGE') THEN
    left_over := left_over || 'act as an administrator or as the service (an attribute or a membership)'::text;
  END IF;
  IF cardinality(left_over) > 0 THEN
    RAISE EXCEPTION 'db/readonly.sql: role %% can still %%', bi, array_to_string(left_over, '; ');
  END IF;
END
$do$
$check$, :'bi_user') \gexec

\echo read-only role :bi_user can read the tables and views of :DBNAME and write nothing
