# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Apple Watch enrollment, the watch MDM's side: the gate at the enrollment
profile URL (GetTokenWatchEnrollment*) and its security tokens
(gettoken_watch_security_token).

One httpd holds the phone organisation's GetToken vhost (it issues pairing
tokens, ES256 with maid_ec) and the watch MDM's vhosts, whose enrollment
profile URL is gated (GetTokenWatchEnrollment On) in front of the recording
CGI.  A simulated watch sends MachineInfo, CMS-signed or bare; a simulated
phone asks its MDM for the pairing token.  Forged tokens are made with
python3-jwt, CMS with python3-cryptography and openssl.
"""
import json
import os
import plistlib
import re
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gt_client import UUID4_RX, decode_unverified, token_from_response
from gt_httpd import JWT_RX, running
from pairing_helpers import issue_request, resign_parts, sth_of
from gt_sql import SERVERS, served_sql
from gt_stream import run_concurrently
from watch_helpers import (ISSUER_HEADER, MISSING_CODE, PHONE_HEADER, PKCS7_CT, encode, enroll,
                      machine_info, new_watch_udid, plist_bytes, sign_attached, sqlite_rows,
                      watch_mdm_vhost)

FORMS = ["cms", "cms-openssl", "xml", "binary"]
SHORT_LIFETIME = 2


class Site:
    """The phone's MDM vhost and the watch MDM's vhosts of one httpd."""

    def __init__(self, gt):
        self.db = gt.make_db("watch-enroll", [])
        self.env_log = os.path.join(gt.dir, "watch-env.log")
        self.phone = gt.vhost(directives="GetTokenWatchPairingKey %s" % gt.pki.maid_ec.key_path)
        self.trust = trust = [(self.phone.uuid, gt.pki.maid_ec.cert_path)]
        self.watch = watch_mdm_vhost(gt, self.db, trust, env_log=self.env_log)
        self.watch_ca = watch_mdm_vhost(gt, gt.make_db("watch-ca", []), trust,
                                        extra="GetTokenWatchEnrollmentCA %s" % gt.pki.ca_cert_path)
        self.watch_short = watch_mdm_vhost(gt, gt.make_db("watch-short", []), trust,
                                           extra="GetTokenWatchSecurityTokenLifetime %d"
                                                 % SHORT_LIFETIME)
        self.h = gt.httpd([self.phone, self.watch, self.watch_ca, self.watch_short])


@pytest.fixture(scope="module")
def site(gt):
    s = Site(gt)
    s.h.start()
    try:
        yield s
    finally:
        s.h.stop()


def signer(gt):
    return gt.devices["dev_a"]          # issued by the test CA


def ask(gt, vhost, udid, form="cms", token=None, headers=None, fields=None, who=None):
    body, ct = encode(fields or machine_info(udid, token=token), form, who or signer(gt))
    return enroll(gt, vhost.port, body, ct, headers), body


def security_token(gt, site, vhost, udid, form="cms"):
    """Step 3: the watch without PAIRING_TOKEN gets its 403 and security token."""
    r, _ = ask(gt, vhost, udid, form)
    assert r.status == 403, (r.status, r.body[:300], site.h.log_tail(3))
    assert (r.header("Content-Type") or "").split(";")[0] == "application/json"
    doc = json.loads(r.body)
    assert set(doc) == {"code", "details"} and doc["code"] == MISSING_CODE
    assert set(doc["details"]) == {"security-token"}
    assert UUID4_RX.match(doc["details"]["security-token"]), doc
    assert site.h.record(r.test_id, timeout=0) is None
    return doc["details"]["security-token"]


def pairing_token(gt, site, udid, secret, device="dev_a"):
    """Step 4: the phone asks its MDM (GetToken com.apple.watch.pairing)."""
    return token_from_response(issue_request(gt, site.phone.port, device, watch=udid,
                                             secret=secret))


def assert_admitted(gt, site, r, body, issuer, phone=None):
    assert r.status == 200, (r.status, r.body[:300], site.h.log_tail(3))
    assert r.body.startswith(b"BACKEND-OK")
    rec, got = site.h.record(r.test_id)
    assert got == body, "the MDM did not receive the MachineInfo byte for byte"
    phone = phone or gt.devices["dev_a"].enrollment_id
    assert rec["headers"][PHONE_HEADER.lower()] == phone
    assert rec["headers"][ISSUER_HEADER.lower()] == issuer
    return rec


def assert_refused(site, r, reason_rx, mark):
    assert r.status == 403, (r.status, r.body[:300], site.h.log_tail(3))
    assert site.h.record(r.test_id, timeout=0) is None, "a refused watch reached the MDM"
    lines = site.h.wait_log(mark, r"gettoken: .*refused")
    assert len(lines) == 1, "want one refusal line:\n" + site.h.log_since(mark)
    assert re.search(reason_rx, lines[0], re.I), (reason_rx, lines[0])
    assert not JWT_RX.search(site.h.log_since(mark))


def assert_ask_refused(gt, site, reason_rx, *args, **kw):
    """ask(gt, *args, **kw) gets the watch refused, with one log line saying why."""
    mark = site.h.log_mark()
    r, _ = ask(gt, *args, **kw)
    assert_refused(site, r, reason_rx, mark)


def paired(gt, site, vhost=None, form="cms"):
    """A watch with a security token and the pairing token its phone got for it."""
    vhost = vhost or site.watch
    udid = new_watch_udid()
    secret = security_token(gt, site, vhost, udid, form)
    return udid, secret, pairing_token(gt, site, udid, secret)


# --- the flow ------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
@pytest.mark.gt_log("GT02009")
def test_flow_admits_once(gt, site, form):
    udid = new_watch_udid()
    secret = security_token(gt, site, site.watch, udid, form)
    rows = sqlite_rows(site.db, "SELECT watch_udid, used, expires_at, sth FROM "
                                "gettoken_watch_security_token WHERE security_token = ?", (secret,))
    assert len(rows) == 1 and rows[0][:2] == (udid, 0)
    assert abs(rows[0][2] - (time.time() + 600)) <= 5       # default lifetime
    assert rows[0][3] == sth_of(secret)
    token = pairing_token(gt, site, udid, secret)
    assert decode_unverified(token)[1]["watch_udid"] == udid
    mark = site.h.log_mark()
    r, body = ask(gt, site.watch, udid, form, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)
    assert site.h.wait_log(mark, r"watch enrollment admitted: watch %s" % udid)
    assert sqlite_rows(site.db, "SELECT used FROM gettoken_watch_security_token WHERE "
                                "security_token = ?", (secret,)) == [(1,)]
    # the same request again: the security token is used up
    assert_ask_refused(gt, site, r"GT02009: watch enrollment refused \(403\): .*used before",
                       site.watch, udid, form, token=token)
    log = site.h.read_error_log()
    assert secret not in log and token.split(".")[2] not in log


def test_environment_for_logs(gt, site):
    udid, _, token = paired(gt, site)
    r, _ = ask(gt, site.watch, udid, token=token)
    assert r.status == 200
    deadline = time.time() + 3
    line = None
    while time.time() < deadline and not line:
        with open(site.env_log) as f:
            line = next((l for l in f if l.rstrip().endswith(r.test_id)), None)
        time.sleep(0.05)
    assert line and line.split()[:2] == [gt.devices["dev_a"].enrollment_id, site.phone.uuid]


def test_plist_answer_when_asked(gt, site):
    body, ct = encode(machine_info(new_watch_udid()), "xml")
    r = enroll(gt, site.watch.port, body, ct, {"Accept": "application/x-apple-plist, */*"})
    assert r.status == 403
    assert r.header("Content-Type") == "application/x-apple-plist"
    doc = plistlib.loads(r.body)
    assert doc["code"] == MISSING_CODE and UUID4_RX.match(doc["details"]["security-token"])


def test_security_tokens_are_fresh(gt, site):
    udid = new_watch_udid()
    tokens = {security_token(gt, site, site.watch, udid) for _ in range(5)}
    assert len(tokens) == 5


# --- refusals --------------------------------------------------------------------------

@pytest.mark.gt_log("GT01911")
def test_other_watch_udid(gt, site):
    udid, secret, token = paired(gt, site)
    assert_ask_refused(gt, site, r"GT01911: watch enrollment refused \(403\): pairing token: UDID mismatch",
                       site.watch, new_watch_udid(), token=token)
    # refused before anything was used up
    r, body = ask(gt, site.watch, udid, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)


@pytest.mark.gt_log("GT02009")
def test_security_token_never_issued(gt, site):
    udid = new_watch_udid()
    token = pairing_token(gt, site, udid, str(uuid.uuid4()))
    assert_ask_refused(gt, site, r"matches no security token issued here",
                       site.watch, udid, token=token)


@pytest.mark.gt_log("GT02009")
def test_security_token_issued_to_another_watch(gt, site):
    other = new_watch_udid()
    secret = security_token(gt, site, site.watch, other)
    udid = new_watch_udid()
    token = pairing_token(gt, site, udid, secret)   # the phone vouches for udid
    assert_ask_refused(gt, site, r"issued to another watch", site.watch, udid, token=token)
    # the other watch's token is still usable by it
    r, body = ask(gt, site.watch, other, token=pairing_token(gt, site, other, secret))
    assert_admitted(gt, site, r, body, site.phone.uuid)


@pytest.mark.gt_log("GT02009")
def test_security_token_of_another_vhost(gt, site):
    """Each watch MDM (database) knows only the security tokens it issued."""
    udid, _, token = paired(gt, site, site.watch_short)
    r, _ = ask(gt, site.watch, udid, token=token)
    assert r.status == 403


@pytest.mark.gt_log("GT02009")
def test_security_token_expired(gt, site):
    udid, secret, token = paired(gt, site, site.watch_short)
    time.sleep(SHORT_LIFETIME + 1.5)
    assert_ask_refused(gt, site, r"security token has expired",
                       site.watch_short, udid, token=token)


@pytest.mark.gt_log("GT02009")
def test_security_token_reused_with_a_new_pairing_token(gt, site):
    udid, secret, token = paired(gt, site)
    r, body = ask(gt, site.watch, udid, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)
    again = pairing_token(gt, site, udid, secret)        # another jti, same security token
    assert_ask_refused(gt, site, r"security token was used before", site.watch, udid, token=again)


def forged(gt, site, udid, secret, key=None, alg="ES256", **over):
    now = int(time.time())
    claims = {"iss": site.phone.uuid, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()),
              "service_type": "com.apple.watch.pairing",
              "phone_udid": gt.devices["dev_a"].enrollment_id, "watch_udid": udid,
              "sth": sth_of(secret)}
    claims.update(over)
    return jwt.encode(claims, key or gt.pki.maid_ec.key, algorithm=alg), claims


def assert_forged_admitted(gt, site, udid, secret, **over):
    """python3-jwt's token with the trusted key gets the watch in; its claims."""
    token, claims = forged(gt, site, udid, secret, **over)
    r, body = ask(gt, site.watch, udid, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)
    return claims


