"""Helpers the tests (and bench/, docs/screenshots.py) import; test files import only from here, never
from one another or from conftest.py.

- paths: where tests/data and the repository are; frames: real candles as forecaster frames;
  candle_data: the real hourly CSVs sliced, re-timed, and (tests only) regrouped into other intervals;
- fake_exchange: an HTTP server serving Bithumb, Upbit and Binance candles from memory;
- cli: the real `forecaster` command in a subprocess; daemon_harness: `forecaster run` against the
  fake exchange, and the `start_daemon` fixture;
- postgres: the test server's admin URL, a database outage; services: the jobs' services on a test
  database; interval_store: one market in 1h, 4h and 1d (the `store` fixture);
- pipeline_database: a database filled by the real pipeline; documented_sql: docs/sql.md's queries;
  readonly_role: db/readonly.sql run with psql; compose, grafana: the deploy stack's files;
- browser: headless Chromium through Selenium;
- markers: the `postgres` and `slow` markers a test gets from its fixtures (conftest.py applies them);
  collection_report: a pytest plugin that tells tests/test_markers.py what each test uses.
"""
