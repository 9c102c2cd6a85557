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
import subprocess
import tempfile
import threading
import time
import uuid
import zlib

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gt_client import UUID4_RX, decode_unverified, token_from_response
from gt_httpd import JWT_RX, MODDIR, running
from pairing_helpers import issue_request, low_s, resign_parts, sth_of
from gt_sql import SERVERS, served_sql
from gt_stream import run_concurrently
from watch_helpers import (ISSUER_HEADER, MISSING_CODE, PHONE_HEADER, PKCS7_CT,
                      SECURITY_TOKEN_TABLE, encode, enroll, fill_expired, machine_info,
                      new_watch_udid, plist_bytes, sign_attached, sqlite_rows, watch_mdm_vhost)

FORMS = ["cms", "cms-openssl", "xml", "binary"]
SHORT_LIFETIME = 2
STATUS_GLOBAL = "LoadModule status_module %s/mod_status.so" % MODDIR
STATUS_LOCATION = "<Location /server-status>\n    SetHandler server-status\n</Location>"
TABLE = SECURITY_TOKEN_TABLE


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
        self.purge_db = gt.make_db("watch-purge", [])
        self.watch_purge = watch_mdm_vhost(gt, self.purge_db, trust, extra=STATUS_LOCATION)
        self.h = gt.httpd([self.phone, self.watch, self.watch_ca, self.watch_short,
                           self.watch_purge], extra_global=STATUS_GLOBAL)


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


def rows_of(db, udid):
    return sqlite_rows(db, "SELECT security_token, used FROM %s WHERE watch_udid = ?" % TABLE,
                       (udid,))


def test_repeat_gets_the_same_security_token(gt, site):
    """A watch asking again within the lifetime gets the token it got: one row."""
    udid = new_watch_udid()
    tokens = {security_token(gt, site, site.watch, udid, form) for form in FORMS * 2}
    assert len(tokens) == 1
    assert rows_of(site.db, udid) == [(tokens.pop(), 0)]
    # another watch, another token
    other = new_watch_udid()
    assert security_token(gt, site, site.watch, other) != security_token(gt, site, site.watch,
                                                                           udid)


@pytest.mark.gt_log("GT02018")
def test_after_admission_a_new_token_then_429(gt, site):
    """Used up by an admission, the next ask gets the next token; a watch that
    enrolled three times within half the lifetime waits (429, Retry-After)."""
    udid = new_watch_udid()
    seen = []
    for _ in range(3):
        secret = security_token(gt, site, site.watch, udid)
        assert secret not in seen
        seen.append(secret)
        r, body = ask(gt, site.watch, udid, token=pairing_token(gt, site, udid, secret))
        assert_admitted(gt, site, r, body, site.phone.uuid)
    assert sorted(rows_of(site.db, udid)) == sorted((t, 1) for t in seen)
    mark = site.h.log_mark()
    r, _ = ask(gt, site.watch, udid)
    assert r.status == 429 and 0 < int(r.header("Retry-After")) <= 300, r.status
    assert site.h.record(r.test_id, timeout=0) is None
    assert len(site.h.wait_log(mark, r"GT02018: watch enrollment refused \(429\): watch .* used up 3 security tokens")) == 1
    assert len(rows_of(site.db, udid)) == 3


def test_flood_leaves_one_row_per_watch(gt, site):
    """The same MachineInfo, again and again, sequentially and 8 at a time, bare
    and signed: one security token row for the watch, whatever the count."""
    udid = new_watch_udid()
    bodies = [encode(machine_info(udid), form, signer(gt)) for form in FORMS]
    for i in range(40):
        r = enroll(gt, site.watch.port, *bodies[i % len(bodies)])
        assert r.status == 403
    errors, statuses = [], []

    def worker(i):
        try:
            for j in range(10):
                statuses.append(enroll(gt, site.watch.port, *bodies[(i + j) % len(bodies)]).status)
        except Exception as e:       # noqa: BLE001 - reported below
            errors.append(repr(e))

    run_concurrently(worker, 8)
    assert not errors, errors
    assert statuses == [403] * 80
    assert len(rows_of(site.db, udid)) == 1


