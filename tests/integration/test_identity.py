# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""GetTokenIdentity: the Mdm-Signature header, a header set by
a TLS-terminating proxy, and the order in which sources are tried.

A source that has nothing passes to the next; one that presents something
invalid ends the request with 401; an identity that is valid but not enrolled
for the message's enrollment is 403 (the binding)."""
import base64
import datetime
import http.client
import re
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import GT_LINE_RX, assert_refused
from gt_pki import Identity
from gt_sign import (DEVICE_OPTIONS, certs_only, client_cert_haproxy, client_cert_nginx,
                     client_cert_rfc9440, mdm_signature, mdm_signature_der, mdm_signature_openssl)


# one vhost per GetTokenIdentity setting, in one httpd
IDENTITY = {
    "sig": "GetTokenIdentity mdm-signature",
    "hdr": "GetTokenIdentity header Client-Cert header X-SSL-Client-Cert\n"
           "GetTokenTrustedProxy 127.0.0.1",
    "ssl_sig": "GetTokenIdentity ssl mdm-signature",
    "sig_ssl": "GetTokenIdentity mdm-signature ssl",
    "default": "",
}


@pytest.fixture(scope="module")
def ids(gt):
    names = sorted(IDENTITY)
    vhosts = [gt.vhost(directives=IDENTITY[n]) for n in names]
    h = gt.httpd(vhosts, loglevel="info", extra_global="LimitRequestFieldSize 131072")
    h.start()
    try:
        yield h, dict(zip(names, vhosts))
    finally:
        h.stop()


def body_for(gt, device, fmt="xml"):
    dev = gt.devices[device]
    if device == "dev_user":
        return checkin_body(gettoken_fields(enrollment_id=dev.enrollment_id), fmt)
    return checkin_body(gettoken_fields(udid=dev.enrollment_id), fmt)


def send(client, vhost, body, cert=None, headers=None):
    return client(vhost.port, cert).request(body, headers=headers or {})


def ok(resp, vhost, gt):
    tok = token_from_response(resp)
    verify_maid_token(tok, gt.pki.maid_rsa.public_key, vhost.uuid, time.time())
    return tok


# --- Mdm-Signature -----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["xml", "binary"])
@pytest.mark.parametrize("device", ["dev_a", "dev_b", "dev_user"])   # EC, RSA, user enrollment
def test_mdm_signature_token(ids, client, gt, device, fmt):
    h, v = ids
    body = body_for(gt, device, fmt)
    r = send(client, v["sig"], body, None, {"Mdm-Signature": mdm_signature(body, gt.devices[device])})
    ok(r, v["sig"], gt)
    assert h.record(r.test_id, timeout=0) is None


def test_mdm_signature_from_openssl_cms(ids, client, gt):
    h, v = ids
    body = body_for(gt, "dev_b")
    r = send(client, v["sig"], body, None, {"Mdm-Signature": mdm_signature_openssl(body, gt.devices["dev_b"])})
    ok(r, v["sig"], gt)


def test_mdm_signature_sha512_and_no_signed_attributes(ids, client, gt):
    h, v = ids
    body = body_for(gt, "dev_a")
    dev = gt.devices["dev_a"]
    for sig in (mdm_signature(body, dev, hash_alg=hashes.SHA512()),
                mdm_signature(body, dev, options=DEVICE_OPTIONS + (pkcs7.PKCS7Options.NoAttributes,))):
        ok(send(client, v["sig"], body, None, {"Mdm-Signature": sig}), v["sig"], gt)


@pytest.mark.gt_log("GT01203")
def test_mdm_signature_tampered_body_401(ids, client, gt):
    h, v = ids
    dev = gt.devices["dev_a"]
    body = body_for(gt, "dev_a")
    sig = mdm_signature(body, dev)
    tampered = body.replace(b"<dict>", b"<dict>\n")     # same plist, other bytes
    mark = h.log_mark()
    assert_refused(h, send(client, v["sig"], tampered, None, {"Mdm-Signature": sig}), 401,
            r"mdm-signature.*does not verify", mark)


