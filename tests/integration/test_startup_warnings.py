# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Start-up warnings for what `apachectl -t` cannot see: each
is logged once, at warn, naming the vhost and the file or directive; a
sound configuration logs none."""
import os
import re
import shutil
import time

import pytest

from gt_client import gettoken_fields, token_from_response
from gt_sql import SERVERS, sql_server

WARN_RX = r"\[gettoken:warn\]"


def gettoken_warnings(h):
    return [l for l in h.read_error_log().splitlines() if re.search(WARN_RX, l)]


def only_warning(h, rx):
    """The one gettoken warning of the start-up; it must match rx and name the vhost."""
    lines = gettoken_warnings(h)
    assert len(lines) == 1, "want exactly one gettoken warning, got:\n" + "\n".join(lines)
    assert re.search(rx, lines[0]), "/%s/ not in: %s" % (rx, lines[0])
    vh = h.vhosts[0]
    assert "%s:%d (%s:" % (vh.server_name, vh.port, h.conf) in lines[0], lines[0]
    return lines[0]


def private_copy(gt, name, mode, owner=None):
    src = gt.pki.maid_rsa.key_path
    dst = os.path.join(gt.dir, name)
    shutil.copyfile(src, dst)
    os.chmod(dst, mode)
    if owner is not None:
        os.chown(dst, owner[1], owner[2])
    return dst


def test_sound_configuration_warns_of_nothing(gt, start_httpd):
    h = start_httpd()
    assert gettoken_warnings(h) == []


@pytest.mark.gt_log("GT00801", "GT01204")
def test_ssl_identity_without_sslverifyclient(gt, start_httpd, client):
    h = start_httpd([gt.vhost(verify_client=None)])
    only_warning(h, r"GetTokenIdentity ssl in .*no SSLVerifyClient applies.*401")
    # what it warns about: every GetToken is refused
    udid = gt.devices["dev_a"].enrollment_id
    assert client(h, "dev_a").checkin(gettoken_fields(udid=udid)).status == 401


@pytest.mark.gt_log("GT00801")
def test_sslverifyclient_none(gt, start_httpd):
    h = start_httpd([gt.vhost(verify_client="none")])
    only_warning(h, r"GetTokenIdentity ssl in .*SSLVerifyClient is none")


def test_sslverifyclient_at_server_level_counts(gt, start_httpd, client):
    h = start_httpd([gt.vhost(verify_client=None)],
                    extra_global="SSLVerifyClient optional_no_ca\nSSLVerifyDepth 3")
    assert gettoken_warnings(h) == []
    udid = gt.devices["dev_a"].enrollment_id
    token_from_response(client(h, "dev_a").checkin(gettoken_fields(udid=udid)))


@pytest.mark.gt_log("GT00803")
def test_mod_dbd_without_dbdriver(gt, start_httpd):
    h = start_httpd([gt.vhost(db="")])
    only_warning(h, r"GetTokenEnrollmentSQL in .*no DBDriver applies")


@pytest.mark.gt_log("GT00804")
def test_key_readable_by_others(gt, start_httpd):
    key = private_copy(gt, "open.key", 0o644)
    h = start_httpd([gt.vhost(signing_key=key)])
    line = only_warning(h, r"GetTokenSigningKey %s in .*open to group or others \(mode 0644"
                        % re.escape(key))
    assert "BEGIN" not in line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the key another owner")
@pytest.mark.gt_log("GT00804")
def test_key_not_owned_by_root(gt, start_httpd):
    key = private_copy(gt, "www.key", 0o600, owner=gt.user)
    h = start_httpd([gt.vhost(signing_key=key)])
    only_warning(h, r"GetTokenSigningKey %s in .*not owned by root" % re.escape(key))


@pytest.mark.gt_log("GT00802")
def test_sqlite_path_typo(gt, start_httpd):
    missing = os.path.join(os.path.dirname(gt.db), "enrolments.db")
    h = start_httpd([gt.vhost(db=missing)])
    only_warning(h, r"the SQLite database %s does not exist" % re.escape(missing))


AUDIT_SQL = ('GetTokenAuditSQL "INSERT INTO gettoken_audit (enrollment_id, organization, '
             'service_type, jti, status, identity_sha256) VALUES (%s, %s, %s, %s, %d, %s)"')


@pytest.mark.skipif(os.geteuid() != 0, reason="the httpd user differs only when run as root")
@pytest.mark.gt_log("GT00802")
def test_sqlite_database_the_httpd_user_cannot_write(gt, start_httpd):
    db = gt.make_db("rootowned", [])
    os.chown(db, 0, 0)              # file root's, 0644: www-data reads only
    h = start_httpd([gt.vhost(db=db, directives=AUDIT_SQL)])
    only_warning(h, r"SQLite database %s cannot be written by the httpd user, who writes "
                    r"the GetTokenAuditSQL table" % re.escape(db))


@pytest.mark.skipif(os.geteuid() != 0, reason="the httpd user differs only when run as root")
@pytest.mark.gt_log("GT00802")
def test_sqlite_directory_the_httpd_user_cannot_write(gt, start_httpd):
    db = gt.make_db("rootdir", [])
    os.chown(os.path.dirname(db), 0, 0)    # the file stays www-data's
    h = start_httpd([gt.vhost(db=db, directives=AUDIT_SQL)])
    only_warning(h, r"SQLite database %s is in a directory \(%s\) the httpd user cannot write"
                 % (re.escape(db), re.escape(os.path.dirname(db))))


def test_read_only_database_is_fine_without_writes(gt, start_httpd):
    db = gt.make_db("readonly", [])
    if os.geteuid() == 0:
        os.chown(db, 0, 0)
        os.chown(os.path.dirname(db), 0, 0)
    h = start_httpd([gt.vhost(db=db)])
    assert gettoken_warnings(h) == []


@pytest.mark.parametrize("server_uuid, rx", [
    ("3F2B6C1E-8D4A-4B7E-9C2F-1A5D3E7B9F00", r"has upper-case letters"),
    ("00000000-0000-0000-0000-000000000000", r"is the nil UUID"),
], ids=["upper-case", "nil"])
@pytest.mark.gt_log("GT00805", "GT00806")
def test_server_uuid(gt, start_httpd, server_uuid, rx):
    h = start_httpd([gt.vhost(uuid=server_uuid)])
    only_warning(h, r"GetTokenServerUUID %s in .*%s" % (server_uuid, rx))


# --- PostgreSQL and MariaDB: a real write as the database user, rolled back -------

@pytest.fixture(scope="module", params=SERVERS)
def sqldb(gt, request):
    """"mdm" with the shipped schema; the httpd user may read the binding only."""
    server = sql_server(request.param, gt.dir, "%s-warnings" % request.param)
    try:
        server.create_db("mdm")
        a = gt.devices["dev_a"]
        server.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('%s', '%s')"
                   % (a.enrollment_id, a.sha256))
        if server.driver == "mysql":
            server.sql(None, "CREATE USER mdm_httpd IDENTIFIED BY 'pw'; "
                             "GRANT SELECT ON mdm.cert_auth_associations TO mdm_httpd")
        else:
            server.sql("mdm", "CREATE ROLE mdm_httpd LOGIN; "
                              "GRANT SELECT ON cert_auth_associations TO mdm_httpd")
        yield server
    finally:
        server.cleanup()


def audit_server(gt, start_httpd, server):
    if server.driver == "mysql":
        params = server.dbd_params("mdm", user="mdm_httpd", password="pw")
    else:
        params = server.dbd_params("mdm").replace("user=%s" % server.user, "user=mdm_httpd")
    return start_httpd([gt.vhost(db_driver=server.driver, db=params, directives=AUDIT_SQL)])


# PostgreSQL refuses the write, MariaDB already the statement's preparation
DENIED_RX = {"pgsql": r"a test write \(rolled back\) to its table failed at start-up: "
                      r".*permission denied for table gettoken_audit",
             "mysql": r"the statement does not prepare as the httpd user at start-up "
                      r"\(no audit rows\): MySQL error 1142: INSERT command denied .*gettoken_audit"}


@pytest.mark.gt_log("GT00807", "GT00810", "GT01801")   # PostgreSQL's ids, MariaDB's
def test_table_the_httpd_user_cannot_write(gt, start_httpd, sqldb, client):
    h = audit_server(gt, start_httpd, sqldb)
    lines = h.wait_log(0, WARN_RX, timeout=10)     # the first child checks
    time.sleep(0.5)
    line = only_warning(h, r"GetTokenAuditSQL in .*" + DENIED_RX[sqldb.driver])
    assert lines == [line]
    # the answer itself is still given, with a warning that no row was written
    a = gt.devices["dev_a"]
    mark = h.log_mark()
    token_from_response(client(h, "dev_a").checkin(gettoken_fields(udid=a.enrollment_id)))
    assert h.wait_log(mark, r"GetTokenAuditSQL in .*the statement failed.*\(the answer stands\)")


def test_writable_table_warns_of_nothing_and_keeps_no_row(gt, start_httpd, sqldb):
    grant = "GRANT INSERT ON %sgettoken_audit TO mdm_httpd"
    revoke = "REVOKE INSERT ON %sgettoken_audit FROM mdm_httpd"
    prefix = "mdm." if sqldb.driver == "mysql" else ""
    sqldb.sql("mdm", grant % prefix)
    try:
        h = audit_server(gt, start_httpd, sqldb)
        assert h.wait_log(0, r"test write \(rolled back\) to its table succeeded", timeout=10)
        assert gettoken_warnings(h) == []
        assert sqldb.sql("mdm", "SELECT count(*) FROM gettoken_audit").strip() == "0"
    finally:
        sqldb.sql("mdm", revoke % prefix)