def expired_rows(db):
    return sqlite_rows(db, "SELECT count(*) FROM %s WHERE expires_at < ?" % TABLE,
                       (int(time.time()),))[0][0]


PURGE_BATCH = 256


def test_expired_backlog_purged_in_batches(gt, site):
    """200 000 expired rows: no request purges them all.  A new security token
    deletes a batch of 256 when one is due (once a second per process), a
    repeated ask none; the gate answers every request as usual meanwhile."""
    fill_expired(site.purge_db, 200000, watches=1000, spread=600, timeout=30)
    left = expired_rows(site.purge_db)
    assert left >= 200000
    drops = []
    for _ in range(6):
        udid = new_watch_udid()
        security_token(gt, site, site.watch_purge, udid)
        now = expired_rows(site.purge_db)
        drops.append(left - now)
        left = now
        security_token(gt, site, site.watch_purge, udid)      # returned, not recorded
        assert expired_rows(site.purge_db) == left
    assert set(drops) <= {0, PURGE_BATCH}, drops
    assert drops[0] == PURGE_BATCH, drops
    time.sleep(1.1)                                             # the next batch is due
    security_token(gt, site, site.watch_purge, new_watch_udid())
    assert left - expired_rows(site.purge_db) == PURGE_BATCH
    # a phone passes, an admission works, with the backlog in place
    body, ct = encode(machine_info("00008110-AAAA", product="iPhone15,2"), "cms", signer(gt))
    r = enroll(gt, site.watch_purge.port, body, ct)
    assert r.status == 200 and site.h.record(r.test_id)[1] == body
    udid, secret, token = paired(gt, site, site.watch_purge)
    r, body = ask(gt, site.watch_purge, udid, token=token)
    assert_admitted(gt, site, r, body, site.phone.uuid)


def status_counters(gt, site):
    with gt.client(site.watch_purge.port, None) as c:
        r = c.request(method="GET", path="/server-status?auto", content_type=None, keep=False)
    assert r.status == 200, r.status
    return {k: int(v) for k, _, v in (l.partition(": ") for l in r.body.decode().splitlines())
            if k in ("GetTokenWatchRefused", "GetTokenWatchSecurityTokens", "GetTokenWatchAdmitted")}


@pytest.mark.gt_log("GT02021", "GT02014")
def test_server_status_counts_refusals_and_security_tokens(gt, site):
    before = status_counters(gt, site)
    assert set(before) == {"GetTokenWatchRefused", "GetTokenWatchSecurityTokens",
                           "GetTokenWatchAdmitted"}
    udid = new_watch_udid()
    for _ in range(3):                              # one new token, then the same one
        security_token(gt, site, site.watch, udid)
    for body in (b"not a plist", b'{"PRODUCT": "Watch6,1"}'):          # 400 twice
        assert enroll(gt, site.watch.port, body, "application/json").status == 400
    assert_ask_refused(gt, site, r"not signed", site.watch_ca, new_watch_udid(), "xml")  # 403
    after = status_counters(gt, site)
    assert after["GetTokenWatchSecurityTokens"] - before["GetTokenWatchSecurityTokens"] == 1
    assert after["GetTokenWatchRefused"] - before["GetTokenWatchRefused"] == 3
    assert after["GetTokenWatchAdmitted"] == before["GetTokenWatchAdmitted"]


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
    return low_s(jwt.encode(claims, key or gt.pki.maid_ec.key, algorithm=alg)), claims


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
                     "sth": sth_of(str(uuid.uuid4()))}[claim]
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