def test_forged_token_by_trusted_key_admitted(gt, site):
    """Guards the forgery tests below: python3-jwt's token with the trusted key passes."""
    udid = new_watch_udid()
    secret = security_token(gt, site, site.watch, udid)
    assert_forged_admitted(gt, site, udid, secret)


@pytest.mark.parametrize("key", ["iss-not-listed", "rsa-other-org", "ec-unknown"])
@pytest.mark.gt_log("GT01908", "GT01910")
def test_untrusted_key(gt, site, key):
    udid = new_watch_udid()
    secret = security_token(gt, site, site.watch, udid)
    reason = "GT01910: watch enrollment refused \\(403\\): pairing token: bad signature"
    if key == "iss-not-listed":      # a trusted key, but for another issuer
        token, _ = forged(gt, site, udid, secret, iss=str(uuid.uuid4()))
        reason = ("GT01908: watch enrollment refused \\(403\\): pairing token: "
                  "untrusted issuer")
    elif key == "rsa-other-org":
        token, _ = forged(gt, site, udid, secret, key=gt.pki.maid_rsa2.key, alg="RS256")
    else:
        token, _ = forged(gt, site, udid, secret, key=ec.generate_private_key(ec.SECP256R1()))
    assert_ask_refused(gt, site, reason,
                       site.watch, udid, token=token)
    # the security token was not used up by the refusal
    r, body = ask(gt, site.watch, udid, token=forged(gt, site, udid, secret)[0])
    assert_admitted(gt, site, r, body, site.phone.uuid)


