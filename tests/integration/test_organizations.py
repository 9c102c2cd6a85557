# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Several Apple Business/School Manager organisations behind one check-in URL:
GetTokenOrganization, GetTokenOrganizationSQL, and
GetTokenServices for an MDM that answers some GetToken types itself.

One vhost holds three organisations besides its default: "north" (RSA, with
its certificate), "south" (EC P-256, no certificate) and "vault" (RSA, in
SoftHSM).  Devices are UDIDs bound to dev_a's identity certificate; the
table gettoken_device_organization (conf/schema) says which is whose."""
import hashlib
import os
import re
import sqlite3
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gt_client import (checkin_body, decode_unverified, gettoken_fields, signature_valid,
                       token_from_response, verify_maid_token)
from gt_hsm import pkcs11_uri, softhsm_token
from gt_httpd import assert_refused
from pairing_helpers import PAIRING, sth_of, new_watch_udid
from gt_sql import SERVERS, executed, log_statements, sql_server, statement_log_mark
from gt_pki import new_udid

ORG_SQL = ("GetTokenOrganizationSQL \"SELECT organization FROM gettoken_device_organization "
           "WHERE enrollment_id = %s\"")


def alter_db(db, sql):
    con = sqlite3.connect(db)
    con.execute(sql)
    con.commit()
    con.close()


class Org:
    def __init__(self, name, public_key, where, cert=None):
        self.name, self.public_key, self.where, self.cert = name, public_key, where, cert
        self.uuid = str(uuid.uuid4())
        self.udid = new_udid()

    def directive(self):
        return "GetTokenOrganization %s %s \"%s\"%s" % (
            self.name, self.uuid, self.where, " " + self.cert if self.cert else "")


def fingerprint(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def org_db(gt, name, assignments, bound=()):
    """An SQLite DB (shipped schema) where dev_a's certificate is bound to
    every UDID of assignments (udid -> organisation or None) and of bound."""
    cert = gt.devices["dev_a"].sha256
    udids = list(assignments) + list(bound)
    path = gt.make_db(name, [(u, cert) for u in udids])
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO gettoken_device_organization VALUES (?, ?)",
                    [(u, o) for u, o in assignments.items() if o is not None])
    con.commit()
    con.close()
    return path


class Fleet:
    """The three-organisation server and what the tests need to check it."""

    def __init__(self, gt):
        pki = gt.pki
        self.vault_key = rsa.generate_private_key(65537, 2048)
        self.pairing_key = ec.generate_private_key(ec.SECP256R1())
        self.orgs = {o.name: o for o in (
            Org("north", pki.maid_rsa2.public_key, pki.maid_rsa2.key_path, pki.maid_rsa2.cert_path),
            Org("south", pki.maid_ec.public_key, pki.maid_ec.key_path),
            Org("vault", self.vault_key.public_key(), pkcs11_uri("vault-token")))}
        self.default_udid = new_udid()          # no row: the default organisation
        self.stray_udid = new_udid()            # a row naming an undefined organisation
        assignments = {o.udid: o.name for o in self.orgs.values()}
        assignments[self.stray_udid] = "atlantis"
        self.db = org_db(gt, "orgs", assignments, bound=[self.default_udid])
        pairing_path = gt.pki.path("org-pairing.key")
        with open(pairing_path, "wb") as f:
            f.write(self.pairing_key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        os.chmod(pairing_path, 0o600)
        lines = [o.directive() for o in self.orgs.values()]
        lines += [ORG_SQL, "GetTokenWatchPairingKey %s" % pairing_path]
        self.vhost = gt.vhost(db=self.db, directives="\n".join(lines))
        self.h = gt.httpd([self.vhost], load_echo=True)
        self.hsm_conf = softhsm_token(os.path.join(gt.dir, "softhsm-orgs"),
                                      {"vault-token": (self.vault_key, "b2")})

    def ask(self, gt, udid, service="com.apple.maid", params=None):
        with gt.client(self.vhost.port, "dev_a") as c:
            return c.checkin(gettoken_fields(service, udid=udid, params=params), keep=False)


@pytest.fixture(scope="module")
def fleet(gt):
    f = Fleet(gt)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", f.hsm_conf)
        f.h.start()
    try:
        yield f
    finally:
        f.h.stop()


# --- each organisation signs its own devices -----------------------------------
@pytest.mark.parametrize("name", ["north", "south", "vault"])
def test_maid_token_signed_by_the_device_organisation(gt, fleet, name):
    org = fleet.orgs[name]
    r = fleet.ask(gt, org.udid)
    token = token_from_response(r)
    verify_maid_token(token, org.public_key, org.uuid, time.time())
    # no other organisation's key (nor the default's) verifies it
    others = [o.public_key for o in fleet.orgs.values() if o is not org] + [gt.pki.maid_rsa.public_key]
    for key in others:
        if type(key) is type(org.public_key):
            assert not signature_valid(token, key)
    lines = fleet.h.access_lines(r.test_id)
    assert lines and " org=%s " % name in lines[0], lines


def test_no_row_falls_back_to_the_default_organisation(gt, fleet):
    r = fleet.ask(gt, fleet.default_udid)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, fleet.vhost.uuid, time.time())
    lines = fleet.h.access_lines(r.test_id)
    assert lines and " org=default " in lines[0], lines


@pytest.mark.gt_log("GT01003")
def test_undefined_organisation_500_names_it(gt, fleet):
    mark = fleet.h.log_mark()
    r = fleet.ask(gt, fleet.stray_udid)
    line = assert_refused(fleet.h, r, 500, r"GetTokenOrganizationSQL.*'atlantis'", mark)
    assert fleet.stray_udid in line


@pytest.mark.gt_log("GT01103")
def test_organisation_query_runs_after_the_binding(gt, fleet):
    """A certificate not bound to the UDID is refused whatever organisation
    the UDID belongs to (the binding comes first)."""
    org = fleet.orgs["north"]
    mark = fleet.h.log_mark()
    with gt.client(fleet.vhost.port, "dev_b") as c:
        r = c.checkin(gettoken_fields(udid=org.udid), keep=False)
    assert_refused(fleet.h, r, 403, r"is not bound to the enrollment", mark)


# --- watch pairing tokens per organisation -------------------------------------
def pairing_claims(gt, fleet, udid, key):
    watch, secret = new_watch_udid(), "sec-" + uuid.uuid4().hex
    r = fleet.ask(gt, udid, PAIRING, {"SecurityToken": secret, "PhoneUDID": udid, "WatchUDID": watch})
    token = token_from_response(r)
    assert signature_valid(token, key), "the pairing token does not verify with the expected key"
    claims = decode_unverified(token)[1]
    assert claims["phone_udid"] == udid and claims["watch_udid"] == watch
    assert claims["sth"] == sth_of(secret)
    return token, claims


@pytest.mark.parametrize("name", ["north", "south", "vault"])
def test_pairing_token_signed_by_the_device_organisation(gt, fleet, name):
    org = fleet.orgs[name]
    token, claims = pairing_claims(gt, fleet, org.udid, org.public_key)
    assert claims["iss"] == org.uuid
    # GetTokenWatchPairingKey replaces the default organisation's key only
    assert not signature_valid(token, fleet.pairing_key.public_key())


def test_pairing_key_replaces_the_default_organisation_key(gt, fleet):
    token, claims = pairing_claims(gt, fleet, fleet.default_udid, fleet.pairing_key.public_key())
    assert claims["iss"] == fleet.vhost.uuid
    assert not signature_valid(token, gt.pki.maid_rsa.public_key)


# --- the public hook sees the organisation --------------------------------------
@pytest.mark.parametrize("name", ["north", "vault", None])
def test_third_party_service_sees_the_organisation(gt, fleet, name):
    org = fleet.orgs.get(name)
    udid = org.udid if org else fleet.default_udid
    r = fleet.ask(gt, udid, "com.example.organization")
    want = "%s %s" % (name, org.uuid) if org else "default %s" % fleet.vhost.uuid
    assert token_from_response(r) == want


# --- start-up notice --------------------------------------------------------------
def test_startup_notice_per_organisation(gt, fleet):
    log = fleet.h.read_error_log()
    expect = [(o.name, o.uuid, "RS256" if isinstance(o.public_key, rsa.RSAPublicKey) else "ES256",
               fingerprint(o.public_key)) for o in fleet.orgs.values()]
    expect.append(("default", fleet.vhost.uuid, "RS256", fingerprint(gt.pki.maid_rsa.public_key)))
    for name, server_uuid, alg, fp in expect:
        lines = [l for l in log.splitlines() if "organisation '%s'" % name in l and ":notice]" in l]
        assert len(lines) == 1, (name, lines)
        line = lines[0]
        assert fleet.vhost.server_name in line and server_uuid in line, line
        assert alg in line and fp in line, line
    assert "pin-value" not in log
    assert "PRIVATE KEY" not in log


# --- no default organisation ---------------------------------------------------------
@pytest.mark.gt_log("GT01004")
def test_without_default_unassigned_device_403(gt, start_httpd, client):
    north_udid, lost_udid = new_udid(), new_udid()
    db = org_db(gt, "nodefault", {north_udid: "north"}, bound=[lost_udid])
    north_uuid = str(uuid.uuid4())
    v = gt.vhost(db=db, uuid=None, signing_key=None, directives="\n".join([
        "GetTokenOrganization north %s %s" % (north_uuid, gt.pki.maid_ec.key_path), ORG_SQL]))
    h = start_httpd([v])
    c = client(h, "dev_a")
    r = c.checkin(gettoken_fields(udid=north_udid))
    verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, north_uuid, time.time())
    mark = h.log_mark()
    r = c.checkin(gettoken_fields(udid=lost_udid))
    assert_refused(h, r, 403, r"no default organisation", mark)


# --- the organisation database goes away and comes back -------------------------------
def unbound_vhost(gt, db, org_uuid, key):
    """No binding query (a chain mod_ssl verifies stands instead): the
    organisation query is the only one that meets the database's faults."""
    return gt.vhost(db=db, ca_file=gt.pki.ca_cert_path, directives="\n".join([
        "GetTokenEnrollmentSQL none",
        "GetTokenOrganization north %s %s" % (org_uuid, key), ORG_SQL]))