def assert_bad_request(gt, site, r, reason_rx, mark, before_rows):
    """400, nothing reached the MDM, no security token row, one log line saying why."""
    assert r.status == 400, (r.status, r.body[:300], site.h.log_tail(3))
    assert site.h.record(r.test_id, timeout=0) is None, "a refused body reached the MDM"
    lines = site.h.wait_log(mark, r"gettoken: .*refused")
    assert len(lines) == 1, "want one refusal line:\n" + site.h.log_since(mark)
    assert re.search(reason_rx, lines[0], re.I), (reason_rx, lines[0])
    assert sqlite_rows(site.db, "SELECT count(*) FROM %s" % TABLE) == before_rows


def count_rows(site):
    return sqlite_rows(site.db, "SELECT count(*) FROM %s" % TABLE)


@pytest.mark.gt_log("GT02021")
@pytest.mark.parametrize("udid", [None, "", "A\x01B", "tab\tin", "del\x7f", "nel\u0085",
                                  "x" * 129])
@pytest.mark.parametrize("product", ["Watch6,1", "iPhone15,2"])
@pytest.mark.parametrize("form", ["xml", "binary"])
def test_unusable_udid_400_without_row(gt, site, udid, product, form):
    raw = udid.encode() if udid else b""
    placeholder = b"Q" * len(raw)
    fields = machine_info(placeholder.decode() if udid and raw.isascii()
                          else "x" if udid is None else udid, product=product)
    if udid is None:
        del fields["UDID"]
    body = plist_bytes(fields, form)
    if udid and raw.isascii():          # plistlib writes no control characters
        body = body.replace(b"<string>%s</string>" % placeholder, b"<string>%s</string>" % raw) \
            if form == "xml" else body.replace(placeholder, raw)
    before, mark = count_rows(site), site.h.log_mark()
    r = enroll(gt, site.watch.port, body, "application/xml")
    assert_bad_request(gt, site, r, r"\(400\).*(no usable UDID|malformed)", mark, before)


@pytest.mark.gt_log("GT02021")
def test_udid_invalid_utf8_400(gt, site):
    """Raw bytes that are not UTF-8 in a binary plist's ASCII string object."""
    body = plist_bytes(machine_info("ZZZZ"), "binary").replace(b"ZZZZ", b"\xff\xfeZZ")
    before, mark = count_rows(site), site.h.log_mark()
    r = enroll(gt, site.watch.port, body, "application/octet-stream")
    assert_bad_request(gt, site, r, r"no usable UDID", mark, before)


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


@pytest.mark.gt_log("GT02021")
@pytest.mark.parametrize("form,product", [("xml", "Watch6,1"), ("xml", "&#87;atch6,1"),
                                          ("xml", "iPhone15,2"), ("binary", "Watch6,1"),
                                          ("binary", "iPhone15,2")])
def test_over_bounds_body_refused(gt, site, form, product):
    """Over the bounds nobody can tell whose MachineInfo it is: refused, whatever
    its PRODUCT says (the character reference made it past a byte search)."""
    extra = {"K%03d" % i: "v" for i in range(100)}
    raw = product.startswith("&")          # written into the XML as it is
    fields = machine_info(new_watch_udid(), product="PRODUCT-HERE" if raw else product, **extra)
    body = plist_bytes(fields, form).replace(b"PRODUCT-HERE", product.encode())
    before, mark = count_rows(site), site.h.log_mark()
    r = enroll(gt, site.watch.port, body, "application/xml")
    assert_bad_request(gt, site, r, r"GT02021: watch enrollment refused \(400\): .*more objects than",
                       mark, before)


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


def test_spoofed_headers_removed_on_pass_through(gt, site):
    body, ct = encode(machine_info("00008110-AAAA", product="iPhone15,2"), "cms", signer(gt))
    r = enroll(gt, site.watch.port, body, ct, SPOOF)
    assert r.status == 200
    rec, got = site.h.record(r.test_id)
    assert got == body
    assert PHONE_HEADER.lower() not in rec["headers"] and ISSUER_HEADER.lower() not in rec["headers"]