@pytest.mark.gt_log("GT01203")
def test_mdm_signature_text_mode_401(ids, client, gt):
    """A signer that canonicalises line ends (S/MIME text) signed other bytes."""
    h, v = ids
    body = body_for(gt, "dev_a")
    assert b"\n" in body
    sig = mdm_signature(body, gt.devices["dev_a"], options=(pkcs7.PKCS7Options.DetachedSignature,))
    mark = h.log_mark()
    assert_refused(h, send(client, v["sig"], body, None, {"Mdm-Signature": sig}), 401, r"does not verify", mark)


def _attached(body, dev):
    return base64.b64encode(mdm_signature_der(body, dev, options=(pkcs7.PKCS7Options.Binary,))).decode()


GARBAGE = {
    "not-base64": (lambda body, gt: "this is not base64!", r"not base64"),
    "base64-not-cms": (lambda body, gt: base64.b64encode(b"hello world").decode(), r"not a DER CMS"),
    "certificate-not-cms": (lambda body, gt: client_cert_haproxy(gt.devices["dev_a"]), r"not a DER CMS"),
    "two-headers-merged": (lambda body, gt: mdm_signature(body, gt.devices["dev_a"]) + ", x", r"not base64"),
    "no-signer": (lambda body, gt: certs_only(gt.devices["dev_a"]), r"no signer"),
    "two-signers": (lambda body, gt: mdm_signature(body, gt.devices["dev_a"], gt.devices["dev_b"]),
                    r"2 signers"),
    "signer-cert-left-out": (lambda body, gt: mdm_signature(
        body, gt.devices["dev_a"], options=DEVICE_OPTIONS + (pkcs7.PKCS7Options.NoCerts,)),
        r"does not verify|signer"),
    "not-detached": (lambda body, gt: _attached(body, gt.devices["dev_a"]), r"not detached"),
    "truncated": (lambda body, gt: base64.b64encode(mdm_signature_der(body, gt.devices["dev_a"])[:-10]).decode(),
                  r"not a DER CMS"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
@pytest.mark.gt_log("GT01203")
def test_mdm_signature_invalid_401(ids, client, gt, case):
    h, v = ids
    make, reason = GARBAGE[case]
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    r = send(client, v["sig"], body, None, {"Mdm-Signature": make(body, gt)})
    line = assert_refused(h, r, 401, r"\(401\).*mdm-signature.*(%s)" % reason, mark)
    assert "BEGIN" not in line and "MII" not in line      # no decoded material logged


@pytest.mark.gt_log("GT01203")
def test_mdm_signature_oversized_401(ids, client, gt):
    h, v = ids
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    r = send(client, v["sig"], body, None, {"Mdm-Signature": "A" * 40000})
    assert_refused(h, r, 401, r"over the", mark)


@pytest.mark.parametrize("signer,target", [("dev_unenrolled", "dev_unenrolled"),
                                           ("dev_b", "dev_a"), ("dev_rogue", "dev_rogue")])
@pytest.mark.gt_log("GT01303")
def test_mdm_signature_valid_but_not_enrolled_403(ids, client, gt, signer, target):
    h, v = ids
    body = body_for(gt, target)
    mark = h.log_mark()
    r = send(client, v["sig"], body, None, {"Mdm-Signature": mdm_signature(body, gt.devices[signer])})
    line = assert_refused(h, r, 403, re.escape(gt.devices[target].enrollment_id), mark)
    assert gt.devices[signer].sha256 in line and "mdm-signature" in line


@pytest.mark.gt_log("GT01203")
def test_mdm_signature_expired_signer_401(ids, client, gt):
    h, v = ids
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old")]))
            .issuer_name(gt.pki.ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .sign(gt.pki.ca_key, hashes.SHA256()))
    old = Identity("old", key, cert, "", "")
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    assert_refused(h, send(client, v["sig"], body, None, {"Mdm-Signature": mdm_signature(body, old)}), 401,
            r"expired", mark)


@pytest.mark.gt_log("GT01204")
def test_no_identity_401(ids, client, gt):
    h, v = ids
    for name, cert in (("sig", None), ("sig", "dev_a"), ("hdr", "dev_a"), ("ssl_sig", None)):
        mark = h.log_mark()
        assert_refused(h, send(client, v[name], body_for(gt, "dev_a"), cert), 401, r"no device identity", mark)


@pytest.mark.gt_log("GT01204")
def test_ssl_only_ignores_mdm_signature(ids, client, gt):
    """The default (ssl) does not look at the header at all."""
    h, v = ids
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    r = send(client, v["default"], body, None, {"Mdm-Signature": mdm_signature(body, gt.devices["dev_a"])})
    assert_refused(h, r, 401, r"no device identity", mark)


def test_non_gettoken_passes_with_any_signature(ids, client, gt):
    """Identity is only demanded of GetToken: other messages pass untouched."""
    h, v = ids
    body = checkin_body({"MessageType": "Authenticate", "UDID": "U", "Topic": "t"})
    r = send(client, v["sig"], body, None, {"Mdm-Signature": "garbage"})
    assert r.status == 200 and r.body.startswith(b"BACKEND-OK")
    rec, got = h.record(r.test_id)
    assert got == body and rec["headers"]["mdm-signature"] == "garbage"


# --- order of sources ----------------------------------------------------------
@pytest.mark.parametrize("vh,winner", [("ssl_sig", "dev_a"), ("sig_ssl", "dev_b")])
@pytest.mark.gt_log("GT01303")
def test_first_source_that_presents_wins(ids, client, gt, vh, winner):
    """TLS client certificate dev_a, Mdm-Signature by dev_b: the first
    configured source decides whose enrollment the request may speak for."""
    h, v = ids
    loser = "dev_b" if winner == "dev_a" else "dev_a"
    for target, status in ((winner, 200), (loser, 403)):
        body = body_for(gt, target)
        mark = h.log_mark()
        r = send(client, v[vh], body, "dev_a", {"Mdm-Signature": mdm_signature(body, gt.devices["dev_b"])})
        if status == 200:
            ok(r, v[vh], gt)
        else:
            assert_refused(h, r, 403, re.escape(gt.devices[target].enrollment_id), mark)


def test_absent_source_passes_to_next(ids, client, gt):
    h, v = ids
    body = body_for(gt, "dev_a")
    ok(send(client, v["sig_ssl"], body, "dev_a"), v["sig_ssl"], gt)             # no header: ssl
    ok(send(client, v["ssl_sig"], body, None,                                    # no cert: signature
            {"Mdm-Signature": mdm_signature(body, gt.devices["dev_a"])}), v["ssl_sig"], gt)
    ok(send(client, v["hdr"], body, None,                                        # 1st header absent
            {"X-SSL-Client-Cert": client_cert_nginx(gt.devices["dev_a"])}), v["hdr"], gt)


@pytest.mark.gt_log("GT01203")
def test_invalid_source_does_not_fall_through(ids, client, gt):
    """A source that presents something invalid is a 401, even though a
    later source would have had a valid identity."""
    h, v = ids
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    assert_refused(h, send(client, v["sig_ssl"], body, "dev_a", {"Mdm-Signature": "bm90IGNtcw=="}), 401,
            r"mdm-signature", mark)
    mark = h.log_mark()
    assert_refused(h, send(client, v["hdr"], body, None, {"Client-Cert": ":bm9wZQ==:",
                                                    "X-SSL-Client-Cert": client_cert_nginx(gt.devices["dev_a"])}),
            401, r"header Client-Cert", mark)


# --- proxy header --------------------------------------------------------------
FORMS = {"rfc9440": client_cert_rfc9440, "nginx-escaped-pem": client_cert_nginx,
         "haproxy-base64-der": client_cert_haproxy}


@pytest.mark.parametrize("header", ["Client-Cert", "X-SSL-Client-Cert"])
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("device", ["dev_a", "dev_b", "dev_user"])
def test_proxy_header_token(ids, client, gt, form, header, device):
    h, v = ids
    r = send(client, v["hdr"], body_for(gt, device), None, {header: FORMS[form](gt.devices[device])})
    ok(r, v["hdr"], gt)


@pytest.mark.gt_log("GT01303")
def test_proxy_header_not_enrolled_403(ids, client, gt):
    h, v = ids
    mark = h.log_mark()
    r = send(client, v["hdr"], body_for(gt, "dev_unenrolled"), None,
             {"Client-Cert": client_cert_rfc9440(gt.devices["dev_unenrolled"])})
    line = assert_refused(h, r, 403, r"header Client-Cert", mark)
    assert gt.devices["dev_unenrolled"].sha256 in line


BAD_HEADERS = {
    "garbage": ("hello world", r"neither"),
    "sf-binary-unterminated": (lambda gt: client_cert_rfc9440(gt.devices["dev_a"])[:-1], r"RFC 9440"),
    "sf-binary-not-a-cert": (":aGVsbG8=:", r"not a DER X\.509"),
    "two-certificates": (lambda gt: client_cert_nginx(gt.devices["dev_a"]) + client_cert_nginx(gt.devices["dev_b"]),
                         r"more than one"),
    "broken-escape": ("-----BEGIN%20CERTIFICATE%2", r"escape"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
@pytest.mark.gt_log("GT01203")
def test_proxy_header_invalid_401(ids, client, gt, case):
    h, v = ids
    value, reason = BAD_HEADERS[case]
    value = value(gt) if callable(value) else value
    mark = h.log_mark()
    assert_refused(h, send(client, v["hdr"], body_for(gt, "dev_a"), None, {"Client-Cert": value}), 401,
            r"\(401\).*header Client-Cert.*(%s)" % reason, mark)


@pytest.mark.gt_log("GT01203")
def test_proxy_header_repeated_401(ids, gt):
    """Two Client-Cert fields (httpd joins them with ', ') are not one certificate."""
    h, v = ids
    vh = v["hdr"]
    conn = http.client.HTTPSConnection("127.0.0.1", vh.port, context=gt.client(vh.port).ctx, timeout=20)
    body = body_for(gt, "dev_a")
    mark = h.log_mark()
    try:
        conn.putrequest("PUT", "/mdm/checkin")
        conn.putheader("Client-Cert", client_cert_rfc9440(gt.devices["dev_a"]))
        conn.putheader("Client-Cert", client_cert_rfc9440(gt.devices["dev_a"]))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.status == 401
    lines = h.wait_log(mark, GT_LINE_RX)
    assert len(lines) == 1 and re.search(r"header Client-Cert.*RFC 9440", lines[0]), lines


# --- configuration -------------------------------------------------------------
@pytest.mark.parametrize("identity,rx", [
    ("mdm-signature", r"GetTokenIdentity mdm-signature.*GetTokenEnrollmentSQL"),
    ("ssl header Client-Cert", r"GetTokenIdentity header Client-Cert.*GetTokenEnrollmentSQL"),
])
def test_signature_and_header_need_the_binding(gt, identity, rx):
    h = gt.httpd([gt.vhost(directives="GetTokenIdentity %s\nGetTokenEnrollmentSQL none" % identity,
                           verify_client="require", ca_file=gt.pki.ca_cert_path)])
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    assert re.search(rx, out), out
    assert h.vhosts[0].server_name in out, "the vhost is not named: " + out


@pytest.mark.parametrize("identity,rx", [
    ("header", r"GetTokenIdentity"),
    ("header Bad:Name", r"GetTokenIdentity header 'Bad:Name'"),
    ("client-cert", r"GetTokenIdentity.*client-cert"),
])
def test_bad_identity_directive(gt, identity, rx):
    h = gt.httpd([gt.vhost(directives="GetTokenIdentity %s" % identity)])
    rc, out = h.configtest()
    assert rc != 0 and "Syntax OK" not in out, out
    assert re.search(rx, out), out
