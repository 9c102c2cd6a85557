# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The SQL servers the database tests run on, one fixture parameter each:
PostgreSQL (DBDriver pgsql, gt_pg) and MariaDB (DBDriver mysql, gt_mysql).
Both servers have the same methods (start/stop/sql/create_db/dbd_params/
connections/kill_connections/cleanup); what differs in SQL is here.

MariaDB's tests are skipped -- loudly, and counted as skipped by tests/run,
never as passed -- only when its packages are not installed (tests/run
installs them)."""
import os
import re

import pytest

import gt_mysql
from gt_mysql import MariaDbServer
from gt_pg import PgServer

SERVERS = ("pgsql", "mysql")

# nanomdm's own definitions (storage/pgsql/schema.sql, storage/mysql/schema.sql), not ours
NANOMDM_PG_TABLE = """
CREATE TABLE cert_auth_associations
(
    id         VARCHAR(255) NOT NULL,
    sha256     CHAR(64)     NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, sha256),
    CHECK (id != ''),
    CHECK (sha256 != '')
);
"""
NANOMDM_MYSQL_TABLE = """
CREATE TABLE cert_auth_associations (
    id     VARCHAR(255) NOT NULL,
    sha256 CHAR(64)     NOT NULL,

    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

    PRIMARY KEY (id, sha256),

    CHECK (id != ''),
    CHECK (sha256 != ''),
    INDEX idx_sha256 (sha256)
);
"""


def nanomdm_table(server):
    """nanomdm's cert_auth_associations, as its schema for this server has it."""
    return NANOMDM_MYSQL_TABLE if server.driver == "mysql" else NANOMDM_PG_TABLE


def need(kind):
    if kind == "mysql" and gt_mysql.missing():
        pytest.skip("MARIADB TESTS NOT RUN: %s not installed (tests/run installs them)"
                    % ", ".join(gt_mysql.missing()))


def sql_server(kind, workdir, name):
    """A started server of this kind (its schema is loaded by create_db)."""
    need(kind)
    if kind == "mysql":
        return MariaDbServer(workdir, name=name).start()
    return PgServer(workdir, name=name).start()


def served_sql(kind, workdir, name, db):
    """For a fixture (`yield from served_sql(...)`): a started server holding
    database db with the schema loaded, removed afterwards."""
    server = sql_server(kind, workdir, name)
    try:
        server.create_db(db)
        yield server
    finally:
        server.cleanup()


def insert_ignore(server, db, table, columns, values):
    """INSERT a row unless its key is there already."""
    cols = ", ".join(columns)
    vals = ", ".join("'%s'" % v for v in values)
    if server.driver == "mysql":
        server.sql(db, "INSERT IGNORE INTO %s (%s) VALUES (%s)" % (table, cols, vals))
    else:
        server.sql(db, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT DO NOTHING" % (table, cols, vals))


def sleep_sql(server, seconds):
    """An SQL condition that is true after `seconds` of sleep."""
    if server.driver == "mysql":
        return "SLEEP(%s) = 0" % seconds
    return "pg_sleep(%s) IS NOT NULL" % seconds


def log_statements(server):
    """Have the server log every statement it executes (see executed())."""
    if server.driver == "mysql":
        server.sql(None, "SET GLOBAL general_log = 1")
    else:
        server.sql("postgres", "ALTER SYSTEM SET log_statement = 'all'")
        server.sql("postgres", "SELECT pg_reload_conf()")


def statement_log_mark(server):
    path = server.general_log if server.driver == "mysql" else server.log
    return os.path.getsize(path) if os.path.exists(path) else 0


def executed(server, mark):
    """The prepared statements the server logged executing since mark."""
    path = server.general_log if server.driver == "mysql" else server.log
    with open(path, "rb") as f:
        f.seek(mark)
        text = f.read().decode(errors="replace")
    if server.driver == "mysql":
        # general log: "[date time]<tab(s)> id Command<tab>text" opens an entry
        entries = re.split(r"\n(?=(?:\d{6}\s+\d{1,2}:\d\d:\d\d)?\s+\d+ [A-Z][a-z_]*\t)", text)
        return [e.split("\t", 1)[1].split("\t", 1)[-1] for e in entries
                if re.match(r"(?:\d{6}\s+\d{1,2}:\d\d:\d\d)?\s+\d+ Execute\t", e)]
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d )", text)    # one per log_line_prefix
    return [e.split(": ", 1)[1] for e in entries if re.search(r"LOG:  execute [^:]+: ", e)]