# Spellings of the module's headers that a backend may fold into the same name
# (WSGI/Rack/CGI: HTTP_GETTOKEN_WATCH_PAIRED_PHONE), and one it never sets.
FOLDED = ["GetToken_Watch_Paired_Phone", "GETTOKEN_WATCH_PAIRING_ISSUER",
          "gettoken-watch-paired-phone", "GetToken-Watch_Pairing-Issuer",
          "GetToken.Watch.Paired.Phone", "GetToken-Watch-Anything"]


def watch_headers(headers):
    """The request headers (name, value) a backend would fold into GetToken-Watch-*."""
    return [(n, v) for n, v in headers
            if re.sub(r"[^a-z0-9]", "-", n.lower()).startswith("gettoken-watch-")]


@pytest.fixture(scope="module")
def proxied(gt, site):
    """The gate in front of mod_proxy (HTTP/1.1 and h2 from clients): the MDM
    sees every header as sent, as WSGI/Rack servers do."""
    from gt_backend import RecordingBackend
    backend = RecordingBackend().start()
    v = gt.vhost(gettoken=False, signing_key=None, uuid=None, db=gt.make_db("watch-proxied", []),
                 backend=False, directives="Protocols h2 http/1.1\n" + "\n".join(
                     "GetTokenWatchPairingTrust %s %s" % t for t in site.trust),
                 location="GetTokenWatchEnrollment On\nProxyPass http://127.0.0.1:%d/enroll"
                          % backend.port)
    h = gt.httpd([v], extra_global="LoadModule http2_module %s/mod_http2.so" % MODDIR)
    try:
        h.start()
        yield h, backend
    finally:
        h.stop()
        backend.stop()


def curl_h2(gt, port, body, headers):
    """POST body over h2 with curl; (status, X-Test-Id)."""
    test_id = uuid.uuid4().hex
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        args = ["curl", "-sS", "--http2", "--cacert", gt.pki.ca_cert_path, "-o", "/dev/null",
                "-w", "%{http_version} %{http_code}", "--data-binary", "@" + f.name,
                "-H", "Content-Type: " + PKCS7_CT, "-H", "X-Test-Id: " + test_id]
        for n, v in headers.items():
            args += ["-H", "%s: %s" % (n, v)]
        out = subprocess.run(args + ["https://127.0.0.1:%d/mdm/checkin" % port],
                             capture_output=True, timeout=30, check=True).stdout.decode()
    version, status = out.split()
    assert version == "2", out
    return int(status), test_id


@pytest.mark.parametrize("proto", ["http/1.1", "h2"])
@pytest.mark.parametrize("case", ["phone", "watch"])
def test_folded_spellings_stripped(gt, site, proxied, proto, case):
    h, backend = proxied
    spoof = {n: "SPOOFED-%d" % i for i, n in enumerate(FOLDED)}
    if case == "phone":
        body, _ = encode(machine_info("00008110-AAAA", product="iPhone15,2"), "cms", signer(gt))
    else:
        udid = new_watch_udid()
        secret = security_token(gt, site, h.vhosts[0], udid)
        body, _ = encode(machine_info(udid, token=pairing_token(gt, site, udid, secret)), "cms",
                         signer(gt))
    if proto == "h2":
        status, test_id = curl_h2(gt, h.port, body, spoof)
    else:
        r = enroll(gt, h.port, body, PKCS7_CT, spoof)
        status, test_id = r.status, r.test_id
    assert status == 200
    rec = backend.wait(test_id)
    assert rec is not None and rec.body == body
    got = watch_headers(rec.headers)
    assert not [v for _, v in got if "SPOOFED" in v], got
    if case == "phone":
        assert got == []
    else:
        assert sorted(got) == sorted([(PHONE_HEADER, gt.devices["dev_a"].enrollment_id),
                                      (ISSUER_HEADER, site.phone.uuid)]), got


# --- what is not a watch passes untouched ----------------------------------------------------

