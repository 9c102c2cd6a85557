# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""GetTokenWatchPairingSQL: the phone MDM's database says
which enrollments may vouch for watches.  A row: the pairing token is
issued; no row: 403 with one refusal line; database down: 503 with
Retry-After, then recovery; without the directive only the message-shape
rules apply; the directive without mod_dbd stops start-up.  Tokens are
checked with python3-jwt."""
import os
import re
import sqlite3
import time

import jwt
import pytest

from gt_client import token_from_response
from gt_httpd import assert_refused
from pairing_helpers import PAIRING, issue_request, new_watch_udid, sth_of
from gt_pki import REPO

# the README's nanomdm recipe, verbatim (checked below): a device enrollment,
# enabled, whose identity certificate is this one
RECIPE_SQL = ("SELECT 1 FROM enrollments e JOIN cert_auth_associations c ON c.id = e.id "
              "WHERE e.device_id = %s AND c.sha256 = %s AND e.type = 'Device' AND e.enabled")
# a table of our own: which (UDID, certificate) pairs may vouch, so that a
# row for the right UDID but another certificate can be written
VOUCHER_SQL = "SELECT 1 FROM watch_vouchers WHERE udid = %s AND sha256 = %s"
REFUSED_403 = r"refused \(403\): %s: GetTokenWatchPairingSQL has no row for phone %s"
OTHER_SHA256 = "ab" * 32


def nanomdm_tables(db, gt):
    """nanomdm's `enrollments` (the columns the recipe reads, and a few of
    its others) and a vouchers table.  dev_a: a device enrollment, enabled;
    dev_b: an account-driven user enrollment's device channel, which sends
    its enrollment id as UDID."""
    a, b = gt.devices["dev_a"], gt.devices["dev_b"]
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE enrollments (
            id VARCHAR(255) NOT NULL PRIMARY KEY, device_id VARCHAR(255) NOT NULL,
            user_id VARCHAR(255) NULL, type VARCHAR(31) NOT NULL,
            topic VARCHAR(255) NOT NULL, enabled BOOLEAN NOT NULL DEFAULT 1);
        CREATE TABLE watch_vouchers (udid TEXT NOT NULL, sha256 TEXT NOT NULL);
    """)
    con.executemany("INSERT INTO enrollments (id, device_id, type, topic, enabled) "
                    "VALUES (?, ?, ?, 'com.apple.mgmt.test', 1)",
                    [(a.enrollment_id, a.enrollment_id, "Device"),
                     (b.enrollment_id, b.enrollment_id, "User Enrollment (Device)")])
    # dev_a with its own certificate; dev_b only with another one
    con.executemany("INSERT INTO watch_vouchers VALUES (?, ?)",
                    [(a.enrollment_id, a.sha256), (b.enrollment_id, OTHER_SHA256)])
    con.commit()
    con.close()


def sql_exec(db, statement, *args):
    con = sqlite3.connect(db)
    con.execute(statement, args)
    con.commit()
    con.close()


@pytest.fixture(scope="module")
def phones(gt):
    a, b = gt.devices["dev_a"], gt.devices["dev_b"]
    db = gt.make_db("eligibility", [(a.enrollment_id, a.sha256), (b.enrollment_id, b.sha256)])
    nanomdm_tables(db, gt)
    plain = gt.vhost(db=db)
    vouchers = gt.vhost(db=db, directives='GetTokenWatchPairingSQL "%s"' % VOUCHER_SQL)
    recipe = gt.vhost(db=db, directives='GetTokenWatchPairingSQL "%s"' % RECIPE_SQL)
    h = gt.httpd([plain, vouchers, recipe])
    h.start()
    try:
        yield h, db, plain, vouchers, recipe
    finally:
        h.stop()


def issue(gt, vhost, device):
    watch, secret = new_watch_udid(), "sec-" + os.urandom(8).hex()
    return issue_request(gt, vhost.port, device, watch=watch, secret=secret), watch, secret


def assert_pairing_token(gt, vhost, resp, device, watch, secret):
    token = token_from_response(resp)
    claims = jwt.decode(token, gt.pki.maid_rsa.public_key, algorithms=["RS256"])
    assert claims["service_type"] == PAIRING
    assert claims["iss"] == vhost.uuid
    assert claims["phone_udid"] == gt.devices[device].enrollment_id
    assert claims["watch_udid"] == watch
    assert claims["sth"] == sth_of(secret)


def test_phone_with_a_row_gets_a_pairing_token(gt, phones):
    _, _, _, vouchers, recipe = phones
    for vhost in (vouchers, recipe):
        r, watch, secret = issue(gt, vhost, "dev_a")
        assert_pairing_token(gt, vhost, r, "dev_a", watch, secret)


@pytest.mark.gt_log("GT01702")
def test_no_row_403_with_one_refusal_line(gt, phones):
    h, _, _, _, recipe = phones
    udid = gt.devices["dev_b"].enrollment_id
    mark = h.log_mark()
    r, _, _ = issue(gt, recipe, "dev_b")
    line = assert_refused(h, r, 403, REFUSED_403 % (PAIRING, re.escape(udid)), mark)
    assert recipe.server_name in line


@pytest.mark.gt_log("GT01702")
def test_params_are_the_udid_and_the_identity_sha256(gt, phones):
    """dev_b's row names its UDID with another certificate: refused.  dev_a's
    row (UDID, its certificate) is found, so the order is UDID then SHA-256."""
    h, _, _, vouchers, _ = phones
    b = gt.devices["dev_b"]
    mark = h.log_mark()
    r, _, _ = issue(gt, vouchers, "dev_b")
    line = assert_refused(h, r, 403, REFUSED_403 % (PAIRING, re.escape(b.enrollment_id)), mark)
    assert b.sha256 in line
    r, watch, secret = issue(gt, vouchers, "dev_a")
    assert_pairing_token(gt, vouchers, r, "dev_a", watch, secret)


