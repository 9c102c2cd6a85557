# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""GetToken requests that are refused, each with the status a device expects.

Every refusal must write exactly one mod_gettoken error-log line (at LogLevel
info, no debug) that says why, and nothing token-like; and the request must not
reach the backend."""
import os
import re
import sqlite3

import pytest

from gt_client import checkin_body, gettoken_fields
from gt_httpd import assert_refused, free_port
from gt_sql import SERVERS, need


@pytest.fixture(scope="module")
def err_server(gt):
    h = gt.httpd(loglevel="info")
    try:
        yield h.start()
    finally:
        h.stop()


def udid(gt, dev="dev_a"):
    return gt.devices[dev].enrollment_id


BAD_BODIES = {
    "no-TokenServiceType": (lambda u: {"MessageType": "GetToken", "UDID": u}, r"TokenServiceType"),
    "no-UDID-or-EnrollmentID": (lambda u: {"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"},
                                r"UDID|EnrollmentID"),
    "TokenServiceType-integer": (lambda u: gettoken_fields(service=7, udid=u), r"TokenServiceType"),
    "TokenServiceType-empty": (lambda u: gettoken_fields(service="", udid=u), r"TokenServiceType|service"),
    "UDID-data": (lambda u: gettoken_fields(udid=u.encode()), r"UDID"),
    "UDID-integer": (lambda u: gettoken_fields(udid=12345), r"UDID"),
    "EnrollmentID-integer": (lambda u: gettoken_fields(enrollment_id=42), r"EnrollmentID"),
    "TokenParameters-string": (lambda u: gettoken_fields(udid=u, params="x"), r"TokenParameters"),
    "TokenParameters-array": (lambda u: gettoken_fields(udid=u, params=["a"]), r"TokenParameters"),
    "UserShortName-integer": (lambda u: gettoken_fields(udid=u, UserShortName=5), r"UserShortName"),
    "EnrollmentUserID-data": (lambda u: gettoken_fields(udid=u, EnrollmentUserID=b"x"), r"EnrollmentUserID"),
    "unknown-service": (lambda u: gettoken_fields(service="com.example.unknown", udid=u),
                        r"com\.example\.unknown|TokenServiceType|service"),
    "pairing-no-parameters": (lambda u: gettoken_fields(service="com.apple.watch.pairing", udid=u),
                              r"TokenParameters|SecurityToken|PhoneUDID|WatchUDID|pairing"),
    "pairing-empty-parameters": (lambda u: gettoken_fields(service="com.apple.watch.pairing", udid=u, params={}),
                                 r"TokenParameters|SecurityToken|PhoneUDID|WatchUDID|pairing"),
    "pairing-no-WatchUDID": (lambda u: gettoken_fields(service="com.apple.watch.pairing", udid=u,
                                                       params={"SecurityToken": "st", "PhoneUDID": u}),
                             r"WatchUDID"),
    "pairing-SecurityToken-integer": (lambda u: gettoken_fields(
        service="com.apple.watch.pairing", udid=u,
        params={"SecurityToken": 1, "PhoneUDID": u, "WatchUDID": "W"}), r"SecurityToken"),
}


@pytest.mark.parametrize("fmt", ["xml", "binary"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
@pytest.mark.gt_log("GT01401", "GT01407", "GT01703")
def test_bad_request_400(err_server, client, gt, case, fmt):
    make, reason = BAD_BODIES[case]
    c = client(err_server, "dev_a")
    mark = err_server.log_mark()
    r = c.request(checkin_body(make(udid(gt)), fmt))
    assert_refused(err_server, r, 400, reason, mark)


@pytest.mark.gt_log("GT01204")
def test_no_client_certificate_401(err_server, client, gt):
    c = client(err_server, None)
    mark = err_server.log_mark()
    r = c.checkin(gettoken_fields(udid=udid(gt)))
    assert_refused(err_server, r, 401, r"certificate|identity", mark)


@pytest.mark.parametrize("device,enrolled_as", [
    ("dev_unenrolled", "dev_unenrolled"),   # a CA-signed cert with no enrollment row
    ("dev_b", "dev_a"),                     # a cert enrolled, but for another UDID
    ("dev_a", "dev_user"),                  # ... or for another (user) enrollment
    ("dev_rogue", "dev_rogue"),             # a cert from a CA nobody trusts, not enrolled
])
@pytest.mark.gt_log("GT01303")
def test_identity_not_bound_403(err_server, client, gt, device, enrolled_as):
    target = gt.devices[enrolled_as]
    fields = (gettoken_fields(enrollment_id=target.enrollment_id) if enrolled_as == "dev_user"
              else gettoken_fields(udid=target.enrollment_id))
    c = client(err_server, device)
    mark = err_server.log_mark()
    r = c.checkin(fields)
    assert_refused(err_server, r, 403, re.escape(target.enrollment_id) + r"|enrol|bound|associat|belong", mark)


@pytest.mark.gt_log("GT01303")
def test_sql_injection_in_udid_403(err_server, client, gt):
    c = client(err_server, "dev_a")
    mark = err_server.log_mark()
    r = c.checkin(gettoken_fields(udid="x' OR '1'='1"))
    assert_refused(err_server, r, 403, r"enrol|bound|associat|belong|x' OR", mark)


def test_non_gettoken_still_passes_without_certificate(err_server, client):
    # identity is only demanded of GetToken messages
    c = client(err_server, None)
    r = c.checkin({"MessageType": "Authenticate", "UDID": "U", "Topic": "com.apple.mgmt.x"})
    assert r.status == 200 and r.body.startswith(b"BACKEND-OK")


def assert_503(h, c, gt):
    mark = h.log_mark()
    r = c.checkin(gettoken_fields(udid=udid(gt)))
    line = assert_refused(h, r, 503, r"database|dbd|sql|query|connect", mark)
    ra = r.header("Retry-After")
    assert ra is not None and re.fullmatch(r"\s*[1-9][0-9]*\s*|.*GMT", ra), ra
    return line


@pytest.mark.gt_log("GT00802", "GT01302")
def test_database_missing_503(start_httpd, client, gt):
    h = start_httpd([gt.vhost(db="/nonexistent-gettoken-dir/enroll.db")], loglevel="info")
    assert_503(h, client(h, "dev_a"), gt)


@pytest.mark.gt_log("GT00802", "GT01302")
def test_database_unreadable_503(start_httpd, client, gt):
    db = gt.make_db("unreadable", [(udid(gt), gt.devices["dev_a"].sha256)])
    os.chmod(db, 0)     # the httpd user (www-data, owner) can no longer open it
    h = start_httpd([gt.vhost(db=db)], loglevel="info")
    assert_503(h, client(h, "dev_a"), gt)


@pytest.mark.gt_log("GT01302")
def test_database_without_table_503(start_httpd, client, gt):
    db = gt.make_db("notable", [])
    con = sqlite3.connect(db)
    con.execute("DROP TABLE cert_auth_associations")
    con.commit()
    con.close()
    h = start_httpd([gt.vhost(db=db)], loglevel="info")
    assert_503(h, client(h, "dev_a"), gt)


UNREACHABLE = {"pgsql": "host=127.0.0.1 port=%d dbname=mdm user=mdm connect_timeout=2",
               "mysql": "host=127.0.0.1 port=%d user=mdm pass=x dbname=mdm"}


@pytest.mark.gt_log("GT01302")
@pytest.mark.parametrize("kind", SERVERS)
def test_sql_server_unreachable_503(start_httpd, client, gt, kind):
    need(kind)
    params = UNREACHABLE[kind] % free_port()
    h = start_httpd([gt.vhost(db_driver=kind, db=params)], loglevel="info")
    assert_503(h, client(h, "dev_a"), gt)


@pytest.mark.gt_log("GT00802", "GT01302")
def test_database_recovers_after_503(start_httpd, client, gt):
    """503 is temporary: once the DB is readable again the same request succeeds."""
    db = gt.make_db("flaky", [(udid(gt), gt.devices["dev_a"].sha256)])
    os.chmod(db, 0)
    h = start_httpd([gt.vhost(db=db)], loglevel="info")
    c = client(h, "dev_a")
    assert_503(h, c, gt)
    os.chmod(db, 0o644)
    r = c.checkin(gettoken_fields(udid=udid(gt)))
    assert r.status == 200, (r.status, h.log_tail(5))