def device_info(product, udid, **extra):
    """MachineInfo as an iPhone, iPad or Mac sends it (the keys of Apple's MachineInfo)."""
    d = {"UDID": udid, "SERIAL": "F" + uuid.uuid4().hex[:11].upper(), "PRODUCT": product,
         "VERSION": "22A3354", "OS_VERSION": "18.0", "LANGUAGE": "en-GB",
         "SOFTWARE_UPDATE_DEVICE_ID": "D74AP", "MDM_CAN_REQUEST_SOFTWARE_UPDATE": True,
         "SUPPLEMENTAL_BUILD_VERSION": "22A3354", "SUPPLEMENTAL_OS_VERSION_EXTRA": ""}
    d.update(extra)
    return d


def not_watch_bodies(gt):
    phone = "00008110-" + uuid.uuid4().hex[:16].upper()
    iphone = device_info("iPhone15,2", phone, IMEI="35 209900 176148 1", MEID="35209900176148")
    ipad = device_info("iPad13,4", "00008103-" + uuid.uuid4().hex[:16].upper())
    mac = device_info("Mac14,2", str(uuid.uuid4()).upper(), SOFTWARE_UPDATE_DEVICE_ID="J413AP")
    return {
        "iphone-cms": (sign_attached(plist_bytes(iphone), signer(gt)), PKCS7_CT),
        "iphone-cms-openssl": (encode(iphone, "cms-openssl", signer(gt))[0], PKCS7_CT),
        "iphone-cms-rogue-signer": (sign_attached(plist_bytes(iphone), gt.devices["dev_rogue"]),
                                    PKCS7_CT),
        "iphone-xml": (plist_bytes(iphone), "application/xml"),
        "ipad-cms": (sign_attached(plist_bytes(ipad, "binary"), signer(gt)), PKCS7_CT),
        "ipad-binary": (plist_bytes(ipad, "binary"), "application/x-apple-aspen-config"),
        "mac-binary": (plist_bytes(mac, "binary"), "application/octet-stream"),
        "mac-cms": (encode(mac, "cms-openssl", signer(gt))[0], PKCS7_CT),
    }


NOT_WATCH = ["iphone-cms", "iphone-cms-openssl", "iphone-cms-rogue-signer", "iphone-xml",
             "ipad-cms", "ipad-binary", "mac-binary", "mac-cms"]


@pytest.mark.parametrize("kind", NOT_WATCH)
@pytest.mark.parametrize("where", ["watch", "watch_ca"])
def test_not_a_watch_passes_untouched(gt, site, kind, where):
    body, ct = not_watch_bodies(gt)[kind]
    vhost = getattr(site, where)
    before = count_rows(site)
    r = enroll(gt, vhost.port, body, ct)
    assert r.status == 200, (r.status, site.h.log_tail(3))
    rec, got = site.h.record(r.test_id)
    assert got == body and rec["content_type"] == ct
    assert count_rows(site) == before


def test_identity_encoding_passes(gt, site):
    body, ct = not_watch_bodies(gt)["iphone-cms"]
    for value in ("identity", "IDENTITY", " identity "):
        r = enroll(gt, site.watch.port, body, ct, {"Content-Encoding": value})
        assert r.status == 200 and site.h.record(r.test_id)[1] == body


def test_get_passes(gt, site):
    with gt.client(site.watch.port) as c:
        r = c.request(b"", method="GET", path="/mdm/checkin", content_type=None, keep=False)
    assert r.status == 200 and site.h.record(r.test_id)


# --- fails closed: everything else is refused ------------------------------------------------

def openssl_cms(content, ident, *extra):
    """`openssl cms -sign` of content with extra options (DER out)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mi.plist")
        with open(path, "wb") as f:
            f.write(content)
        return subprocess.run(["openssl", "cms", "-sign", "-binary", "-md", "sha256",
                               "-outform", "DER", "-signer", ident.cert_path, "-inkey",
                               ident.key_path, "-in", path] + list(extra),
                              check=True, capture_output=True, timeout=30).stdout


def xml_with(udid, product_xml, extra_xml=""):
    """A MachineInfo XML plist with PRODUCT written as product_xml (raw XML)."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD '
            'PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist '
            'version="1.0">\n<dict>\n\t<key>UDID</key>\n\t<string>%s</string>\n\t<key>'
            'SERIAL</key>\n\t<string>FAAAAAAAAAAA</string>\n\t<key>PRODUCT</key>\n\t%s\n%s'
            '\t<key>VERSION</key>\n\t<string>21R5320</string>\n</dict>\n</plist>\n'
            % (udid, product_xml, extra_xml)).encode()


