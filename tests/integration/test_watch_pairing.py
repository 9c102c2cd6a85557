# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""com.apple.watch.pairing: the GetTokenWatchPairing* directives, the 400/403
answers of the issuing side, the token claims, gettoken-watch-verify and its
jti table, which makes a token usable once.

One httpd holds the phone organisation's vhosts (they issue) and a watch MDM
vhost (it verifies, trusting the phone organisation's keys); tamper tests forge
tokens with the test PKI's keys.  Replay across two nodes needs one shared
database, so it is tested with PostgreSQL and MariaDB.
"""
import base64
import hashlib
import hmac
import plistlib
import ssl
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gt_client import UUID4_RX, decode_unverified, gettoken_fields, token_from_response
from gt_httpd import running
from pairing_helpers import (P256_ORDER, PAIRING, VERIFY_LOCATION, VERIFY_PATH, Pairing, b64url,
                             es256, high_s, issue_request, new_watch_udid, public_key_pem_file,
                             resign_parts, sth_of, verify_request, watch_vhost)
from gt_sql import SERVERS, served_sql
from gt_stream import run_concurrently

@pytest.fixture(scope="module")
def pairing(gt):
    ec_key = gt.pki.maid_ec.key_path
    phone = gt.vhost(directives="GetTokenWatchPairingKey %s" % ec_key)
    phone_rsa = gt.vhost()
    phone_short = gt.vhost(directives="GetTokenWatchPairingKey %s\nGetTokenWatchPairingLifetime 1"
                           % ec_key)
    rsa_pub = public_key_pem_file(gt, gt.pki.maid_rsa, "maid_rsa.pub.pem")
    ec_cert = gt.pki.maid_ec.cert_path
    watch = watch_vhost(gt, [(phone.uuid, ec_cert), (phone_short.uuid, ec_cert),
                             (phone_rsa.uuid, rsa_pub)], gt.make_db("watch", []))
    h = gt.httpd([phone, phone_rsa, phone_short, watch])
    h.start()
    try:
        p = Pairing(h, phone, phone_rsa, phone_short, watch, None)
        p.short = p.issue(gt, phone_short)
        yield p
    finally:
        h.stop()


def assert_verified(resp, phone_udid, issuer):
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert (resp.header("Content-Type") or "").split(";")[0] == "application/xml"
    assert plistlib.loads(resp.body) == {"PhoneUDID": phone_udid, "Issuer": issuer}


def assert_refused(p, resp, reason, mark=None):
    assert resp.status == 403, (resp.status, resp.body[:300])
    if mark is not None:
        lines = p.h.wait_log(mark, r"gettoken: GT019\d\d: pairing verify refused \(403\): "
                                   r"pairing token: " + reason)
        assert len(lines) == 1, p.h.log_since(mark)


# --- issuing (the phone's MDM) ---------------------------------------------------

@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_issued_token_claims(gt, pairing, fmt):
    dev = gt.devices["dev_a"]
    watch, secret = new_watch_udid(), "s3cr3t-" + uuid.uuid4().hex
    fields = gettoken_fields(PAIRING, udid=dev.enrollment_id,
                             params={"SecurityToken": secret, "PhoneUDID": dev.enrollment_id,
                                     "WatchUDID": watch})
    t0 = int(time.time())
    with gt.client(pairing.phone.port, "dev_a") as c:
        r = c.checkin(fields, fmt=fmt)
    token = token_from_response(r)
    header, claims, sig = decode_unverified(token)
    assert header == {"alg": "ES256", "typ": "JWT"}
    assert len(sig) == 64
    # low-s, the one form a verifier accepts (P256_ORDER // 2)
    assert int.from_bytes(sig[32:], "big") <= P256_ORDER // 2
    verified = jwt.decode(token, gt.pki.maid_ec.public_key, algorithms=["ES256"],
                          options={"verify_aud": False})
    assert verified == claims
    assert set(claims) == {"iss", "iat", "exp", "jti", "service_type", "phone_udid",
                           "watch_udid", "sth"}
    assert claims["iss"] == pairing.phone.uuid
    assert isinstance(claims["iat"], int) and t0 - 1 <= claims["iat"] <= time.time() + 1
    assert claims["exp"] == claims["iat"] + 300
    assert UUID4_RX.match(claims["jti"])
    assert claims["service_type"] == PAIRING
    assert claims["phone_udid"] == dev.enrollment_id
    assert claims["watch_udid"] == watch
    assert claims["sth"] == sth_of(secret)
    assert secret not in token and secret not in base64.b64decode(token.split(".")[1] + "==").decode()
    # GETTOKEN_JTI for mod_log_config
    lines = pairing.h.access_lines(r.test_id)
    assert lines and " svc=%s " % PAIRING in lines[0] and " jti=%s " % claims["jti"] in lines[0]


def test_issued_with_signing_key_by_default(gt, pairing):
    token, _, _ = pairing.issue(gt, pairing.phone_rsa)
    header, claims, _ = decode_unverified(token)
    assert header == {"alg": "RS256", "typ": "JWT"}
    jwt.decode(token, gt.pki.maid_rsa.public_key, algorithms=["RS256"])
    assert claims["iss"] == pairing.phone_rsa.uuid


def test_jti_never_repeats(gt, pairing):
    jtis = {decode_unverified(pairing.issue(gt)[0])[1]["jti"] for _ in range(10)}
    assert len(jtis) == 10


@pytest.mark.parametrize("missing", ["SecurityToken", "PhoneUDID", "WatchUDID", "all", "empty"])
@pytest.mark.gt_log("GT01703")
def test_issue_missing_parameter_400(gt, pairing, missing):
    dev = gt.devices["dev_a"]
    params = {"SecurityToken": "s", "PhoneUDID": dev.enrollment_id, "WatchUDID": new_watch_udid()}
    if missing == "all":
        params = None
    elif missing == "empty":
        params["WatchUDID"] = ""
    else:
        del params[missing]
    mark = pairing.h.log_mark()
    fields = gettoken_fields(PAIRING, udid=dev.enrollment_id, params=params)
    with gt.client(pairing.phone.port, "dev_a") as c:
        r = c.checkin(fields)
    assert r.status == 400, r.body[:200]
    assert pairing.h.wait_log(mark, r"GetToken refused \(400\): com.apple.watch.pairing: "
                                    r"TokenParameters must hold")


@pytest.mark.gt_log("GT01407")
def test_issue_parameter_not_a_string_400(gt, pairing):
    dev = gt.devices["dev_a"]
    fields = gettoken_fields(PAIRING, udid=dev.enrollment_id,
                             params={"SecurityToken": b"bytes", "PhoneUDID": dev.enrollment_id,
                                     "WatchUDID": new_watch_udid()})
    with gt.client(pairing.phone.port, "dev_a") as c:
        assert c.checkin(fields).status == 400


@pytest.mark.gt_log("GT01707")
def test_issue_phone_udid_of_another_device_403(gt, pairing):
    mark = pairing.h.log_mark()
    other = gt.devices["dev_b"].enrollment_id
    r = issue_request(gt, pairing.phone.port, "dev_a", phone=other, watch=new_watch_udid(),
                      secret="s")
    assert r.status == 403
    lines = pairing.h.wait_log(mark, r"refused \(403\): com.apple.watch.pairing: UDID mismatch")
    assert lines and other in lines[0]


@pytest.mark.gt_log("GT01706")
def test_issue_user_enrollment_403(gt, pairing):
    dev = gt.devices["dev_user"]
    fields = gettoken_fields(PAIRING, enrollment_id=dev.enrollment_id,
                             params={"SecurityToken": "s", "PhoneUDID": dev.enrollment_id,
                                     "WatchUDID": new_watch_udid()})
    with gt.client(pairing.phone.port, "dev_user") as c:
        assert c.checkin(fields).status == 403


@pytest.mark.gt_log("GT01204")
def test_issue_unauthenticated_401(gt, pairing):
    dev = gt.devices["dev_a"]
    fields = gettoken_fields(PAIRING, udid=dev.enrollment_id,
                             params={"SecurityToken": "s", "PhoneUDID": dev.enrollment_id,
                                     "WatchUDID": new_watch_udid()})
    with gt.client(pairing.phone.port, None) as c:
        assert c.checkin(fields).status == 401


# --- verifying (the watch's MDM) -------------------------------------------------

@pytest.mark.parametrize("as_data", [True, False], ids=["data", "string"])
@pytest.mark.gt_log("GT01904")
def test_round_trip_single_use(gt, pairing, as_data):
    token, watch, secret = pairing.issue(gt)
    r = pairing.verify(gt, token, watch, secret, as_data=as_data)
    assert_verified(r, gt.devices["dev_a"].enrollment_id, pairing.phone.uuid)
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, watch, secret, as_data=as_data),
                   "replayed", mark)
    log = pairing.h.read_error_log()
    assert token not in log and token.split(".")[2] not in log and secret not in log


@pytest.mark.gt_log("GT01904")
def test_round_trip_rsa_public_key_trust(gt, pairing):
    token, watch, secret = pairing.issue(gt, pairing.phone_rsa, device="dev_b")
    assert_verified(pairing.verify(gt, token, watch, secret),
                    gt.devices["dev_b"].enrollment_id, pairing.phone_rsa.uuid)
    assert pairing.verify(gt, token, watch, secret).status == 403


@pytest.mark.gt_log("GT01911")
def test_wrong_watch_udid_and_security_token_403(gt, pairing):
    token, watch, secret = pairing.issue(gt)
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, new_watch_udid(), secret),
                   "UDID mismatch", mark)
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, watch, secret + "x"),
                   "SecurityToken mismatch", mark)
    assert pairing.verify(gt, token, watch.lower(), secret).status == 403
    # refused attempts did not use the token up
    assert_verified(pairing.verify(gt, token, watch, secret),
                    gt.devices["dev_a"].enrollment_id, pairing.phone.uuid)


TAMPER = {
    "iss": lambda c, w, s: str(uuid.uuid4()),
    "iat": lambda c, w, s: c["iat"] + 3600,
    "exp": lambda c, w, s: c["exp"] + 86400,
    "jti": lambda c, w, s: str(uuid.uuid4()),
    "service_type": lambda c, w, s: "com.apple.maid",
    "phone_udid": lambda c, w, s: "00008110-" + uuid.uuid4().hex[:16].upper(),
    "watch_udid": lambda c, w, s: w,
    "sth": lambda c, w, s: sth_of(s),
}


@pytest.mark.parametrize("claim", sorted(TAMPER))
@pytest.mark.gt_log("GT01908", "GT01910")
def test_tampered_claim_403(gt, pairing, claim):
    token, watch, secret = pairing.issue(gt)
    _, claims, _ = decode_unverified(token)
    # the attacker's own watch and secret, made to match the altered claims
    a_watch, a_secret = new_watch_udid(), "attacker"
    claims[claim] = TAMPER[claim](claims, a_watch, a_secret)
    use_watch = a_watch if claim == "watch_udid" else watch
    use_secret = a_secret if claim == "sth" else secret
    mark = pairing.h.log_mark()
    # a changed iss names an issuer the watch vhost does not list
    assert_refused(pairing, pairing.verify(gt, resign_parts(token, claims), use_watch, use_secret),
                   "untrusted issuer" if claim == "iss" else "bad signature", mark)
    # the genuine token is still good, once
    assert pairing.verify(gt, token, watch, secret).status == 200


@pytest.mark.gt_log("GT01909", "GT01910")
def test_signature_bit_flips_403(gt, pairing):
    token, watch, secret = pairing.issue(gt)
    sig = decode_unverified(token)[2]
    for bit in (0, 7, 100, 255, 256, 300, 511):
        flipped = bytearray(sig)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert pairing.verify(gt, resign_parts(token, sig=bytes(flipped)), watch,
                              secret).status == 403, bit
    assert pairing.verify(gt, resign_parts(token, sig=sig[:63]), watch, secret).status == 403
    assert pairing.verify(gt, resign_parts(token, sig=sig + b"\0"), watch, secret).status == 403
    assert pairing.verify(gt, token, watch, secret).status == 200


@pytest.mark.gt_log("GT01910")
def test_high_s_twin_403(gt, pairing):
    """(r, n - s) verifies as ECDSA, but only the low-s form is accepted."""
    token, watch, secret = pairing.issue(gt)
    twin = high_s(token)
    assert twin != token
    # the twin is a valid signature to python3-jwt: only the form is refused
    jwt.decode(twin, gt.pki.maid_ec.public_key, algorithms=["ES256"], options={"verify_aud": False})
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, twin, watch, secret), r"bad signature.*not low-s",
                   mark)
    assert pairing.verify(gt, token, watch, secret).status == 200


@pytest.mark.parametrize("variant", ["none-empty-sig", "none-with-sig", "hs256-cert-pem",
                                     "hs256-pubkey-pem", "hs256-rsa-pubkey", "es256-as-rs256"])
@pytest.mark.gt_log("GT01909", "GT01910")
def test_algorithm_switch_403(gt, pairing, variant):
    token, watch, secret = pairing.issue(gt)
    h64, c64, s64 = token.split(".")
    if variant.startswith("none"):
        head = b64url(b'{"alg":"none","typ":"JWT"}')
        forged = "%s.%s.%s" % (head, c64, "" if variant == "none-empty-sig" else s64)
    elif variant.startswith("hs256"):
        # algorithm confusion: HMAC keyed with what the verifier holds publicly
        if variant == "hs256-cert-pem":
            with open(gt.pki.maid_ec.cert_path, "rb") as f:
                secret_key = f.read()
        elif variant == "hs256-pubkey-pem":
            secret_key = gt.pki.maid_ec.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        else:
            secret_key = gt.pki.maid_rsa.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = b64url(b'{"alg":"HS256","typ":"JWT"}')
        mac = hmac.new(secret_key, ("%s.%s" % (head, c64)).encode(), hashlib.sha256).digest()
        forged = "%s.%s.%s" % (head, c64, b64url(mac))
    else:
        head = b64url(b'{"alg":"RS256","typ":"JWT"}')
        forged = "%s.%s.%s" % (head, c64, s64)
    mark = pairing.h.log_mark()
    r = pairing.verify(gt, forged, watch, secret)
    assert r.status == 403
    assert pairing.h.wait_log(mark, r"GT019(09|10): pairing verify refused \(403\): "
                                    r"pairing token: (bad signature|malformed token)")
    assert pairing.verify(gt, token, watch, secret).status == 200


@pytest.mark.gt_log("GT01907", "GT01909", "GT01910")
def test_truncated_token_403(gt, pairing):
    token, watch, secret = pairing.issue(gt)
    for n in (1, 10, len(token) // 2, token.rindex("."), token.rindex(".") + 1, len(token) - 1):
        assert pairing.verify(gt, token[:n], watch, secret).status == 403, n
    assert pairing.verify(gt, token + "A", watch, secret).status == 403
    assert pairing.verify(gt, token + ".", watch, secret).status == 403
    assert pairing.verify(gt, token, watch, secret).status == 200


def forged_claims(gt, pairing, **over):
    now = int(time.time())
    claims = {"iss": pairing.phone.uuid, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()),
              "service_type": PAIRING, "phone_udid": gt.devices["dev_a"].enrollment_id,
              "watch_udid": new_watch_udid(), "sth": sth_of("sec")}
    claims.update(over)
    return claims


@pytest.mark.gt_log("GT01910")
def test_other_organisation_key_403(gt, pairing):
    """A valid signature by a key the watch vhost does not trust."""
    claims = forged_claims(gt, pairing, iss=pairing.phone_rsa.uuid)
    token = jwt.encode(claims, gt.pki.maid_rsa2.key, algorithm="RS256")
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, claims["watch_udid"], "sec"),
                   "bad signature", mark)
    # the same claims signed by a trusted key pass: only the key made the difference
    good = jwt.encode(claims, gt.pki.maid_rsa.key, algorithm="RS256")
    assert pairing.verify(gt, good, claims["watch_udid"], "sec").status == 200


@pytest.mark.gt_log("GT01910")
def test_key_of_another_issuer_403(gt, pairing):
    """Organisation B's trusted key cannot vouch for organisation A: a token
    with iss = A signed by B's key is refused, the same claims signed by A's
    own key pass."""
    org_a, org_b_key = pairing.phone.uuid, gt.pki.maid_rsa.key   # B = phone_rsa
    claims = forged_claims(gt, pairing, iss=org_a)
    token = jwt.encode(claims, org_b_key, algorithm="RS256")
    mark = pairing.h.log_mark()
    r = pairing.verify(gt, token, claims["watch_udid"], "sec")
    assert_refused(pairing, r, "bad signature: .*; iss %s" % org_a, mark)
    assert b"Issuer" not in r.body
    # an EC key trusted for B would not do either
    claims_b = forged_claims(gt, pairing, iss=pairing.phone_rsa.uuid)
    token_b = es256(claims_b, gt.pki.maid_ec.key)
    assert pairing.verify(gt, token_b, claims_b["watch_udid"], "sec").status == 403
    # right key, right iss
    good = es256(claims, gt.pki.maid_ec.key)
    assert_verified(pairing.verify(gt, good, claims["watch_udid"], "sec"),
                    claims["phone_udid"], org_a)


@pytest.mark.gt_log("GT01908")
def test_unlisted_issuer_403(gt, pairing):
    """A trusted key signing for an issuer nobody listed: refused, one line."""
    stranger = str(uuid.uuid4())
    claims = forged_claims(gt, pairing, iss=stranger)
    token = es256(claims, gt.pki.maid_ec.key)
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, claims["watch_udid"], "sec"),
                   "untrusted issuer: iss %s is not listed" % stranger, mark)
    # the issuer is matched as a UUID, whatever its case
    claims = forged_claims(gt, pairing, iss=pairing.phone.uuid.upper())
    token = es256(claims, gt.pki.maid_ec.key)
    assert pairing.verify(gt, token, claims["watch_udid"], "sec").status == 200


@pytest.mark.gt_log("GT01910")
def test_untrusted_ec_key_403(gt, pairing):
    from cryptography.hazmat.primitives.asymmetric import ec
    claims = forged_claims(gt, pairing)
    token = es256(claims, ec.generate_private_key(ec.SECP256R1()))
    assert pairing.verify(gt, token, claims["watch_udid"], "sec").status == 403


@pytest.mark.parametrize("case", ["expired", "future", "absurd-lifetime", "maid-token",
                                  "exp-string", "no-jti"])
@pytest.mark.gt_log("GT01911")
def test_trusted_signature_bad_claims_403(gt, pairing, case):
    now = int(time.time())
    over = {"expired": dict(iat=now - 500, exp=now - 200),
            "future": dict(iat=now + 600, exp=now + 900),
            "absurd-lifetime": dict(exp=now + 10 * 365 * 86400),
            "exp-string": dict(exp=str(now + 300)),
            "maid-token": {}, "no-jti": {}}[case]
    claims = forged_claims(gt, pairing, **over)
    if case == "no-jti":
        del claims["jti"]
    if case == "maid-token":
        # a com.apple.maid token of phone_rsa (signed by maid_rsa, trusted for its iss)
        with gt.client(pairing.phone_rsa.port, "dev_a") as c:
            token = token_from_response(c.checkin(gettoken_fields(
                udid=gt.devices["dev_a"].enrollment_id)))
    else:
        token = es256(claims, gt.pki.maid_ec.key)
    reason = {"expired": "expired", "future": "not yet valid",
              "absurd-lifetime": "implausible lifetime"}.get(case, "malformed claims")
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, claims["watch_udid"], "sec"), reason, mark)


@pytest.mark.parametrize("case", ["not-plist", "not-dict", "no-TokenData", "no-WatchUDID",
                                  "no-SecurityToken", "TokenData-int", "empty-TokenData"])
@pytest.mark.gt_log("GT01915")
def test_verify_bad_request_400(gt, pairing, case):
    fields = {"TokenData": b"a.b.c", "WatchUDID": "W", "SecurityToken": "S"}
    body = None
    if case == "not-plist":
        body = b"TokenData=a.b.c&WatchUDID=W&SecurityToken=S"
    elif case == "not-dict":
        body = plistlib.dumps(["a.b.c", "W", "S"])
    elif case.startswith("no-"):
        del fields[case[3:]]
    elif case == "TokenData-int":
        fields["TokenData"] = 7
    else:
        fields["TokenData"] = b""
    mark = pairing.h.log_mark()
    r = verify_request(gt, pairing.watch.port, None, None, None, fields=fields, body=body)
    assert r.status == 400
    assert pairing.h.wait_log(mark, r"GT01915: pairing verify refused \(400\)")


def test_verify_get_405(gt, pairing):
    with gt.client(pairing.watch.port) as c:
        r = c.request(b"", method="GET", path=VERIFY_PATH, keep=False)
    assert r.status == 405
    assert "POST" in (r.header("Allow") or "")


@pytest.mark.gt_log("GT01914")
def test_verify_oversized_body_413(gt, pairing):
    body = plistlib.dumps({"TokenData": b"x" * 70000, "WatchUDID": "W", "SecurityToken": "S"})
    r = verify_request(gt, pairing.watch.port, None, None, None, body=body)
    assert r.status == 413


@pytest.mark.gt_log("GT01906")
def test_phone_vhost_does_not_verify(gt, pairing):
    """Trust is per vhost: the phone's vhost has none, so the handler refuses there."""
    h = gt.httpd([gt.vhost(directives=VERIFY_LOCATION)])
    h.start()
    try:
        token, watch, secret = pairing.issue(gt)
        r = verify_request(gt, h.port, token, watch, secret)
        assert r.status == 403
        assert h.wait_log(0, r"GT01906: pairing verify refused \(403\): pairing token: untrusted "
                                 r"issuer: no GetTokenWatchPairingTrust")
    finally:
        h.stop()


# --- configuration ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["empty-file", "rsa1024", "missing-file", "no-mod-dbd"])
def test_trust_misconfiguration_refused(gt, case):
    extra = {}
    trust = gt.pki.maid_ec.cert_path
    if case == "empty-file":
        trust = gt.pki.path("empty-trust.pem")
        open(trust, "w").close()
    elif case == "rsa1024":
        trust = gt.pki.rsa1024.cert_path
    elif case == "missing-file":
        trust = gt.pki.path("no-such-trust.pem")
    db = gt.db
    if case == "no-mod-dbd":
        extra["omit_modules"] = ("dbd",)
        db = ""
    h = gt.httpd([watch_vhost(gt, [(str(uuid.uuid4()), trust)], db)], **extra)
    rc, out = h.configtest()
    assert rc != 0
    assert "GetTokenWatchPairingTrust" in out, out
    lines = [l for l in out.splitlines() if "GetTokenWatchPairingTrust" in l]
    assert len(lines) == 1 and "mdm-" in lines[0], out


@pytest.mark.parametrize("args", ["%(cert)s", "%(cert)s %(cert)s", "not-a-uuid %(cert)s"])
def test_trust_needs_issuer_and_file(gt, args):
    """The one-argument form (any trusted key for any issuer) stops start-up
    with a line saying the new form."""
    directive = "GetTokenWatchPairingTrust " + args % {"cert": gt.pki.maid_ec.cert_path}
    h = gt.httpd([gt.vhost(gettoken=False, signing_key=None, uuid=None, db=gt.db,
                           directives=directive)])
    rc, out = h.configtest()
    assert rc != 0, out
    assert "GetTokenWatchPairingTrust takes <issuer-uuid> <file>" in out, out


def test_lifetime_directive_checked(gt):
    h = gt.httpd([gt.vhost(directives="GetTokenWatchPairingLifetime 0")])
    rc, out = h.configtest()
    assert rc != 0 and "GetTokenWatchPairingLifetime" in out


# --- two nodes sharing one database: PostgreSQL (pgsql) and MariaDB (mysql) -----------

@pytest.fixture(scope="module", params=SERVERS)
def sqldb(gt, request):
    yield from served_sql(request.param, gt.dir, "%s-pairing" % request.param, "watchjti")


# enough workers that 25 parked client connections per node stay open
NODE_MPM = "StartServers 2\nThreadsPerChild 16\nMaxRequestWorkers 32"


def pg_node(gt, sqldb, issuer):
    return gt.httpd([watch_vhost(gt, [(issuer, gt.pki.maid_ec.cert_path)], sqldb.dbd_params("watchjti"),
                                 db_driver=sqldb.driver)], extra_global=NODE_MPM)


@pytest.fixture(scope="module")
def nodes(gt, sqldb, pairing):
    yield from running(pg_node(gt, sqldb, pairing.phone.uuid), pg_node(gt, sqldb, pairing.phone.uuid))


@pytest.mark.gt_log("GT01904")
def test_two_nodes_single_use(gt, pairing, sqldb, nodes):
    a, b = nodes
    for first, second in ((a, b), (b, a)):
        token, watch, secret = pairing.issue(gt)
        jti = decode_unverified(token)[1]["jti"]
        r = verify_request(gt, first.port, token, watch, secret)
        assert r.status == 200, (r.status, first.log_tail())
        assert plistlib.loads(r.body)["PhoneUDID"] == gt.devices["dev_a"].enrollment_id
        mark = second.log_mark()
        assert verify_request(gt, second.port, token, watch, secret).status == 403
        lines = second.wait_log(mark, r"GT01904: pairing verify refused \(403\): pairing token: replayed")
        assert len(lines) == 1 and jti in lines[0]
        assert token not in second.read_error_log()
        # the row: the jti, kept until exp + the clock skew
        exp = decode_unverified(token)[1]["exp"]
        assert sqldb.sql("watchjti", "SELECT expires_at FROM gettoken_pairing_jti WHERE jti = '%s'"
                      % jti).strip() == str(exp + 60)


def concurrent_verifies(gt, ports, token, watch, secret, n):
    """n verifies of one token released together, spread over ports: statuses."""
    barrier = threading.Barrier(n)
    statuses = [None] * n
    errors = []
    body = plistlib.dumps({"TokenData": token.encode(), "WatchUDID": watch,
                           "SecurityToken": secret})

    def worker(i):
        c = gt.client(ports[i % len(ports)])
        try:
            try:     # TLS handshake before the barrier: a cheap 405 from the handler
                c.request(b"", method="GET", path=VERIFY_PATH)
            except (OSError, ssl.SSLError):
                c.close()     # a parked connection the server let go: reconnect below
            barrier.wait(timeout=60)
            try:
                statuses[i] = c.request(body, method="POST", path=VERIFY_PATH,
                                        content_type="application/xml").status
            except ssl.SSLEOFError:
                # the server had closed the parked keep-alive connection before
                # reading the request: it never saw it, send it again
                c.close()
                statuses[i] = c.request(body, method="POST", path=VERIFY_PATH,
                                        content_type="application/xml").status
        except Exception as e:     # noqa: BLE001 - reported by the assertion below
            errors.append(repr(e))
        finally:
            c.close()

    run_concurrently(worker, n)
    assert not errors, errors
    return statuses


@pytest.mark.gt_log("GT01904")
def test_fifty_concurrent_verifies_one_success(gt, pairing, nodes):
    a, b = nodes
    token, watch, secret = pairing.issue(gt)
    n = 50
    marks = (a.log_mark(), b.log_mark())
    statuses = concurrent_verifies(gt, [a.port, b.port], token, watch, secret, n)
    assert sorted(statuses) == [200] + [403] * (n - 1), statuses
    accepted = sum(len(h.wait_log(m, r"watch pairing token accepted", timeout=1))
                   for h, m in zip((a, b), marks))
    replayed = sum(len(h.wait_log(m, r"GT01904: .*refused \(403\): pairing token: replayed",
                               timeout=1))
                   for h, m in zip((a, b), marks))
    assert (accepted, replayed) == (1, n - 1)


@pytest.mark.gt_log("GT01904")
def test_concurrent_verifies_sqlite_one_success(gt, pairing):
    token, watch, secret = pairing.issue(gt)
    statuses = concurrent_verifies(gt, [pairing.watch.port], token, watch, secret, 8)
    assert sorted(statuses) == [200] + [403] * 7, statuses


def test_expired_rows_purged(gt, pairing, sqldb):
    now = int(time.time())
    stale, live = str(uuid.uuid4()), str(uuid.uuid4())
    sqldb.sql("watchjti", "INSERT INTO gettoken_pairing_jti (jti, expires_at) VALUES "
                       "('%s', %d), ('%s', %d)" % (stale, now - 10, live, now + 3600))
    node = pg_node(gt, sqldb, pairing.phone.uuid)
    node.start()       # a fresh node purges on its first verification
    try:
        token, watch, secret = pairing.issue(gt)
        assert verify_request(gt, node.port, token, watch, secret).status == 200
        rows = sqldb.sql("watchjti", "SELECT jti FROM gettoken_pairing_jti WHERE jti IN "
                                  "('%s', '%s')" % (stale, live)).split()
        assert rows == [live]
    finally:
        node.stop()


@pytest.mark.gt_log("GT01903", "GT01904", "GT01905")
def test_database_down_503_then_recovers(gt, pairing, sqldb, nodes):
    a, _ = nodes
    token, watch, secret = pairing.issue(gt)
    sqldb.stop()
    try:
        mark = a.log_mark()
        r = verify_request(gt, a.port, token, watch, secret)
        assert r.status == 503
        assert r.header("Retry-After") == "30"
        assert a.wait_log(mark, r"GT0190[35]: pairing verify refused \(503\)")
    finally:
        sqldb.start()
        assert sqldb.wait_ready()
    # dead pooled connections are dropped one request at a time; the token was
    # not used up by the failed attempts
    deadline = time.time() + 30
    while True:
        r = verify_request(gt, a.port, token, watch, secret)
        if r.status != 503 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, (r.status, a.log_tail())
    assert verify_request(gt, a.port, token, watch, secret).status == 403


@pytest.mark.gt_log("GT00809", "GT01903")
def test_missing_jti_table_503(gt, pairing, sqldb):
    sqldb.create_db("nojti", schema=None)
    node = gt.httpd([watch_vhost(gt, [(pairing.phone.uuid, gt.pki.maid_ec.cert_path)],
                                 sqldb.dbd_params("nojti"),
                                 db_driver=sqldb.driver)])
    node.start()
    try:
        token, watch, secret = pairing.issue(gt)
        r = verify_request(gt, node.port, token, watch, secret)
        assert r.status == 503 and r.header("Retry-After")
    finally:
        node.stop()


# --- last: the short-lifetime token issued at start-up has expired by now -------------

@pytest.mark.gt_log("GT01911")
def test_expired_after_lifetime_403(gt, pairing):
    token, watch, secret = pairing.short
    exp = decode_unverified(token)[1]["exp"]
    skew = 60
    wait = exp + skew + 2 - time.time()
    if wait > 0:
        time.sleep(wait)
    mark = pairing.h.log_mark()
    assert_refused(pairing, pairing.verify(gt, token, watch, secret), "expired", mark)
