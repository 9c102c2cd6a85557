# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""GetTokenAuditSQL: a row per answered GetToken with the
enrollment id, organisation, service type, jti, status and identity SHA-256;
none for a refusal before any identity was found (400, 401); client values
cut to 255 bytes; a failing audit statement is logged and changes no answer."""
import sqlite3
import time

import pytest

from gt_client import decode_unverified, gettoken_fields, token_from_response
from gt_sql import SERVERS, sql_server

AUDIT_SQL = ('GetTokenAuditSQL "INSERT INTO gettoken_audit (enrollment_id, organization, '
             'service_type, jti, status, identity_sha256) VALUES (%s, %s, %s, %s, %d, %s)"')
COLUMNS = "enrollment_id, organization, service_type, jti, status, identity_sha256"


def audit_rows(db, n, table="gettoken_audit", timeout=5.0):
    deadline = time.time() + timeout
    while True:
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT %s FROM %s ORDER BY rowid" % (COLUMNS, table)).fetchall()
        finally:
            con.close()
        if len(rows) >= n or time.time() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.gt_log("GT01204", "GT01303", "GT01401", "GT01407")
def test_rows_name_enrollment_service_jti_status_and_identity(gt, start_httpd, client):
    db = gt.make_db("audit-rows", [(gt.devices["dev_a"].enrollment_id, gt.devices["dev_a"].sha256)])
    h = start_httpd([gt.vhost(db=db, directives=AUDIT_SQL)])
    a, unenrolled = gt.devices["dev_a"], gt.devices["dev_unenrolled"]

    r = client(h, "dev_a").checkin(gettoken_fields(udid=a.enrollment_id))
    jti = decode_unverified(token_from_response(r))[1]["jti"]
    assert client(h, "dev_unenrolled").checkin(
        gettoken_fields(udid=unenrolled.enrollment_id)).status == 403
    assert client(h, None).checkin(gettoken_fields(udid=a.enrollment_id)).status == 401
    assert client(h, "dev_a").checkin(
        gettoken_fields(service="com.example.none", udid=a.enrollment_id)).status == 400
    # not a GetToken, and a GetToken too broken to parse: no row
    assert client(h, "dev_a").checkin({"MessageType": "Authenticate", "UDID": "X"}).status == 200
    assert client(h, "dev_a").checkin(gettoken_fields()).status == 400

    rows = audit_rows(db, 3)
    assert rows == [
        (a.enrollment_id, "default", "com.apple.maid", jti, 200, a.sha256),
        (unenrolled.enrollment_id, "", "com.apple.maid", "", 403, unenrolled.sha256),
        # (the 401 found no identity: nobody's request, no row)
        # bound, so its organisation was chosen before no service took it
        (a.enrollment_id, "default", "com.example.none", "", 400, a.sha256),
    ], rows


@pytest.mark.gt_log("GT01204", "GT01303", "GT01401")
def test_no_row_without_identity_and_client_values_cut(gt, start_httpd, client):
    db = gt.make_db("audit-cut", [(gt.devices["dev_a"].enrollment_id, gt.devices["dev_a"].sha256)])
    h = start_httpd([gt.vhost(db=db, directives=AUDIT_SQL)])
    a = gt.devices["dev_a"]
    long_udid = "U" * 300 + "\u00e9" * 100          # 500 bytes of UTF-8
    long_type = "com.example." + "t" * 900
    # anybody without a certificate, again and again: 401, no row
    for _ in range(20):
        assert client(h, None).checkin(gettoken_fields(udid=long_udid)).status == 401
    # with an identity: rows, the client's values cut to 255 bytes and marked
    assert client(h, "dev_a").checkin(gettoken_fields(udid=long_udid)).status == 403
    assert client(h, "dev_a").checkin(
        gettoken_fields(service=long_type, udid=a.enrollment_id)).status == 400
    rows = audit_rows(db, 2)
    assert len(rows) == 2, rows
    (udid, _, svc, _, status, sha), (udid2, _, svc2, _, status2, sha2) = rows
    assert (status, sha, svc) == (403, a.sha256, "com.apple.maid")
    assert udid == "U" * 250 + "[...]" and len(udid.encode()) == 255
    assert (status2, sha2, udid2) == (400, a.sha256, a.enrollment_id)
    assert svc2 == long_type[:250] + "[...]"
    # a cut falls between characters, never inside one
    assert client(h, "dev_a").checkin(gettoken_fields(udid="U" * 249 + "\u00e9" * 10)).status == 403
    rows = audit_rows(db, 3)
    assert rows[2][0] == "U" * 249 + "[...]", rows[2]


@pytest.mark.gt_log("GT01303", "GT01801")
def test_failing_audit_statement_changes_no_answer(gt, start_httpd, client):
    db = gt.make_db("audit-fail", [(gt.devices["dev_a"].enrollment_id, gt.devices["dev_a"].sha256)])
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE audit_refusing (enrollment_id, organization, service_type, jti, status,
                                     identity_sha256);
        CREATE TRIGGER audit_refusing_insert BEFORE INSERT ON audit_refusing
        BEGIN SELECT RAISE(ABORT, 'audit store refuses'); END;""")
    con.close()
    sql = AUDIT_SQL.replace("gettoken_audit", "audit_refusing")
    h = start_httpd([gt.vhost(db=db, directives=sql)])
    a = gt.devices["dev_a"]
    mark = h.log_mark()
    r = client(h, "dev_a").checkin(gettoken_fields(udid=a.enrollment_id))
    token_from_response(r)
    lines = h.wait_log(mark, r"GetTokenAuditSQL")
    assert len(lines) == 1 and "audit store refuses" in lines[0] and ":warn]" in lines[0], lines
    assert "mdm-%d.test:%d" % (h.port, h.port) in lines[0], lines[0]
    # a refusal keeps its own status and its one refusal line too
    mark = h.log_mark()
    assert client(h, "dev_unenrolled").checkin(
        gettoken_fields(udid=gt.devices["dev_unenrolled"].enrollment_id)).status == 403
    assert len(h.wait_log(mark, r"GetToken refused \(403\)")) == 1
    assert audit_rows(db, 1, table="audit_refusing", timeout=0) == []