def gzip_of(data):
    import gzip
    return gzip.compress(data)


def refused_bodies(gt, udid):
    """(body, content type, extra headers, reason) the gate refuses with 400."""
    watch = plist_bytes(machine_info(udid))
    phone = plist_bytes(machine_info(udid, product="iPhone15,2"))
    signed_watch = sign_attached(watch, signer(gt))
    signed_phone = sign_attached(phone, signer(gt))
    dup_bin = plist_bytes({**machine_info(udid, product="iPhone15,2"), "PRODUCX": "Watch6,1"},
                          "binary").replace(b"PRODUCX", b"PRODUCT")
    return {
        # a watch (and a phone) CMS-signed in another shape than the one read
        "cms-trailing-byte": (signed_watch + b"\0", PKCS7_CT, {}, r"ContentInfo filling"),
        "cms-trailing-byte-phone": (signed_phone + b"x", PKCS7_CT, {}, r"ContentInfo filling"),
        "cms-other-econtent-type": (openssl_cms(watch, signer(gt), "-nodetach", "-econtent_type",
                                                "1.2.840.113549.1.9.16.1.4"), PKCS7_CT, {},
                                    r"attached id-data"),
        "cms-detached": (openssl_cms(watch, signer(gt)), PKCS7_CT, {}, r"attached id-data"),
        "cms-ber-indefinite": (openssl_cms(watch, signer(gt), "-nodetach", "-stream"),
                               PKCS7_CT, {}, r"ContentInfo filling"),
        "cms-pem": (openssl_cms(watch, signer(gt), "-nodetach").hex().encode(), PKCS7_CT, {},
                    r"plist is malformed"),
        "cms-cut-short": (signed_watch[:-1], PKCS7_CT, {}, r"ContentInfo filling"),
        # a Content-Encoding the gate does not read
        "gzip": (gzip_of(watch), "application/xml", {"Content-Encoding": "gzip"}, r"gzip"),
        "gzip-phone": (gzip_of(phone), "application/xml", {"Content-Encoding": "gzip"}, r"gzip"),
        "deflate": (zlib.compress(watch), "application/xml", {"Content-Encoding": "deflate"},
                    r"deflate"),
        "br": (watch, "application/xml", {"Content-Encoding": "br"}, r"Content-Encoding br"),
        "identity-with-params": (watch, "application/xml", {"Content-Encoding": "identity;q=1"},
                                 r"identity;q=1"),
        "identity-then-gzip": (watch, "application/xml",
                               {"Content-Encoding": "identity, gzip"}, r"identity, gzip"),
        # keys a reader behind the gate could take differently
        "duplicate-product-xml": (xml_with(udid, "<string>iPhone15,2</string>",
                                           "\t<key>PRODUCT</key>\n\t<string>Watch6,1</string>\n"),
                                  "application/xml", {}, r"key given twice"),
        "duplicate-product-binary": (dup_bin, "application/octet-stream", {},
                                     r"differ in case only \(or one is given twice\)"),
        "product-lower-case-key": (xml_with(udid, "<string>iPhone15,2</string>",
                                            "\t<key>product</key>\n\t<string>Watch6,1</string>\n"),
                                   "application/xml", {}, r"(in another case|differ in case)"),
        "key-in-comment": (xml_with(udid, "<string>iPhone15,2</string>",
                                    "\t<!-- <key>PRODUCT</key><string>Watch6,1</string> -->\n"),
                           "application/xml", {}, r"key given twice, or a key element"),
        "product-data": (xml_with(udid, "<data>V2F0Y2g2LDE=</data>"), "application/xml", {},
                         r"no PRODUCT string"),
        "product-fullwidth": (xml_with(udid, "<string>&#xff37;atch6,1</string>"),
                              "application/xml", {}, r"printable ASCII"),
        "product-utf16-binary": (plist_bytes(machine_info(udid, product="Watch6,1\u00e9"),
                                             "binary"), "application/octet-stream", {},
                                 r"printable ASCII"),
        "product-leading-space": (xml_with(udid, "<string> Watch6,1</string>"), "application/xml",
                                  {}, r"printable ASCII"),
        # no MachineInfo at all
        "no-product": (plist_bytes({"UDID": udid, "SERIAL": "F"}), "application/xml", {},
                       r"no PRODUCT"),
        "checkin-plist": (plist_bytes({"MessageType": "Authenticate", "UDID": "U",
                                       "Topic": "com.apple.mgmt"}), "application/xml", {},
                          r"no PRODUCT"),
        "json": (b'{"PRODUCT": "Watch6,1", "UDID": "%s"}' % udid.encode(), "application/json",
                 {}, r"malformed"),
        "random": (os.urandom(3000), "application/octet-stream", {}, r"."),
        "form": (b"a=1&b=2", "application/x-www-form-urlencoded", {}, r"malformed"),
        "utf16-xml": (b"\xff\xfe" + watch.decode().encode("utf-16-le"), "application/xml", {},
                      r"(malformed|NUL)"),
        "array": (plist_bytes([machine_info(udid)]), "application/xml", {}, r"not a dict"),
        "empty": (b"", "application/xml", {"Content-Length": "0"}, r"without a body"),
    }