@pytest.mark.parametrize("claim", ["phone_udid", "iss", "exp", "sth"])
@pytest.mark.gt_log("GT01908", "GT01910")
def test_tampered_token(gt, site, claim):
    udid, secret, token = paired(gt, site)
    claims = decode_unverified(token)[1]
    claims[claim] = {"phone_udid": "00008110-" + uuid.uuid4().hex[:16].upper(),
                     "iss": str(uuid.uuid4()), "exp": claims["exp"] + 86400,
                     "sth": sth_of(security_token(gt, site, site.watch, udid))}[claim]
    assert_ask_refused(gt, site, r"untrusted issuer" if claim == "iss" else r"bad signature",
                       site.watch, udid, token=resign_parts(token, claims))
    r, body = ask(gt, site.watch, udid, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)


@pytest.mark.gt_log("GT01911")
def test_expired_token(gt, site):
    udid = new_watch_udid()
    secret = security_token(gt, site, site.watch, udid)
    now = int(time.time())
    token, _ = forged(gt, site, udid, secret, iat=now - 600, exp=now - 300)
    assert_ask_refused(gt, site, r"GT01911: watch enrollment refused \(403\): pairing token: expired",
                       site.watch, udid, token=token)


@pytest.mark.gt_log("GT01904")
def test_replayed_jti(gt, site):
    """Two tokens with one jti, each for a fresh security token: the second is a replay."""
    udid = new_watch_udid()
    first = security_token(gt, site, site.watch, udid)
    claims = assert_forged_admitted(gt, site, udid, first)
    second = security_token(gt, site, site.watch, udid)
    replay, _ = forged(gt, site, udid, second, jti=claims["jti"])
    assert_ask_refused(gt, site, r"GT01904: watch enrollment refused \(403\): pairing token: replayed",
                       site.watch, udid, token=replay)