def test_audit_sql_without_mod_dbd_stops_configtest(gt):
    h = gt.httpd([gt.vhost(db="", directives=AUDIT_SQL + "\nGetTokenEnrollmentSQL none",
                           verify_client="require", ca_file=gt.pki.ca_cert_path)],
                 omit_modules=("dbd",))
    rc, out = h.configtest()
    assert rc != 0 and "GetTokenAuditSQL" in out and "mod_dbd" in out, out


@pytest.mark.gt_log("GT01204")
@pytest.mark.parametrize("kind", SERVERS)
def test_rows_on_sql_servers(gt, start_httpd, client, kind):
    """PostgreSQL and MariaDB: the shipped schema's gettoken_audit takes the rows
    (on MariaDB as a user with the schema's GRANTs: INSERT there, no more)."""
    server = sql_server(kind, gt.dir, "%s-audit" % kind)
    try:
        server.create_db("mdm")      # conf/schema/<server>.sql, gettoken_audit included
        a = gt.devices["dev_a"]
        server.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('%s', '%s')"
                   % (a.enrollment_id, a.sha256))
        h = start_httpd([gt.vhost(db_driver=kind, db=server.dbd_params("mdm"), directives=AUDIT_SQL)])
        jti = decode_unverified(token_from_response(
            client(h, "dev_a").checkin(gettoken_fields(udid=a.enrollment_id))))[1]["jti"]
        assert client(h, None).checkin(gettoken_fields(udid=a.enrollment_id)).status == 401
        out = server.sql("mdm", "SELECT CONCAT_WS('|', %s) FROM gettoken_audit ORDER BY answered_at, status"
                         % COLUMNS)
        assert out.split() == ["%s|default|com.apple.maid|%s|200|%s" % (a.enrollment_id, jti, a.sha256)], out
        assert "the answer stands" not in h.read_error_log(), h.log_tail(5)     # no audit failure
    finally:
        server.cleanup()
