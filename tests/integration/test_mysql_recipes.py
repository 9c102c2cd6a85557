# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""README's MySQL recipes, run as written on MariaDB (DBDriver mysql): every
`DBDriver mysql` block of README.md is one of these tests, with only the
server's address, port and password put in.  nanomdm's tables as its MySQL
schema names them (no prefix), Fleet's with the prefix nano_, and database
users that may read those tables and nothing else.  The README's option file
(DBDParams group=gettoken) is what bounds a server that never answers.

Tokens are checked with python3-jwt (gt_client.verify_maid_token)."""
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import jwt
import pytest

from gt_backend import RecordingBackend
from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import GT_LINE_RX, assert_refused
from gt_mysql import CLIENT
from pairing_helpers import PAIRING, issue_request, new_watch_udid, sth_of
from gt_pki import REPO
from gt_sign import mdm_signature
from gt_sql import NANOMDM_MYSQL_TABLE, need, sql_server

RECIPE_PASS = "recipe-pass"
PAIRING_SQL = ("SELECT 1 FROM enrollments e JOIN cert_auth_associations c ON c.id = e.id "
               "WHERE e.device_id = %s AND c.sha256 = %s AND e.type = 'Device' AND e.enabled")

# nanomdm's MySQL enrollments (storage/mysql/schema.sql): the columns the
# recipes read, with nanomdm's types, keys and checks; its
# cert_auth_associations is gt_sql's
NANOMDM_ENROLLMENTS = """
CREATE TABLE enrollments (
    id        VARCHAR(255) NOT NULL,
    device_id VARCHAR(255) NOT NULL,
    user_id   VARCHAR(255) NULL,
    type      VARCHAR(31)  NOT NULL,
    topic      VARCHAR(255) NOT NULL,
    push_magic VARCHAR(127) NOT NULL,
    token_hex  VARCHAR(255) NOT NULL,
    enabled            BOOLEAN NOT NULL DEFAULT 1,
    token_update_tally INTEGER NOT NULL DEFAULT 1,
    last_seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CHECK (id != ''),
    UNIQUE (user_id),
    INDEX (type)
);
"""

# Fleet's (server/datastore/mysql/schema.sql): the same with the prefix, its
# collation and its tinyint(1) for enabled
FLEET_TABLES = """
CREATE TABLE nano_enrollments (
  id varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  device_id varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  user_id varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  type varchar(31) COLLATE utf8mb4_unicode_ci NOT NULL,
  topic varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  push_magic varchar(127) COLLATE utf8mb4_unicode_ci NOT NULL,
  token_hex varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  enabled tinyint(1) NOT NULL DEFAULT '1',
  token_update_tally int NOT NULL DEFAULT '1',
  last_seen_at timestamp NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY user_id (user_id),
  KEY device_id (device_id),
  KEY type (type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE nano_cert_auth_associations (
  id varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  sha256 char(64) COLLATE utf8mb4_unicode_ci NOT NULL,
  created_at timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  cert_not_valid_after timestamp NULL DEFAULT NULL,
  renew_command_uuid varchar(127) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  PRIMARY KEY (id, sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""


def readme():
    with open(os.path.join(REPO, "README.md")) as f:
        return f.read()


def mysql_recipes():
    return [b for b in re.findall(r"```apache\n(.*?)```", readme(), re.S) if "DBDriver mysql" in b]


def recipe(dbname):
    found = [b for b in mysql_recipes() if "dbname=%s " % dbname in b]
    assert len(found) == 1, found
    return found[0]


def option_file():
    found = [b for b in re.findall(r"```ini\n(.*?)```", readme(), re.S) if "[gettoken]" in b]
    assert len(found) == 1, found
    return found[0]


def adapt(block, db_port, backend_port):
    """The recipe with the test's database server and backend put in."""
    block = re.sub(r"host=\S+ port=\d+", "host=127.0.0.1 port=%d" % db_port, block)
    block = block.replace("pass=...", "pass=" + RECIPE_PASS)
    return re.sub(r"ProxyPass http://127\.0\.0\.1:\d+/", "ProxyPass http://127.0.0.1:%d/" % backend_port,
                  block)


def create_user(server, user, grants):
    stmts = []
    for host in ("127.0.0.1", "localhost"):
        stmts.append("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'" % (user, host, RECIPE_PASS))
        stmts += ["GRANT %s TO '%s'@'%s'" % (g, user, host) for g in grants]
    server.sql(None, ";\n".join(stmts))


def enroll(server, db, prefix, dev, kind="Device", enabled=1, device_id=None):
    server.sql(db, "INSERT INTO %senrollments (id, device_id, type, topic, push_magic, token_hex, "
                   "enabled, last_seen_at) VALUES ('%s', '%s', '%s', 'com.apple.mgmt.test', 'pm', "
                   "'00', %d, NOW())" % (prefix, dev.enrollment_id, device_id or dev.enrollment_id,
                                         kind, enabled))
    server.sql(db, "INSERT INTO %scert_auth_associations (id, sha256) VALUES ('%s', '%s')"
               % (prefix, dev.enrollment_id, dev.sha256))


@pytest.fixture(scope="module")
def mariadb(gt):
    """nanomdm's and Fleet's databases; their users read them, nothing else."""
    need("mysql")
    server = sql_server("mysql", gt.dir, "mysql-recipes")
    try:
        a, b, u = gt.devices["dev_a"], gt.devices["dev_b"], gt.devices["dev_user"]
        server.sql(None, "CREATE DATABASE nanomdm; CREATE DATABASE fleet")
        server.sql("nanomdm", NANOMDM_ENROLLMENTS + NANOMDM_MYSQL_TABLE)
        server.sql("fleet", FLEET_TABLES)
        for db, prefix in (("nanomdm", ""), ("fleet", "nano_")):
            enroll(server, db, prefix, a)
            enroll(server, db, prefix, b, enabled=0)             # checked out
            enroll(server, db, prefix, u, kind="User Enrollment", device_id=a.enrollment_id)
        create_user(server, "gettoken", ["SELECT ON nanomdm.enrollments",
                                         "SELECT ON nanomdm.cert_auth_associations"])
        create_user(server, "gettoken_ro", ["SELECT ON fleet.nano_enrollments",
                                            "SELECT ON fleet.nano_cert_auth_associations"])
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def backend():
    with RecordingBackend() as b:
        yield b


@pytest.fixture
def option_home(gt, monkeypatch):
    """The README's option file where the client library in httpd reads it."""
    home = os.path.join(gt.dir, "mariadb-home-%d" % time.time_ns())
    os.makedirs(home)
    os.chmod(home, 0o755)
    with open(os.path.join(home, "my.cnf"), "w") as f:
        f.write(option_file())
    os.chmod(os.path.join(home, "my.cnf"), 0o644)
    monkeypatch.setenv("MARIADB_HOME", home)
    return home


def recipe_vhost(gt, block, extra=""):
    return gt.vhost(db="", backend=False, directives=block + "\n" + extra)


def test_every_mysql_recipe_is_one_of_these():
    blocks = mysql_recipes()
    assert len(blocks) == 2, blocks
    assert sorted(recipe(n) for n in ("nanomdm", "fleet")) == sorted(blocks)
    for b in blocks:
        assert "group=gettoken" in b and "connecttimeout" not in b, b


@pytest.mark.gt_log("GT01303")
def test_nanomdm_recipe(gt, mariadb, backend, option_home, start_httpd, client):
    v = recipe_vhost(gt, adapt(recipe("nanomdm"), mariadb.port, backend.port))
    h = start_httpd([v], loglevel="info")
    for dev in ("dev_a", "dev_user"):
        d = gt.devices[dev]
        fields = (gettoken_fields(enrollment_id=d.enrollment_id) if dev == "dev_user"
                  else gettoken_fields(udid=d.enrollment_id))
        r = client(h, dev).checkin(fields)
        verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v.uuid, time.time())
    for dev in ("dev_b", "dev_unenrolled"):       # checked out; never enrolled
        mark = h.log_mark()
        r = client(h, dev).checkin(gettoken_fields(udid=gt.devices[dev].enrollment_id))
        assert_refused(h, r, 403, r"is not bound to the enrollment", mark)
    # other check-ins reach nanomdm untouched
    body = checkin_body({"MessageType": "TokenUpdate", "UDID": gt.devices["dev_a"].enrollment_id,
                         "Topic": "com.apple.mgmt.test"})
    r = client(h, "dev_a").request(body)
    rec = backend.wait(r.test_id)
    assert rec is not None and rec.body == body and rec.target == "/checkin", (r.status, rec)


@pytest.mark.gt_log("GT01702")
def test_nanomdm_watch_pairing_recipe(gt, mariadb, backend, option_home, start_httpd):
    """README's GetTokenWatchPairingSQL, verbatim, on nanomdm's MySQL tables."""
    assert 'GetTokenWatchPairingSQL "%s"' % PAIRING_SQL in readme()
    v = recipe_vhost(gt, adapt(recipe("nanomdm"), mariadb.port, backend.port),
                     'GetTokenWatchPairingSQL "%s"' % PAIRING_SQL)
    h = start_httpd([v])
    watch, secret = new_watch_udid(), "sec-" + os.urandom(8).hex()
    r = issue_request(gt, v.port, "dev_a", watch=watch, secret=secret)
    claims = jwt.decode(token_from_response(r), gt.pki.maid_rsa.public_key, algorithms=["RS256"])
    assert (claims["service_type"], claims["watch_udid"], claims["sth"]) == (PAIRING, watch, sth_of(secret))
    # bound, enabled, but the device channel of a user enrollment: no phone to vouch
    a = gt.devices["dev_a"]
    mariadb.sql("nanomdm", "UPDATE enrollments SET type = 'User Enrollment (Device)' WHERE id = '%s'"
                % a.enrollment_id)
    try:
        mark = h.log_mark()
        r = issue_request(gt, v.port, "dev_a", watch=watch, secret=secret)
        assert_refused(h, r, 403, r"GetTokenWatchPairingSQL has no row for phone %s"
                       % re.escape(a.enrollment_id), mark)
    finally:
        mariadb.sql("nanomdm", "UPDATE enrollments SET type = 'Device' WHERE id = '%s'" % a.enrollment_id)
    assert token_from_response(issue_request(gt, v.port, "dev_a", watch=watch, secret=secret))


def fleet_request(gt, h, device, body):
    c = gt.client(h.port, None)            # no client certificate: Mdm-Signature only
    try:
        return c.request(body, path="/mdm/apple/mdm", keep=False,
                         headers={"Mdm-Signature": mdm_signature(body, gt.devices[device])})
    finally:
        c.close()


@pytest.mark.gt_log("GT01303")
def test_fleet_recipe(gt, mariadb, backend, option_home, start_httpd):
    v = recipe_vhost(gt, adapt(recipe("fleet"), mariadb.port, backend.port))
    h = start_httpd([v], loglevel="info")
    a = gt.devices["dev_a"]
    r = fleet_request(gt, h, "dev_a", checkin_body(gettoken_fields(udid=a.enrollment_id)))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v.uuid, time.time())
    assert backend.wait(r.test_id, timeout=0) is None
    u = gt.devices["dev_user"]
    r = fleet_request(gt, h, "dev_user", checkin_body(gettoken_fields(enrollment_id=u.enrollment_id)))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v.uuid, time.time())
    mark = h.log_mark()
    b = gt.devices["dev_b"]
    r = fleet_request(gt, h, "dev_b", checkin_body(gettoken_fields(udid=b.enrollment_id)))
    assert_refused(h, r, 403, r"is not bound to the enrollment", mark)
    # a command result (no MessageType) passes to Fleet byte for byte
    body = checkin_body({"UDID": a.enrollment_id, "Status": "Acknowledged",
                         "CommandUUID": str(uuid.uuid4())})
    r = fleet_request(gt, h, "dev_a", body)
    rec = backend.wait(r.test_id)
    assert rec is not None and rec.body == body and rec.target == "/mdm/apple/mdm", (r.status, rec)


def test_fleet_recipe_user_reads_only_its_two_tables(gt, mariadb):
    grants = mariadb.sql(None, "SHOW GRANTS FOR 'gettoken_ro'@'127.0.0.1'")
    assert "ON `fleet`.`nano_enrollments`" in grants and "ON `fleet`.`nano_cert_auth_associations`" in grants
    assert not re.search(r"GRANT (?!USAGE)[^\n]* ON \*\.\*", grants), grants
    assert "INSERT" not in grants and "UPDATE" not in grants, grants


@pytest.mark.gt_log("GT01302")
def test_option_file_bounds_a_server_that_never_answers(gt, option_home, start_httpd):
    """A server that accepts connections and never answers: with the README's
    option file every request is a 503 with Retry-After within seconds
    (without it, apr-util's driver would wait for good)."""
    need("mysql")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)                       # never accepted, never answered
    try:
        v = recipe_vhost(gt, adapt(recipe("fleet"), sock.getsockname()[1], 9))
        h = start_httpd([v], loglevel="info")
        results = [None] * 3

        def one(i):
            t = time.time()
            r = fleet_request(gt, h, "dev_a", checkin_body(
                gettoken_fields(udid=gt.devices["dev_a"].enrollment_id)))
            results[i] = (r, time.time() - t)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r, took in results:
            assert r.status == 503 and re.fullmatch(r"[1-9][0-9]*", r.header("Retry-After") or ""), r.status
            assert took < 20, took       # connect-timeout 3 (and a retry), not forever
        assert h.wait_log(0, GT_LINE_RX + r".*\(503\)")
    finally:
        sock.close()