def assert_org_503(h, c, udid):
    mark = h.log_mark()
    r = c.checkin(gettoken_fields(udid=udid))
    assert_refused(h, r, 503, r"GetTokenOrganizationSQL failed", mark)
    assert re.fullmatch(r"[1-9][0-9]*", r.header("Retry-After") or ""), r.header("Retry-After")


@pytest.mark.gt_log("GT01101", "GT01301")
def test_sqlite_organisation_table_gone_503_then_recovers(gt, start_httpd, client):
    udid = new_udid()
    db = org_db(gt, "flaky", {udid: "north"})
    north_uuid = str(uuid.uuid4())
    h = start_httpd([unbound_vhost(gt, db, north_uuid, gt.pki.maid_ec.key_path)])
    c = client(h, "dev_a")
    token_from_response(c.checkin(gettoken_fields(udid=udid)))

    alter_db(db, "ALTER TABLE gettoken_device_organization RENAME TO moved_away")
    assert_org_503(h, c, udid)
    alter_db(db, "ALTER TABLE moved_away RENAME TO gettoken_device_organization")
    r = c.checkin(gettoken_fields(udid=udid))
    verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, north_uuid, time.time())


@pytest.mark.gt_log("GT01101", "GT01301")
def test_sqlite_database_unreadable_503_then_recovers(gt, start_httpd, client):
    udid = new_udid()
    db = org_db(gt, "chmod", {udid: "north"})
    north_uuid = str(uuid.uuid4())
    os.chmod(db, 0)      # the httpd user can no longer open it
    try:
        h = start_httpd([unbound_vhost(gt, db, north_uuid, gt.pki.maid_rsa2.key_path)])
        c = client(h, "dev_a")
        assert_org_503(h, c, udid)
    finally:
        os.chmod(db, 0o644)
    r = c.checkin(gettoken_fields(udid=udid))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa2.public_key, north_uuid, time.time())