@pytest.mark.parametrize("bad", ["string", "empty", "garbage"])
@pytest.mark.gt_log("GT02014")
def test_bad_pairing_token_value(gt, site, bad):
    udid = new_watch_udid()
    fields = machine_info(udid)
    fields["PAIRING_TOKEN"] = {"string": "a.b.c", "empty": b"", "garbage": b"\xff\x00zz"}[bad]
    assert_ask_refused(gt, site, r"PAIRING_TOKEN", site.watch, udid, fields=fields)


@pytest.mark.gt_log("GT02014")
def test_watch_without_udid(gt, site):
    fields = machine_info("x")
    del fields["UDID"]
    assert_ask_refused(gt, site, r"without a usable UDID",
                       site.watch, None, form="xml", fields=fields)


@pytest.mark.gt_log("GT02014")
def test_tampered_cms_content(gt, site):
    udid = new_watch_udid()
    fields = machine_info(udid, SERIAL="FAAAAAAAAAAA")
    der = sign_attached(plist_bytes(fields), signer(gt))
    i = der.index(b"FAAAAAAAAAAA")
    bad = der[:i] + b"FBAAAAAAAAAA" + der[i + 12:]
    mark = site.h.log_mark()
    r = enroll(gt, site.watch.port, bad)
    assert_refused(site, r, r"signature does not verify over its content", mark)