@pytest.mark.gt_log("GT01302")
def test_option_file_bounds_a_query_behind_a_lock(gt, mariadb, backend, option_home, start_httpd):
    """A query stuck behind another session's table lock ends at the option
    file's max_statement_time as a 503, and succeeds once the lock is gone."""
    v = recipe_vhost(gt, adapt(recipe("fleet"), mariadb.port, backend.port))
    h = start_httpd([v], loglevel="info")
    a = gt.devices["dev_a"]
    body = checkin_body(gettoken_fields(udid=a.enrollment_id))
    verify_maid_token(token_from_response(fleet_request(gt, h, "dev_a", body)),
                      gt.pki.maid_rsa.public_key, v.uuid, time.time())
    locker = subprocess.Popen([CLIENT, "--no-defaults", "-uroot", "-S", mariadb.sock, "fleet", "-e",
                               "LOCK TABLES nano_cert_auth_associations WRITE; SELECT SLEEP(60)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not mariadb.sql(None, "SELECT 1 FROM information_schema.processlist "
                                                               "WHERE info = 'SELECT SLEEP(60)'").strip():
            time.sleep(0.1)
        mark = h.log_mark()
        t = time.time()
        r = fleet_request(gt, h, "dev_a", body)
        took = time.time() - t
        assert r.status == 503 and re.fullmatch(r"[1-9][0-9]*", r.header("Retry-After") or ""), r.status
        assert 2 < took < 10, took          # max_statement_time 3, not retried
        lines = h.wait_log(mark, GT_LINE_RX + r".*\(503\)")
        assert len(lines) == 1 and re.search(r"GetTokenEnrollmentSQL failed: MySQL error 1969: "
                                             r".*max_statement_time", lines[0]), lines
    finally:
        locker.kill()
        locker.wait(10)
        ids = mariadb.sql(None, "SELECT id FROM information_schema.processlist "
                                "WHERE info = 'SELECT SLEEP(60)'").split()
        for i in ids:
            mariadb.sql(None, "KILL %s" % i)
    for _ in range(20):
        r = fleet_request(gt, h, "dev_a", body)
        if r.status == 200:
            break
        time.sleep(0.3)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v.uuid, time.time())