@pytest.mark.gt_log("GT01101", "GT01301")
@pytest.mark.parametrize("kind", SERVERS)
def test_sql_server_stopped_503_then_recovers(gt, start_httpd, client, kind):
    pg = sql_server(kind, gt.dir, "%s-orgs" % kind)
    try:
        pg.create_db("mdm")
        udid = new_udid()
        pg.sql("mdm", "INSERT INTO gettoken_device_organization VALUES ('%s', 'north')" % udid)
        north_uuid = str(uuid.uuid4())
        v = unbound_vhost(gt, pg.dbd_params("mdm"), north_uuid, gt.pki.maid_ec.key_path)
        v.db_driver = kind
        h = start_httpd([v])
        c = client(h, "dev_a")
        verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                          gt.pki.maid_ec.public_key, north_uuid, time.time())
        pg.stop()
        assert_org_503(h, c, udid)
        pg.start()
        assert pg.wait_ready()
        # the pooled connection the server dropped is re-opened: no restart of httpd
        for _ in range(10):
            r = c.checkin(gettoken_fields(udid=udid))
            if r.status == 200:
                break
            assert r.status == 503, (r.status, h.log_tail(3))
            time.sleep(0.3)
        verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, north_uuid, time.time())
        # a pooled connection the server drops is re-opened and the query
        # retried: it costs no request a 503
        assert pg.kill_connections("mdm") >= 1
        verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                          gt.pki.maid_ec.public_key, north_uuid, time.time())
    finally:
        pg.cleanup()