@pytest.mark.gt_log("GT01702")
def test_disabled_enrollment_refused_then_enabled_again(gt, phones):
    h, db, _, _, recipe = phones
    a = gt.devices["dev_a"]
    sql_exec(db, "UPDATE enrollments SET enabled = 0 WHERE id = ?", a.enrollment_id)
    try:
        mark = h.log_mark()
        r, _, _ = issue(gt, recipe, "dev_a")
        assert_refused(h, r, 403, REFUSED_403 % (PAIRING, re.escape(a.enrollment_id)), mark)
    finally:
        sql_exec(db, "UPDATE enrollments SET enabled = 1 WHERE id = ?", a.enrollment_id)
    r, watch, secret = issue(gt, recipe, "dev_a")
    assert_pairing_token(gt, recipe, r, "dev_a", watch, secret)


@pytest.mark.gt_log("GT01707")
def test_without_the_directive_only_the_message_shape_rules(gt, phones):
    h, _, plain, _, recipe = phones
    # dev_b has no row that would let it vouch, and needs none here
    r, watch, secret = issue(gt, plain, "dev_b")
    assert_pairing_token(gt, plain, r, "dev_b", watch, secret)
    # the shape rules still come first where the directive is set
    mark = h.log_mark()
    r = issue_request(gt, recipe.port, "dev_a", phone=gt.devices["dev_b"].enrollment_id,
                      watch=new_watch_udid(), secret="s")
    assert_refused(h, r, 403, r"UDID mismatch", mark)


def test_maid_tokens_do_not_consult_it(gt, phones):
    from gt_client import gettoken_fields
    _, _, _, _, recipe = phones
    with gt.client(recipe.port, "dev_b") as c:
        r = c.checkin(gettoken_fields(udid=gt.devices["dev_b"].enrollment_id))
    jwt.decode(token_from_response(r), gt.pki.maid_rsa.public_key, algorithms=["RS256"])


# --- the database goes away and comes back -----------------------------------------
def unbound_vhost(gt, db):
    """No binding query (a chain mod_ssl verifies stands instead): the
    pairing query is the only one that meets the database's faults."""
    return gt.vhost(db=db, ca_file=gt.pki.ca_cert_path, directives="\n".join([
        "GetTokenEnrollmentSQL none", 'GetTokenWatchPairingSQL "%s"' % VOUCHER_SQL]))


def vouching_db(gt, name):
    db = gt.make_db(name, [])
    nanomdm_tables(db, gt)
    return db


def assert_503(gt, h, vhost):
    mark = h.log_mark()
    r, _, _ = issue(gt, vhost, "dev_a")
    assert_refused(h, r, 503, r"refused \(503\): %s: .*GetTokenWatchPairingSQL" % PAIRING, mark)
    assert re.fullmatch(r"[1-9][0-9]*", r.header("Retry-After") or ""), r.header("Retry-After")


@pytest.mark.gt_log("GT01301", "GT01701")
def test_table_gone_503_then_recovers(gt, start_httpd):
    db = vouching_db(gt, "eligibility-moved")
    v = unbound_vhost(gt, db)
    h = start_httpd([v])
    r, watch, secret = issue(gt, v, "dev_a")
    assert_pairing_token(gt, v, r, "dev_a", watch, secret)
    sql_exec(db, "ALTER TABLE watch_vouchers RENAME TO moved_away")
    assert_503(gt, h, v)
    sql_exec(db, "ALTER TABLE moved_away RENAME TO watch_vouchers")
    r, watch, secret = issue(gt, v, "dev_a")
    assert_pairing_token(gt, v, r, "dev_a", watch, secret)


@pytest.mark.gt_log("GT01301", "GT01701")
def test_database_unreadable_503_then_recovers(gt, start_httpd):
    db = vouching_db(gt, "eligibility-chmod")
    v = unbound_vhost(gt, db)
    os.chmod(db, 0)      # the httpd user can no longer open it
    try:
        h = start_httpd([v])
        assert_503(gt, h, v)
    finally:
        os.chmod(db, 0o644)
    # mod_dbd opens a connection again on a later request: allow it a few
    deadline = time.time() + 10
    while True:
        r, watch, secret = issue(gt, v, "dev_a")
        if r.status != 503 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert_pairing_token(gt, v, r, "dev_a", watch, secret)


# --- start-up --------------------------------------------------------------------
@pytest.mark.gt_log("GT00501")
def test_without_mod_dbd_start_up_refused(gt):
    v = gt.vhost(db="", verify_client="require", ca_file=gt.pki.ca_cert_path,
                 directives='GetTokenEnrollmentSQL none\nGetTokenWatchPairingSQL "%s"'
                            % VOUCHER_SQL)
    h = gt.httpd([v], omit_modules=("dbd",))
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    lines = [l for l in out.splitlines() if "GetTokenWatchPairingSQL" in l]
    assert len(lines) == 1 and "mod_dbd" in lines[0] and v.server_name in lines[0], out
    with pytest.raises(RuntimeError) as refused:
        h.start()
    assert re.search(r"GetTokenWatchPairingSQL in %s.*needs mod_dbd" % re.escape(v.server_name),
                     str(refused.value)), str(refused.value)
    # the same vhost without the directive starts: it was the refusal's cause
    v.directives = "GetTokenEnrollmentSQL none"
    h.write_config()
    rc, out = h.configtest()
    assert rc == 0, out


def test_readme_recipe_is_the_tested_one():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    assert 'GetTokenWatchPairingSQL "%s"' % RECIPE_SQL in readme