REFUSED = ["cms-trailing-byte", "cms-trailing-byte-phone", "cms-other-econtent-type",
           "cms-detached", "cms-ber-indefinite", "cms-pem", "cms-cut-short", "gzip", "gzip-phone",
           "deflate", "br", "identity-with-params", "identity-then-gzip", "duplicate-product-xml",
           "duplicate-product-binary", "product-lower-case-key", "key-in-comment", "product-data",
           "product-fullwidth", "product-utf16-binary", "product-leading-space", "no-product",
           "checkin-plist", "json", "random", "form", "utf16-xml", "array", "empty"]


@pytest.mark.gt_log("GT02019", "GT02020", "GT02021")
@pytest.mark.parametrize("kind", REFUSED)
def test_unreadable_refused_400(gt, site, kind):
    """Whatever the gate cannot read as a MachineInfo is refused: it never reaches
    the MDM and writes no row."""
    body, ct, headers, reason = refused_bodies(gt, new_watch_udid())[kind]
    before, mark = count_rows(site), site.h.log_mark()
    r = enroll(gt, site.watch.port, body, ct, headers)
    assert_bad_request(gt, site, r, r"refused \(400\).*" + reason, mark, before)


WATCH_SPELT = {
    "char-ref-decimal": "<string>&#87;atch6,1</string>",
    "char-ref-hex": "<string>&#x57;&#x61;tch6,1</string>",
    "cdata": "<string><![CDATA[Wat]]>ch6,1</string>",
    "comment-inside": "<string>Wa<!-- -->tch6,1</string>",
    "lower-case": "<string>watch6,1</string>",
    "upper-case": "<string>WATCH6,1</string>",
    "mixed-case-ref": "<string>&#119;AtCh6,1</string>",
    "entity-amp": "<string>Watch&amp;6,1</string>",
}