# --- the binding and the organisation asked in one statement ------------------------
def bound_vhost(gt, db, org_uuid, key, org_sql=ORG_SQL, **kw):
    """The default GetTokenEnrollmentSQL and an organisation query: the two
    are asked of the database together."""
    return gt.vhost(db=db, directives="\n".join([
        "GetTokenOrganization north %s %s" % (org_uuid, key), org_sql]), **kw)


@pytest.mark.gt_log("GT01103")
@pytest.mark.parametrize("kind", SERVERS)
def test_one_statement_per_gettoken(gt, start_httpd, client, kind):
    """One statement reaches the database per GetToken (the binding and the
    organisation together), and it decides all three outcomes."""
    pg = sql_server(kind, gt.dir, "%s-joint" % kind)
    try:
        pg.create_db("mdm")
        dev = gt.devices["dev_a"]
        north, default = new_udid(), new_udid()
        for u in (north, default):
            pg.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('%s', '%s')"
                   % (u, dev.sha256))
        pg.sql("mdm", "INSERT INTO gettoken_device_organization VALUES ('%s', 'north')" % north)
        log_statements(pg)
        north_uuid = str(uuid.uuid4())
        v = bound_vhost(gt, pg.dbd_params("mdm"), north_uuid, gt.pki.maid_ec.key_path)
        v.db_driver = kind
        h = start_httpd([v])
        c = client(h, "dev_a")
        c.checkin(gettoken_fields(udid=default))       # the connection's first use
        time.sleep(0.3)

        def one_statement(udid):
            mark = statement_log_mark(pg)
            r = c.checkin(gettoken_fields(udid=udid))
            time.sleep(0.3)
            got = executed(pg, mark)
            assert len(got) == 1, got
            assert "gettoken_device_organization" in got[0] and "cert_auth_associations" in got[0]
            return r

        verify_maid_token(token_from_response(one_statement(north)),
                          gt.pki.maid_ec.public_key, north_uuid, time.time())
        # no organisation row: the default organisation
        verify_maid_token(token_from_response(one_statement(default)),
                          gt.pki.maid_rsa.public_key, v.uuid, time.time())
        # not bound: 403 with the binding's refusal line
        mark = h.log_mark()
        assert_refused(h, one_statement(new_udid()), 403, r"is not bound to the enrollment", mark)
        assert "do not combine" not in h.read_error_log()
    finally:
        pg.cleanup()


