# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""GetTokenSigningKey as an RFC 7512 pkcs11: URI: the maid key lives in a
(software) HSM, SoftHSM 2, reached through OpenSSL's pkcs11 engine.  httpd
signs with it but never holds the private key: the token file store is the
only place it exists."""
import os
import time

import pytest

from gt_client import gettoken_fields, token_from_response, verify_maid_token
from gt_hsm import PIN, SOFTHSM_MODULE, pkcs11_uri, softhsm_token


@pytest.fixture(scope="module")
def hsm(gt):
    """A SoftHSM token 'mdm' holding the test maid RSA key as object 'abm-token'."""
    return softhsm_token(os.path.join(gt.dir, "softhsm"),
                         {"abm-token": (gt.pki.maid_rsa.key, "a1")})


def uri(obj="abm-token", pin=PIN, module=True):
    return pkcs11_uri(obj, pin, module)


def test_maid_token_signed_inside_the_hsm(hsm, gt, client, start_httpd, monkeypatch):
    monkeypatch.setenv("SOFTHSM2_CONF", hsm)
    v = gt.vhost(signing_key='"%s"' % uri())
    h = start_httpd([v])
    dev = gt.devices["dev_a"]
    jtis = set()
    # several requests: every child process signs through its own session
    for _ in range(6):
        r = client(h, "dev_a").checkin(gettoken_fields(udid=dev.enrollment_id))
        claims = verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key,
                                   v.uuid, time.time())
        jtis.add(claims["jti"])
    assert len(jtis) == 6
    assert "pin-value" not in h.read_error_log()


@pytest.mark.parametrize("case,bad_uri", [
    ("wrong-pin", uri(pin="0000")),
    ("no-such-object", uri(obj="nothing-here")),
])
def test_bad_pkcs11_uri_stops_configtest(hsm, gt, monkeypatch, case, bad_uri):
    monkeypatch.setenv("SOFTHSM2_CONF", hsm)
    h = gt.httpd([gt.vhost(signing_key='"%s"' % bad_uri)])
    rc, out = h.configtest()
    assert rc != 0, out
    assert "GetTokenSigningKey" in out and "pkcs11" in out, out
    assert PIN not in out and "0000" not in out.replace("0000-", ""), "a PIN was logged"


SECRET = "SECRET123"


@pytest.mark.parametrize("case,bad_uri", [
    # path attribute, a SoftHSM token that has no such object
    ("path-pin-softhsm", "pkcs11:token=mdm;object=nothing-here;pin-value=%s?module-path=%s"
     % (SECRET, SOFTHSM_MODULE)),
    # path attribute, a token that does not exist at all (default module)
    ("path-pin-no-token", "pkcs11:token=t;object=k;pin-value=%s" % SECRET),
    # mixed case, percent-encoded name, pin-source and a query PIN together
    ("mixed-forms", "pkcs11:token=mdm;object=k;Pin%%2DValue=%s?PIN-Source=/%s&pin-value=%s"
     "&module-path=%s" % (SECRET, SECRET, SECRET, SOFTHSM_MODULE)),
])
@pytest.mark.gt_log("GT00901")
def test_pin_never_logged_when_start_up_fails(hsm, gt, monkeypatch, case, bad_uri):
    """Whatever form the PIN takes in the URI, neither `apachectl -t` nor a
    failed start-up prints it, even at LogLevel trace8."""
    monkeypatch.setenv("SOFTHSM2_CONF", hsm)
    h = gt.httpd([gt.vhost(signing_key='"%s"' % bad_uri)], loglevel="trace8")
    rc, out = h.configtest()
    assert rc != 0, out
    assert "GetTokenSigningKey" in out and "(hidden)" in out, out
    with pytest.raises(RuntimeError) as failed:
        h.start()
    logged = out + str(failed.value) + h.read_error_log()
    assert "GetTokenSigningKey" in h.read_error_log()
    assert SECRET not in logged, "a PIN was logged"


def test_pin_from_pin_source_file(hsm, gt, client, start_httpd, monkeypatch):
    """pin-source names a file holding the PIN: the key signs, the file's
    name is hidden in the log like a PIN."""
    monkeypatch.setenv("SOFTHSM2_CONF", hsm)
    pin_file = os.path.join(gt.dir, "softhsm", "pin.txt")
    with open(pin_file, "w") as f:
        f.write(PIN + "\n")
    os.chmod(pin_file, 0o600)
    u = "pkcs11:token=mdm;object=abm-token;type=private?pin-source=file:%s&module-path=%s" % (
        pin_file, SOFTHSM_MODULE)
    v = gt.vhost(signing_key='"%s"' % u)
    h = start_httpd([v])
    dev = gt.devices["dev_a"]
    r = client(h, "dev_a").checkin(gettoken_fields(udid=dev.enrollment_id))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, v.uuid, time.time())