@pytest.mark.parametrize("form", ["xml", "binary"])
@pytest.mark.gt_log("GT02014")
def test_over_bounds_watch_body_refused(gt, site, form):
    """A would-be MachineInfo too big for libplist must not slip past unchecked,
    while an iPhone's equally big one is none of the gate's business."""
    extra = {"K%03d" % i: "v" for i in range(100)}
    body = plist_bytes(machine_info(new_watch_udid(), **extra), form)
    mark = site.h.log_mark()
    r = enroll(gt, site.watch.port, body, "application/xml")
    assert_refused(site, r, r"GT02014: watch enrollment refused \(403\): .*more objects than", mark)
    body = plist_bytes(machine_info("00008110-AAAA", product="iPhone15,2", **extra), form)
    r = enroll(gt, site.watch.port, body, "application/xml")
    assert r.status == 200 and site.h.record(r.test_id)[1] == body


@pytest.mark.gt_log("GT02011")
def test_oversized_body_refused(gt, site):
    r = enroll(gt, site.watch.port, b"<plist>" + b"x" * 70000, "application/xml")
    assert r.status == 413
    assert site.h.record(r.test_id, timeout=0) is None


# --- headers a client sends ---------------------------------------------------------------

SPOOF = {PHONE_HEADER: "00008110-SPOOFED", ISSUER_HEADER: "spoofed-issuer"}


def test_spoofed_headers_removed_on_admission(gt, site):
    udid, _, token = paired(gt, site)
    r, body = ask(gt, site.watch, udid, token=token, headers=SPOOF)
    rec = assert_admitted(gt, site, r, body, site.phone.uuid)
    assert "SPOOFED" not in json.dumps(rec) and "spoofed-issuer" not in json.dumps(rec)


@pytest.mark.parametrize("what", ["json", "iphone"])
def test_spoofed_headers_removed_on_pass_through(gt, site, what):
    if what == "json":
        body, ct = b'{"hello": "world"}', "application/json"
    else:
        body, ct = encode(machine_info("00008110-AAAA", product="iPhone15,2"), "cms", signer(gt))
    r = enroll(gt, site.watch.port, body, ct, SPOOF)
    assert r.status == 200
    rec, got = site.h.record(r.test_id)
    assert got == body
    assert PHONE_HEADER.lower() not in rec["headers"] and ISSUER_HEADER.lower() not in rec["headers"]


# --- what is not a watch passes untouched ----------------------------------------------------

def not_watch_bodies(gt):
    iphone = machine_info("00008110-" + uuid.uuid4().hex[:16].upper(), product="iPhone15,2")
    mac = machine_info(str(uuid.uuid4()).upper(), product="Mac14,2")
    return {
        "iphone-cms": (sign_attached(plist_bytes(iphone), signer(gt)), PKCS7_CT),
        "iphone-cms-rogue-signer": (sign_attached(plist_bytes(iphone), gt.devices["dev_rogue"]),
                                    PKCS7_CT),
        "iphone-xml": (plist_bytes(iphone), "application/xml"),
        "mac-binary": (plist_bytes(mac, "binary"), "application/octet-stream"),
        "checkin-plist": (plist_bytes({"MessageType": "Authenticate", "UDID": "U",
                                       "Topic": "com.apple.mgmt"}), "application/xml"),
        "json": (b'{"PRODUCT": "iPad"}', "application/json"),
        "random": (os.urandom(3000).replace(b"atch", b"xxxx"), "application/octet-stream"),
        "form": (b"a=1&b=2", "application/x-www-form-urlencoded"),
    }