def sql_org_db(gt, kind, name, assignments, bound=()):
    """org_db() on a PostgreSQL or MariaDB server: (server, DBDParams)."""
    server = sql_server(kind, gt.dir, "%s-%s" % (kind, name))
    server.create_db("mdm")
    cert = gt.devices["dev_a"].sha256
    for u in list(assignments) + list(bound):
        server.sql("mdm", "INSERT INTO cert_auth_associations (id, sha256) VALUES ('%s', '%s')" % (u, cert))
    for u, o in assignments.items():
        server.sql("mdm", "INSERT INTO gettoken_device_organization VALUES ('%s', '%s')" % (u, o))
    return server, server.dbd_params("mdm")


def assert_organisation_query_refused(h, c, udid):
    """With the organisation table gone, a GetToken gets 503 with a
    Retry-After; the combined statement was asked and failed on the missing
    table (one trace line), and the one refusal line is the organisation
    query's own."""
    mark = h.log_mark()
    r = c.checkin(gettoken_fields(udid=udid))
    assert r.status == 503 and re.fullmatch(r"[1-9][0-9]*", r.header("Retry-After") or "")
    lines = h.wait_log(mark, r"\[client [^]]*\].*gettoken: ")
    traced = [l for l in lines if "[gettoken:trace1]" in l]
    refusals = [l for l in lines if re.search(r"\[gettoken:(warn|error|crit)", l)]
    assert len(traced) == 1 and re.search(
        r"combined enrollment and organisation statement failed \(.*gettoken_device_organization",
        traced[0]), "\n".join(lines)
    assert len(refusals) == 1 and "GetTokenOrganizationSQL failed" in refusals[0], "\n".join(lines)


@pytest.mark.gt_log("GT01101")
@pytest.mark.parametrize("kind", SERVERS)
def test_sql_server_fault_of_the_organisation_query_is_its_own_503(gt, start_httpd, client, kind):
    """The combined statement fails (the organisation table is gone): the two
    are asked one after the other, the refusal is the organisation query's
    503; the table back, the combined statement is asked again."""
    udid = new_udid()
    server, params = sql_org_db(gt, kind, "joint-flaky", {udid: "north"})
    try:
        north_uuid = str(uuid.uuid4())
        log_statements(server)
        h = start_httpd([bound_vhost(gt, params, north_uuid, gt.pki.maid_ec.key_path, db_driver=kind)],
                        loglevel="info gettoken:trace1")
        c = client(h, "dev_a")
        verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                          gt.pki.maid_ec.public_key, north_uuid, time.time())
        server.sql("mdm", "ALTER TABLE gettoken_device_organization RENAME TO moved_away")
        assert_organisation_query_refused(h, c, udid)
        server.sql("mdm", "ALTER TABLE moved_away RENAME TO gettoken_device_organization")
        mark, stmts = h.log_mark(), statement_log_mark(server)
        r = c.checkin(gettoken_fields(udid=udid))
        verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, north_uuid, time.time())
        assert "statement failed" not in h.log_since(mark)
        time.sleep(0.3)
        got = executed(server, stmts)
        assert len(got) == 1 and "cert_auth_associations" in got[0], got   # combined again
        assert "do not combine" not in h.read_error_log()
    finally:
        server.cleanup()


