# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The enrollment binding on the SQL servers MDMs run on, PostgreSQL
(DBDriver pgsql) and MariaDB (DBDriver mysql), each test on each: nanomdm's
cert_auth_associations table (as nanomdm's schema for that server defines
it) with the default GetTokenEnrollmentSQL, device and user enrollments,
several httpd nodes on one database, and database faults: a database that is
down, restarted, missing its table, slow, or short of pooled connections
gives 503 + Retry-After or a success -- never a crash, never a wait without
end -- and service comes back by itself.  statement_timeout and
connect_timeout in DBDParams are PostgreSQL's alone: apr-util's mysql driver
takes neither, and MariaDB's counterparts (an option file) are tested with
README's recipes in test_mysql_recipes.py.

Real servers (Debian's postgresql and mariadb-server packages) are started
by the tests in throwaway directories (gt_pg.PgServer, gt_mysql.MariaDbServer)."""
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest

import gt_mysql
from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token
from gt_sql import SERVERS, insert_ignore, nanomdm_table, need, sleep_sql, sql_server
from gt_sign import mdm_signature
from gt_httpd import GT_LINE_RX, running


def enroll(server, db, gt, names=("dev_a", "dev_b", "dev_user")):
    for n in names:
        d = gt.devices[n]
        insert_ignore(server, db, "cert_auth_associations", ("id", "sha256"),
                      (d.enrollment_id, d.sha256))


def body_for(gt, device):
    d = gt.devices[device]
    if device == "dev_user":
        return checkin_body(gettoken_fields(enrollment_id=d.enrollment_id))
    return checkin_body(gettoken_fields(udid=d.enrollment_id))


def db_vhost(gt, server, db, **kw):
    kw.setdefault("directives", "GetTokenIdentity ssl mdm-signature")
    return gt.vhost(db_driver=server.driver, db=server.dbd_params(db), **kw)


def ask_until_ok(gt, h, pause=0.3, on_refusal=None, tries=10):
    """ask() until a 200 (a database coming back); on_refusal(r) checks
    each answer before it. Returns the last Response."""
    for _ in range(tries):
        r, _ = ask(gt, h)
        if r.status == 200:
            break
        if on_refusal:
            on_refusal(r)
        time.sleep(pause)
    return r


def ask(gt, h, device="dev_a", signed_by=None, timeout=30):
    """One GetToken on a fresh connection: (Response, seconds)."""
    c = gt.client(h.port, None if signed_by else device)
    c.timeout = timeout
    body = body_for(gt, device)
    headers = {"Mdm-Signature": mdm_signature(body, gt.devices[signed_by])} if signed_by else {}
    t = time.time()
    try:
        return c.request(body, headers=headers, keep=False), time.time() - t
    finally:
        c.close()


def assert_token(gt, h, r):
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, h.vhosts[0].uuid, time.time())


def assert_503(h, r, mark=None):
    assert r.status == 503, (r.status, r.body[:200], h.log_tail(5))
    ra = r.header("Retry-After")
    assert ra is not None and re.fullmatch(r"[1-9][0-9]*", ra.strip()), ra
    assert h.record(r.test_id, timeout=0) is None
    if mark is not None:
        lines = h.wait_log(mark, GT_LINE_RX)
        assert len(lines) == 1 and re.search(r"\(503\).*(database|GetTokenEnrollmentSQL)", lines[0]), lines


def assert_no_crash(*servers):
    for h in servers:
        bad = h.crash_lines()
        assert not bad, "httpd child crashed:\n" + "\n".join(bad)


def concurrently(n, fn):
    out, threads = [None] * n, []

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:          # noqa: BLE001 -- reported by the caller's asserts
            out[i] = e
    for i in range(n):
        t = threading.Thread(target=run, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "requests still hanging after 120 s"
    return out


@pytest.fixture(scope="module", params=SERVERS)
def kind(request):
    need(request.param)
    return request.param


@pytest.fixture(scope="module")
def shared_db(gt, kind):
    """The shared server: "mdm" with our schema, "nanomdm" with nanomdm's table alone."""
    p = sql_server(kind, gt.dir, "%s-shared" % kind)
    try:
        p.create_db("mdm")
        enroll(p, "mdm", gt)
        p.create_db("nanomdm", schema=None)
        p.sql("nanomdm", nanomdm_table(p))
        enroll(p, "nanomdm", gt)
        yield p
    finally:
        p.cleanup()


def own_server(gt, kind):
    p = sql_server(kind, gt.dir, "%s-%d" % (kind, time.time_ns()))
    try:
        p.create_db("mdm")
        enroll(p, "mdm", gt)
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def own_db(gt, kind):
    """A server of the test's own, to stop and break."""
    yield from own_server(gt, kind)


@pytest.fixture
def own_pg(gt):
    """A PostgreSQL server of the test's own, for PostgreSQL's own faults."""
    yield from own_server(gt, "pgsql")


@pytest.fixture(scope="module")
def nodes(gt, shared_db):
    """Two httpd instances, default GetTokenEnrollmentSQL, one nanomdm database."""
    hs = [gt.httpd([db_vhost(gt, shared_db, "nanomdm")], loglevel="info") for _ in range(2)]
    yield from running(*hs)
    assert_no_crash(*hs)


# --- binding -------------------------------------------------------
def test_default_sql_reads_nanomdm_table(nodes, gt):
    for h in nodes:
        assert "GetTokenEnrollmentSQL" not in open(h.conf).read()
        for dev in ("dev_a", "dev_b", "dev_user"):
            r, _ = ask(gt, h, dev)
            assert_token(gt, h, r)
        r, _ = ask(gt, h, "dev_b", signed_by="dev_b")       # Mdm-Signature, no client cert
        assert_token(gt, h, r)


@pytest.mark.gt_log("GT01303")
def test_not_bound_403(nodes, gt):
    h = nodes[0]
    for dev, signer in (("dev_unenrolled", None), ("dev_a", "dev_b")):
        mark = h.log_mark()
        r, _ = ask(gt, h, dev, signed_by=signer)
        assert r.status == 403, (r.status, h.log_tail(3))
        lines = h.wait_log(mark, GT_LINE_RX)
        assert len(lines) == 1 and gt.devices[dev].enrollment_id in lines[0], lines


@pytest.mark.gt_log("GT01303")
def test_injection_is_a_parameter(nodes, gt):
    c = gt.client(nodes[0].port, "dev_a")
    try:
        r = c.checkin(gettoken_fields(udid="x' OR '1'='1"))
    finally:
        c.close()
    assert r.status == 403


@pytest.mark.gt_log("GT01303")
def test_nodes_see_enrollment_changes_at_once(nodes, gt, shared_db):
    """Nothing is cached: a row added or removed counts at the next request on every node."""
    dev = gt.devices["dev_unenrolled"]
    try:
        enroll(shared_db, "nanomdm", gt, ["dev_unenrolled"])
        for h in nodes:
            assert_token(gt, h, ask(gt, h, "dev_unenrolled")[0])
    finally:
        shared_db.sql("nanomdm", "DELETE FROM cert_auth_associations WHERE id = '%s'" % dev.enrollment_id)
    for h in nodes:
        assert ask(gt, h, "dev_unenrolled")[0].status == 403


def test_shipped_schema_applies_twice_and_works(gt, shared_db, start_httpd):
    if shared_db.driver == "mysql":
        schema = gt_mysql.SCHEMA
    else:
        schema = os.path.join(shared_db.dir, "postgresql.sql")
    assert os.path.exists(schema)        # (a copy of) what create_db() applied
    tables = ("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'gettoken%' "
              "ORDER BY table_name")
    before = shared_db.sql("mdm", tables).split()
    assert "gettoken_pairing_jti" in before and "gettoken_audit" in before, before
    shared_db.sql("mdm", file=schema)          # a second time: harmless
    assert shared_db.sql("mdm", tables).split() == before
    # keys compare byte for byte: a jti that differs in case is another one
    jti = str(uuid.uuid4())
    shared_db.sql("mdm", "INSERT INTO gettoken_pairing_jti (jti, expires_at) VALUES ('%s', 1), ('%s', 1)"
                  % (jti, jti.upper()))
    assert shared_db.sql("mdm", "SELECT count(*) FROM gettoken_pairing_jti WHERE jti = '%s'"
                         % jti).strip() == "1"
    h = start_httpd([db_vhost(gt, shared_db, "mdm")], loglevel="info")
    assert_token(gt, h, ask(gt, h, "dev_a")[0])
    assert_no_crash(h)


# --- faults ----------------------------------------------------------------------
@pytest.mark.gt_log("GT01302")
def test_database_stopped_then_started(gt, own_db):
    """Two nodes; the database server stops under them: 503 + Retry-After, promptly;
    it starts again: 200 within a few requests, without a restart of httpd."""
    hs = [gt.httpd([db_vhost(gt, own_db, "mdm")], loglevel="info").start() for _ in range(2)]
    try:
        for h in hs:
            assert_token(gt, h, ask(gt, h)[0])      # pooled connections are warm
        own_db.stop()
        for h in hs:
            for _ in range(4):
                mark = h.log_mark()
                r, took = ask(gt, h)
                assert_503(h, r, mark)
                assert took < 10, took
        own_db.start()
        assert own_db.wait_ready()
        for h in hs:
            r = ask_until_ok(gt, h, pause=0.5, on_refusal=lambda r: assert_503(h, r))
            assert_token(gt, h, r)
            # and it stays up
            for _ in range(5):
                assert_token(gt, h, ask(gt, h)[0])
    finally:
        for h in hs:
            h.stop()
    assert_no_crash(*hs)


@pytest.mark.parametrize("how", ["restart", "terminate-backends"])
def test_dropped_pooled_connections_cost_no_request(gt, own_db, how):
    """Connections in mod_dbd's pool that the server dropped while httpd was
    idle are re-opened on first use: no request sees a 503."""
    h = gt.httpd([db_vhost(gt, own_db, "mdm")], loglevel="info").start()
    try:
        # fill the pool: concurrent requests take several connections
        res = concurrently(12, lambda i: ask(gt, h, ("dev_a", "dev_b", "dev_user")[i % 3])[0])
        for r in res:
            assert_token(gt, h, r)
        assert own_db.connections("mdm") >= 1
        if how == "restart":
            own_db.stop()
            own_db.start()
            assert own_db.wait_ready()
        else:
            assert own_db.kill_connections("mdm") >= 1
        res = concurrently(12, lambda i: ask(gt, h, ("dev_a", "dev_b", "dev_user")[i % 3])[0])
        for r in res:
            assert not isinstance(r, Exception), r
            assert r.status == 200, (r.status, h.log_tail(10))
    finally:
        h.stop()
    assert_no_crash(h)


@pytest.mark.gt_log("GT01302")
def test_table_missing_then_created(gt, own_db):
    """A query error (no such table) is a 503; creating the table heals it."""
    own_db.create_db("empty", schema=None)
    h = gt.httpd([db_vhost(gt, own_db, "empty")], loglevel="info").start()
    try:
        for _ in range(3):
            mark = h.log_mark()
            assert_503(h, ask(gt, h)[0], mark)
        own_db.sql("empty", nanomdm_table(own_db))
        enroll(own_db, "empty", gt)
        assert_token(gt, h, ask_until_ok(gt, h))
        # dropped under a running httpd (its connections already prepared): 503 again
        own_db.sql("empty", "DROP TABLE cert_auth_associations")
        mark = h.log_mark()
        assert_503(h, ask(gt, h)[0], mark)
        own_db.sql("empty", nanomdm_table(own_db))
        enroll(own_db, "empty", gt)
        assert_token(gt, h, ask(gt, h)[0])
    finally:
        h.stop()
    assert_no_crash(h)


def test_pool_exhausted_waits_then_answers(gt, own_db):
    """DBDMax 1 per process and slow queries: concurrent requests queue for
    the one connection and are all answered, in bounded time."""
    slow_sql = ('GetTokenEnrollmentSQL "SELECT 1 FROM cert_auth_associations WHERE id = %s '
                'AND sha256 = %s AND ' + sleep_sql(own_db, 0.2) + '"')
    h = gt.httpd([db_vhost(gt, own_db, "mdm", directives="DBDMin 0\nDBDKeep 1\nDBDMax 1\n" + slow_sql)],
                 loglevel="info").start()
    try:
        t = time.time()
        res = concurrently(12, lambda i: ask(gt, h, ("dev_a", "dev_b")[i % 2], timeout=60))
        took = time.time() - t
        for r in res:
            assert not isinstance(r, Exception), r
            assert r[0].status in (200, 503), r[0].status
        assert all(r[0].status == 200 for r in res), [r[0].status for r in res]
        assert took < 30, took
        n = own_db.connections("mdm")
        assert n <= 2, "DBDMax 1 per child (ServerLimit 2) but %d connections" % n
    finally:
        h.stop()
    assert_no_crash(h)


def lock_held(pg):
    return int(pg.sql("mdm", "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                             "WHERE c.relname = 'cert_auth_associations' "
                             "AND l.mode = 'AccessExclusiveLock' AND l.granted")) > 0


def release_lock(pg, locker):
    # the server keeps a dead client's lock until pg_sleep ends: end its backend
    pg.sql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
    locker.kill()
    locker.wait(10)


@pytest.mark.gt_log("GT01302")
def test_slow_database_is_bounded_by_statement_timeout(gt, own_pg):
    """A query stuck behind a lock ends at the operator's statement_timeout
    (DBDParams options) as a 503, and succeeds once the lock is gone."""
    params = own_pg.dbd_params("mdm") + " options='-c statement_timeout=1000'"
    h = gt.httpd([gt.vhost(db_driver="pgsql", db=params)], loglevel="info").start()
    locker = None
    try:
        assert_token(gt, h, ask(gt, h)[0])
        locker = subprocess.Popen(
            ["runuser", "-u", own_pg.user, "--", os.path.join(own_pg.bindir, "psql"), "-X", "-q",
             "-h", "127.0.0.1", "-p", str(own_pg.port), "-U", own_pg.user, "-d", "mdm", "-c",
             "BEGIN; LOCK TABLE cert_auth_associations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and not lock_held(own_pg):
            time.sleep(0.1)
        assert lock_held(own_pg)
        mark = h.log_mark()
        r, took = ask(gt, h)
        assert_503(h, r, mark)
        assert took < 5, took        # statement_timeout 1 s; not retried
        assert "statement timeout" in h.log_since(mark)
        release_lock(own_pg, locker)
        locker = None
        assert_token(gt, h, ask_until_ok(gt, h))
    finally:
        if locker:
            release_lock(own_pg, locker)
        h.stop()
    assert_no_crash(h)


@pytest.mark.gt_log("GT01302")
def test_unresponsive_database_is_bounded_by_connect_timeout(gt, start_httpd):
    """A server that accepts TCP and never answers: connect_timeout (DBDParams)
    bounds every request, concurrent ones included; all are 503."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)                       # never accepted, never answered
    port = sock.getsockname()[1]
    try:
        params = "host=127.0.0.1 port=%d dbname=mdm user=mdm connect_timeout=2" % port
        h = start_httpd([gt.vhost(db_driver="pgsql", db=params)], loglevel="info")
        t = time.time()
        res = concurrently(3, lambda i: ask(gt, h, timeout=60))
        for r in res:
            assert not isinstance(r, Exception), r
            assert_503(h, r[0])
        assert time.time() - t < 3 * 2 * 2 + 5, time.time() - t
        assert_no_crash(h)
    finally:
        sock.close()


def test_schema_change_on_live_database(gt, own_db):
    """A migration on the live database (a new table, a new column
    in the table the statement reads) costs no request."""
    h = gt.httpd([db_vhost(gt, own_db, "mdm")], loglevel="info").start()
    try:
        res = concurrently(8, lambda i: ask(gt, h, ("dev_a", "dev_b")[i % 2])[0])
        for r in res:
            assert_token(gt, h, r)
        own_db.sql("mdm", "CREATE TABLE gettoken_migration (id int PRIMARY KEY)")
        own_db.sql("mdm", "ALTER TABLE cert_auth_associations ADD COLUMN note text")
        mark = h.log_mark()
        res = concurrently(8, lambda i: ask(gt, h, ("dev_a", "dev_b")[i % 2])[0])
        for r in res:
            assert not isinstance(r, Exception), r
            assert r.status == 200, (r.status, h.log_since(mark)[-1500:])
    finally:
        h.stop()
    assert_no_crash(h)