@pytest.mark.parametrize("kind", ["iphone-cms", "iphone-cms-rogue-signer", "iphone-xml",
                                  "mac-binary", "checkin-plist", "json", "random", "form"])
@pytest.mark.parametrize("where", ["watch", "watch_ca"])
def test_not_a_watch_passes_untouched(gt, site, kind, where):
    body, ct = not_watch_bodies(gt)[kind]
    vhost = getattr(site, where)
    before = sqlite_rows(site.db, "SELECT count(*) FROM gettoken_watch_security_token")
    r = enroll(gt, vhost.port, body, ct)
    assert r.status == 200, (r.status, site.h.log_tail(3))
    rec, got = site.h.record(r.test_id)
    assert got == body and rec["content_type"] == ct
    assert sqlite_rows(site.db, "SELECT count(*) FROM gettoken_watch_security_token") == before


def test_get_passes(gt, site):
    with gt.client(site.watch.port) as c:
        r = c.request(b"", method="GET", path="/mdm/checkin", content_type=None, keep=False)
    assert r.status == 200 and site.h.record(r.test_id)


# --- GetTokenWatchEnrollmentCA ---------------------------------------------------------------

@pytest.mark.parametrize("form", ["cms", "cms-openssl"])
def test_ca_signer_chaining_goes_on(gt, site, form):
    udid = new_watch_udid()
    secret = security_token(gt, site, site.watch_ca, udid, form)
    r, body = ask(gt, site.watch_ca, udid, form, token=pairing_token(gt, site, udid, secret))
    assert_admitted(gt, site, r, body, site.phone.uuid)


@pytest.mark.gt_log("GT02014")
def test_ca_signer_not_chaining_403(gt, site):
    assert_ask_refused(gt, site, r"chaining to GetTokenWatchEnrollmentCA",
                       site.watch_ca, new_watch_udid(), who=gt.devices["dev_rogue"])


@pytest.mark.parametrize("form", ["xml", "binary"])
@pytest.mark.gt_log("GT02014")
def test_ca_unsigned_watch_403(gt, site, form):
    assert_ask_refused(gt, site, r"not signed", site.watch_ca, new_watch_udid(), form)


def test_no_ca_any_signer(gt, site):
    """Without the CA the signature counts for integrity only."""
    security_token(gt, site, site.watch, new_watch_udid())
    r, _ = ask(gt, site.watch, new_watch_udid(), who=gt.devices["dev_rogue"])
    assert r.status == 403 and json.loads(r.body)["code"] == MISSING_CODE


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["no-trust", "bad-ca", "lifetime-0", "in-htaccess-scope"])
def test_misconfiguration_refused(gt, case):
    db = gt.make_db("watch-conf-" + case, [])
    trust = [] if case == "no-trust" else [(str(uuid.uuid4()), gt.pki.maid_ec.cert_path)]
    extra = {"bad-ca": "GetTokenWatchEnrollmentCA %s" % gt.pki.path("no-such-ca.pem"),
             "lifetime-0": "GetTokenWatchSecurityTokenLifetime 0",
             "in-htaccess-scope": ""}.get(case, "")
    v = watch_mdm_vhost(gt, db, trust, extra=extra)
    if case == "in-htaccess-scope":
        v.directives += "\nGetTokenWatchEnrollment On"      # vhost level: not allowed
    rc, out = gt.httpd([v]).configtest()
    assert rc != 0
    assert re.search(r"GetTokenWatch(Enrollment|SecurityTokenLifetime)", out), out


# --- PostgreSQL and MariaDB: outage, two nodes ---------------------------------------------------

NODE_MPM = "StartServers 2\nThreadsPerChild 16\nMaxRequestWorkers 32"