@pytest.mark.gt_log("GT01104", "GT01303")
def test_mysql_statements_that_do_not_combine_are_asked_one_after_the_other(gt, start_httpd):
    """MariaDB refuses a derived table with two columns of one name, which
    the organisation query alone may have: every GetToken is answered as
    before, and each child warns once."""
    udid, default = new_udid(), new_udid()
    server, params = sql_org_db(gt, "mysql", "joint-odd", {udid: "north"}, bound=[default])
    try:
        north_uuid = str(uuid.uuid4())
        odd_sql = ("GetTokenOrganizationSQL \"SELECT organization, organization FROM "
                   "gettoken_device_organization WHERE enrollment_id = %s\"")
        v = bound_vhost(gt, params, north_uuid, gt.pki.maid_rsa2.key_path, org_sql=odd_sql,
                        db_driver="mysql")
        assert_asked_one_after_the_other(gt, start_httpd([v]), v, udid, default, north_uuid,
                                         "Duplicate column")
    finally:
        server.cleanup()


@pytest.mark.gt_log("GT01101")
def test_sqlite_fault_of_the_organisation_query_is_its_own_503(gt, start_httpd, client):
    """When the combined statement fails, the two are asked one after the
    other, so the refusal names the query at fault; once the fault is
    repaired, the combined statement is asked again."""
    udid = new_udid()
    db = org_db(gt, "joint-flaky", {udid: "north"})
    north_uuid = str(uuid.uuid4())
    h = start_httpd([bound_vhost(gt, db, north_uuid, gt.pki.maid_ec.key_path)],
                    loglevel="info gettoken:trace1")
    c = client(h, "dev_a")
    verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                      gt.pki.maid_ec.public_key, north_uuid, time.time())

    alter_db(db, "ALTER TABLE gettoken_device_organization RENAME TO moved_away")
    assert_organisation_query_refused(h, c, udid)
    alter_db(db, "ALTER TABLE moved_away RENAME TO gettoken_device_organization")
    mark = h.log_mark()
    r = c.checkin(gettoken_fields(udid=udid))
    verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, north_uuid, time.time())
    log = h.log_since(mark)
    assert "statement failed" not in log, log
    assert "do not combine" not in h.read_error_log()


@pytest.mark.gt_log("GT01104", "GT01303")
def test_statements_that_do_not_combine_are_asked_one_after_the_other(gt, start_httpd):
    """SQL that works alone but not as a subquery (here a second statement
    after the first, which the driver ignores alone): every GetToken is
    answered as before, and each child warns once."""
    udid, default = new_udid(), new_udid()
    db = org_db(gt, "joint-odd", {udid: "north"}, bound=[default])
    north_uuid = str(uuid.uuid4())
    odd_sql = ("GetTokenOrganizationSQL \"SELECT organization FROM gettoken_device_organization "
               "WHERE enrollment_id = %s; SELECT 'south'\"")
    v = bound_vhost(gt, db, north_uuid, gt.pki.maid_rsa2.key_path, org_sql=odd_sql)
    assert_asked_one_after_the_other(gt, start_httpd([v]), v, udid, default, north_uuid,
                                     "asks them one after the other")


def assert_asked_one_after_the_other(gt, h, v, udid, default, north_uuid, warning_has):
    """Every GetToken answered as if the statements combined (north's key for
    udid, the default's for default, 403 for another identity), and each
    child (ServerLimit 2) warned once that they do not."""
    for _ in range(4):      # new connections: both children, likely
        with gt.client(v.port, "dev_a") as c:
            verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                              gt.pki.maid_rsa2.public_key, north_uuid, time.time())
            verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=default))),
                              gt.pki.maid_rsa.public_key, v.uuid, time.time())
    with gt.client(v.port, "dev_b") as other:
        mark = h.log_mark()
        assert_refused(h, other.checkin(gettoken_fields(udid=udid)), 403,
                       r"is not bound to the enrollment", mark)
    warnings = [l for l in h.read_error_log().splitlines() if "do not combine" in l]
    assert 1 <= len(warnings) <= 2, warnings      # ServerLimit 2: once per child
    assert all("[gettoken:warn]" in l and warning_has in l for l in warnings), warnings