@pytest.mark.parametrize("kind", sorted(WATCH_SPELT))
@pytest.mark.parametrize("signed", [False, True])
def test_watch_spelt_otherwise_is_a_watch(gt, site, kind, signed):
    """The gate decides on the decoded PRODUCT, in any case: each of these is a
    watch without PAIRING_TOKEN, answered 403 with its security token."""
    udid = new_watch_udid()
    body, ct = xml_with(udid, WATCH_SPELT[kind]), "application/xml"
    if signed:
        body, ct = sign_attached(body, signer(gt)), PKCS7_CT
    r = enroll(gt, site.watch.port, body, ct)
    assert r.status == 403 and json.loads(r.body)["code"] == MISSING_CODE, (r.status, r.body)
    assert site.h.record(r.test_id, timeout=0) is None
    assert len(rows_of(site.db, udid)) == 1


@pytest.mark.gt_log("GT02011")
def test_chunked_over_size_413(gt, site):
    with gt.client(site.watch.port) as c:
        r = c.request(b"<plist>" + b"x" * 70000, method="POST", path="/mdm/checkin",
                      content_type="application/xml", chunked=True, keep=False)
    assert r.status == 413
    assert site.h.record(r.test_id, timeout=0) is None


def rsa_signer(gt, name, exponent, bits=2048):
    """An identity (cert_path, key_path) whose RSA key has the given public exponent."""
    d = os.path.join(gt.dir, "rsa-" + name)
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:%d" % bits, "-pkeyopt", "rsa_keygen_pubexp:%d" % exponent,
                    "-out", key], check=True, capture_output=True, timeout=120)
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-subj", "/CN=" + name,
                    "-days", "30", "-out", cert], check=True, capture_output=True, timeout=60)

    class Ident:
        cert_path, key_path = cert, key
    return Ident


@pytest.mark.gt_log("GT02014")
def test_signer_with_huge_rsa_exponent_refused(gt, site):
    """A signer key that makes verification expensive is refused before it."""
    huge = rsa_signer(gt, "huge-e", 2 ** 64 + 13, 1024)
    fine = rsa_signer(gt, "fine-e", 2 ** 32 - 1, 1024)
    udid = new_watch_udid()
    body = openssl_cms(plist_bytes(machine_info(udid)), huge, "-nodetach")
    mark = site.h.log_mark()
    r = enroll(gt, site.watch.port, body)
    assert_refused(site, r, r"exponent is over 2\^32", mark)
    body = openssl_cms(plist_bytes(machine_info(udid)), fine, "-nodetach")
    r = enroll(gt, site.watch.port, body)
    assert r.status == 403 and json.loads(r.body)["code"] == MISSING_CODE


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


# with or without a pooled connection, while reading, recording or using up
@pytest.mark.gt_log("GT02003", "GT02005", "GT02007", "GT02008", "GT02017")
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


def test_db_repeat_and_purge_batch(gt, site, sqldb, nodes):
    """On PostgreSQL and MariaDB too: a repeated ask returns the recorded token
    (one row per node), and a due purge deletes one batch of expired rows with
    the portable bounded DELETE."""
    a, b = nodes
    udid = new_watch_udid()
    first = security_token(gt, site, a.vhosts[0], udid)
    assert security_token(gt, site, a.vhosts[0], udid) == first
    assert security_token(gt, site, b.vhosts[0], udid) != first     # another node's key
    rows = sqldb.sql("watchmdm", "SELECT count(*) FROM gettoken_watch_security_token WHERE "
                                 "watch_udid = '%s'" % udid).strip()
    assert int(rows) == 2, rows
    sqldb.sql("watchmdm", "INSERT INTO gettoken_watch_security_token (security_token, sth, "
                          "watch_udid, expires_at, used) VALUES " + ", ".join(
                              "('old-%d', 'old-sth-%d', 'OLD', %d, 0)" % (i, i, 1000 + i)
                              for i in range(300)))
    time.sleep(1.1)             # every process's next batch is due
    mark = a.log_mark()
    security_token(gt, site, a.vhosts[0], new_watch_udid())
    left = int(sqldb.sql("watchmdm", "SELECT count(*) FROM gettoken_watch_security_token "
                                     "WHERE watch_udid = 'OLD'").strip())
    assert left == 300 - PURGE_BATCH, left
    assert not a.wait_log(mark, r"GT02016", timeout=0.5)