@pytest.fixture(scope="module", params=SERVERS)
def sqldb(gt, request):
    yield from served_sql(request.param, gt.dir, "%s-watch-enroll" % request.param, "watchmdm")


def pg_node(gt, sqldb, site):
    v = watch_mdm_vhost(gt, sqldb.dbd_params("watchmdm"), site.trust, db_driver=sqldb.driver)
    return gt.httpd([v], extra_global=NODE_MPM)


@pytest.fixture(scope="module")
def nodes(gt, sqldb, site):
    yield from running(pg_node(gt, sqldb, site), pg_node(gt, sqldb, site))


@pytest.mark.gt_log("GT02009")
def test_db_two_nodes_share_security_tokens(gt, site, sqldb, nodes):
    a, b = nodes
    udid = new_watch_udid()
    secret = security_token(gt, site, a.vhosts[0], udid)        # issued by node a
    r, body = ask(gt, b.vhosts[0], udid, token=pairing_token(gt, site, udid, secret))
    assert r.status == 200, (r.status, b.log_tail(3))           # admitted by node b
    assert b.record(r.test_id)[1] == body
    assert sqldb.sql("watchmdm", "SELECT used FROM gettoken_watch_security_token WHERE "
                              "security_token = '%s'" % secret).strip() == "1"
    # why a token is refused comes from its row (the server's integer columns read back)
    for who, reason in ((udid, r"security token was used before"),
                        (new_watch_udid(), r"security token was issued to another watch")):
        mark = a.log_mark()
        r, _ = ask(gt, a.vhosts[0], who, token=pairing_token(gt, site, who, secret))
        assert r.status == 403 and a.record(r.test_id, timeout=0) is None
        lines = a.wait_log(mark, r"gettoken: .*\(403\)")
        assert len(lines) == 1 and re.search(reason, lines[0]), lines


@pytest.mark.gt_log("GT02009")
def test_db_fifty_concurrent_admissions_one_success(gt, site, nodes):
    a, b = nodes
    udid = new_watch_udid()
    secret = security_token(gt, site, a.vhosts[0], udid)
    body, ct = encode(machine_info(udid, token=pairing_token(gt, site, udid, secret)), "cms",
                      signer(gt))
    n = 50
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def worker(i):
        h = (a, b)[i % 2]
        try:
            barrier.wait(timeout=60)
            results[i] = (h, enroll(gt, h.port, body, ct))
        except Exception as e:       # noqa: BLE001 - reported below
            errors.append(repr(e))

    run_concurrently(worker, n)
    assert not errors, errors
    statuses = sorted(r.status for _, r in results)
    assert statuses == [200] + [403] * (n - 1), statuses
    reached = [r for h, r in results if h.record(r.test_id, timeout=0)]
    assert len(reached) == 1 and reached[0].status == 200


@pytest.mark.gt_log("GT02003", "GT02005", "GT02007", "GT02008")   # as the pooled connections stand
def test_db_outage_503_then_recovery(gt, site, sqldb, nodes):
    a, _ = nodes
    udid = new_watch_udid()
    secret = security_token(gt, site, a.vhosts[0], udid)
    token = pairing_token(gt, site, udid, secret)
    sqldb.stop()
    try:
        for with_token in (False, True):
            mark = a.log_mark()
            r, _ = ask(gt, a.vhosts[0], udid, token=token if with_token else None)
            assert r.status == 503, (r.status, a.log_tail(3))
            assert r.header("Retry-After") == "30"
            assert a.record(r.test_id, timeout=0) is None
            lines = a.wait_log(mark, r"gettoken: .*\(503\)")
            assert len(lines) == 1, a.log_since(mark)
    finally:
        sqldb.start()
        assert sqldb.wait_ready()
    deadline = time.time() + 30
    while True:
        r, body = ask(gt, a.vhosts[0], udid, token=token)
        if r.status != 503 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, (r.status, a.log_tail())
    assert a.record(r.test_id)[1] == body