# --- start-up refusals ----------------------------------------------------------------
def refusal_vhost(gt, case):
    rsa2 = gt.pki.maid_rsa2
    u = str(uuid.uuid4())
    org = {
        "duplicate-name": ["GetTokenOrganization north %s %s" % (u, rsa2.key_path),
                           "GetTokenOrganization north %s %s" % (str(uuid.uuid4()), gt.pki.maid_ec.key_path)],
        "cert-mismatch": ["GetTokenOrganization north %s %s %s" % (u, rsa2.key_path, gt.pki.maid_rsa.cert_path)],
        "bad-uuid": ["GetTokenOrganization north not-a-uuid %s" % rsa2.key_path],
        "missing-key": ["GetTokenOrganization north %s /nonexistent/org.key" % u],
        "not-a-key": ["GetTokenOrganization north %s /etc/hostname" % u],
        "rsa-1024": ["GetTokenOrganization north %s %s" % (u, gt.pki.rsa1024.key_path)],
        "reserved-name": ["GetTokenOrganization default %s %s" % (u, rsa2.key_path)],
        "without-sql": ["GetTokenOrganization north %s %s" % (u, rsa2.key_path)],
        "missing-args": ["GetTokenOrganization north %s" % u],
    }.get(case, ["GetTokenOrganization north %s %s" % (u, rsa2.key_path)])
    lines = org + ([] if case == "without-sql" else [ORG_SQL])
    kw = {}
    if case == "half-default":
        kw = dict(signing_key=None)
    if case == "sql-without-organisations":
        lines = [ORG_SQL]
    return gt.vhost(directives="\n".join(lines), **kw)


REFUSALS = {
    "duplicate-name": r"GetTokenOrganization: 'north' is defined twice",
    "cert-mismatch": r"GetTokenOrganization north .*does not match",
    "bad-uuid": r"GetTokenOrganization north: 'not-a-uuid' is not a UUID",
    "missing-key": r"GetTokenOrganization north .*/nonexistent/org.key",
    "not-a-key": r"GetTokenOrganization north /etc/hostname",
    "rsa-1024": r"GetTokenOrganization north .*rsa1024",
    "reserved-name": r"GetTokenOrganization: the name 'default'",
    "without-sql": r"GetTokenOrganization needs GetTokenOrganizationSQL",
    "missing-args": r"GetTokenOrganization takes",
    "half-default": r"GetTokenServerUUID without GetTokenSigningKey",
    "sql-without-organisations": r"GetTokenOrganizationSQL without any GetTokenOrganization",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_misconfigured_organisation_stops_configtest(gt, case):
    v = refusal_vhost(gt, case)
    h = gt.httpd([v])
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    assert re.search(REFUSALS[case], out), out
    where = r"%s|:%d\b|line \d+ of" % (re.escape(v.server_name), v.port)
    assert re.search(where, out), "the vhost is not named:\n" + out


@pytest.mark.parametrize("case", ["cert-mismatch", "missing-key"])
@pytest.mark.gt_log("GT00901", "GT00902")
def test_misconfigured_organisation_stops_startup(gt, case):
    h = gt.httpd([refusal_vhost(gt, case)])
    with pytest.raises(RuntimeError) as failed:
        h.start(timeout=5)
    assert not h._port_open(h.port)
    assert re.search(REFUSALS[case], str(failed.value)), str(failed.value)


def test_wrong_hsm_pin_stops_configtest(gt, fleet, monkeypatch):
    monkeypatch.setenv("SOFTHSM2_CONF", fleet.hsm_conf)
    v = gt.vhost(directives="\n".join([
        "GetTokenOrganization vault %s \"%s\"" % (uuid.uuid4(), pkcs11_uri("vault-token", pin="9999")),
        ORG_SQL]))
    rc, out = gt.httpd([v]).configtest()
    assert rc != 0 and "GetTokenOrganization vault" in out, out
    assert "=9999" not in out and "pin-value=(hidden)" in out, "a PIN was logged"


def test_one_key_for_two_organisations_is_loaded_once(gt, start_httpd, client):
    """The same key location in two organisations is one key (and one HSM
    session in HSM set-ups); each organisation keeps its own server UUID."""
    a, b = new_udid(), new_udid()
    db = org_db(gt, "sharedkey", {a: "east", b: "west"})
    east, west = str(uuid.uuid4()), str(uuid.uuid4())
    key = gt.pki.maid_ec.key_path
    v = gt.vhost(db=db, directives="\n".join([
        "GetTokenOrganization east %s %s" % (east, key),
        "GetTokenOrganization west %s %s" % (west, key), ORG_SQL]))
    h = start_httpd([v])
    c = client(h, "dev_a")
    for udid, iss in ((a, east), (b, west)):
        verify_maid_token(token_from_response(c.checkin(gettoken_fields(udid=udid))),
                          gt.pki.maid_ec.public_key, iss, time.time())


# --- GetTokenServices ---------------------------------------------------------------
@pytest.fixture(scope="module")
def routed(gt):
    """/mdm/checkin answers only watch pairing; /mdm/plain (no directive,
    GetToken On) answers everything."""
    v = gt.vhost(location="GetTokenServices %s com.example.echo" % PAIRING,
                 directives="<Location /mdm/plain>\n    GetToken On\n</Location>")
    h = gt.httpd([v], load_echo=True)
    try:
        yield h.start()
    finally:
        h.stop()


@pytest.mark.parametrize("fmt,chunked", [("xml", False), ("binary", False), ("xml", True)])
@pytest.mark.parametrize("service", ["com.apple.maid", "com.example.nobody"])
def test_unlisted_service_passes_through_byte_for_byte(gt, routed, client, service, fmt, chunked):
    udid = gt.devices["dev_a"].enrollment_id
    body = checkin_body(gettoken_fields(service, udid=udid, params={"K": "v"}), fmt)
    r = client(routed, "dev_a").request(body, chunked=chunked)
    assert r.status == 200 and r.body.startswith(b"BACKEND-OK"), (r.status, r.body[:200])
    rec, got = routed.record(r.test_id)
    assert got == body and rec["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert rec["method"] == "PUT"
    lines = routed.access_lines(r.test_id)
    assert lines and " svc=- " in lines[0] and " org=- " in lines[0], lines


def test_listed_services_are_answered(gt, routed, client):
    udid = gt.devices["dev_a"].enrollment_id
    c = client(routed, "dev_a")
    watch, secret = new_watch_udid(), "s-" + uuid.uuid4().hex
    r = c.checkin(gettoken_fields(PAIRING, udid=udid,
                                  params={"SecurityToken": secret, "PhoneUDID": udid, "WatchUDID": watch}))
    token = token_from_response(r)
    assert signature_valid(token, gt.pki.maid_rsa.public_key)
    assert routed.record(r.test_id, timeout=0) is None
    r = c.checkin(gettoken_fields("com.example.echo", udid=udid, params={"Message": "m"}))
    assert token_from_response(r) == "echo:%s:m" % udid


@pytest.mark.gt_log("GT01204")
def test_listed_service_still_needs_identity(gt, routed, client):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(routed, None).checkin(gettoken_fields("com.example.echo", udid=udid))
    assert r.status == 401


@pytest.mark.gt_log("GT01401")
def test_without_directive_unknown_type_400_and_maid_answered(gt, routed, client):
    udid = gt.devices["dev_a"].enrollment_id
    c = client(routed, "dev_a")
    mark = routed.log_mark()
    r = c.checkin(gettoken_fields("com.example.nobody", udid=udid), path="/mdm/plain")
    assert_refused(routed, r, 400, r"TokenServiceType 'com.example.nobody'", mark)
    r = c.checkin(gettoken_fields(udid=udid), path="/mdm/plain")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, routed.vhosts[0].uuid,
                      time.time())


def test_services_directive_refused_outside_a_location(gt):
    h = gt.httpd([gt.vhost(directives="GetTokenServices %s" % PAIRING)])
    rc, out = h.configtest()
    assert rc != 0 and "GetTokenServices" in out, out
