# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Configuration: misconfigurations stop `apache2 -t` and start-up
with a line naming the directive and the vhost; per-vhost organisations."""
import os
import re
import subprocess
import time
import uuid

import pytest

from gt_httpd import httpd_env
from gt_client import (checkin_body, gettoken_fields, signature_valid, token_from_response,
                       verify_maid_token, decode_unverified)


def assert_config_refused(h, directive_rx):
    rc, out = h.configtest()
    assert rc != 0, "apache2 -t accepted it:\n" + out
    assert "Syntax OK" not in out
    assert re.search(directive_rx, out), "no line names /%s/:\n%s" % (directive_rx, out)
    vh = h.vhosts[0]
    where = r"%s|:%d\b|line \d+ of" % (re.escape(vh.server_name), vh.port)
    assert re.search(where, out), "the vhost is not named:\n" + out
    return out


BAD = {
    "uuid-garbage": (dict(uuid="not-a-uuid"), r"GetTokenServerUUID"),
    "uuid-short": (dict(uuid="3f2b1c4d-1234-4abc-8def-0123456789a"), r"GetTokenServerUUID"),
    "uuid-extra-chars": (dict(uuid="3f2b1c4d-1234-4abc-8def-0123456789abc"), r"GetTokenServerUUID"),
    "key-missing-file": (dict(signing_key="/nonexistent/gettoken/key.pem"), r"GetTokenSigningKey"),
    "key-not-a-key": (dict(signing_key="/etc/hostname"), r"GetTokenSigningKey"),
    "key-rsa-1024": ("rsa1024", r"GetTokenSigningKey"),
    "key-is-a-certificate": ("cert-as-key", r"GetTokenSigningKey"),
    "no-key": (dict(signing_key=None), r"GetTokenSigningKey"),
    "cert-mismatch": ("mismatch", r"GetTokenSigningCertificate"),
}


def bad_vhost(gt, case):
    spec = BAD[case][0]
    if spec == "rsa1024":
        return gt.vhost(signing_key=gt.pki.rsa1024.key_path)
    if spec == "cert-as-key":
        return gt.vhost(signing_key=gt.pki.maid_rsa.cert_path)
    if spec == "mismatch":
        return gt.vhost(directives="GetTokenSigningCertificate %s" % gt.pki.maid_rsa2.cert_path)
    return gt.vhost(**spec)


@pytest.mark.parametrize("case", sorted(BAD))
def test_misconfiguration_stops_configtest(gt, case):
    assert_config_refused(gt.httpd([bad_vhost(gt, case)]), BAD[case][1])


@pytest.mark.parametrize("case", ["key-rsa-1024", "cert-mismatch", "uuid-garbage"])
@pytest.mark.gt_log("GT00901", "GT00902")
def test_misconfiguration_stops_startup(gt, case):
    h = gt.httpd([bad_vhost(gt, case)])
    with pytest.raises(RuntimeError) as failed:
        h.start(timeout=5)
    assert not h._port_open(h.port)
    # the message comes from apache2's own output or the error log, not the config text
    assert re.search(BAD[case][1], str(failed.value)), str(failed.value)


def test_sql_without_mod_dbd_stops_configtest(gt):
    v = gt.vhost(db="")     # no DBDriver/DBDParams, mod_dbd not loaded, default SQL
    h = gt.httpd([v], omit_modules=("dbd",))
    assert_config_refused(h, r"GetTokenEnrollmentSQL|mod_dbd")


def test_valid_config_passes_configtest(gt):
    rc, out = gt.httpd().configtest()
    assert rc == 0 and "Syntax OK" in out, out


def test_vhost_without_gettoken_needs_no_key(gt, start_httpd, client):
    """GetToken On without a key is an error only where GetToken is on."""
    on, off = gt.vhost(), gt.vhost(gettoken=False, signing_key=None, uuid=None)
    h = start_httpd([on, off])
    body = checkin_body(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    r = client(off.port, "dev_a").request(body)
    assert r.status == 200 and r.body.startswith(b"BACKEND-OK")
    assert h.record(r.test_id)[1] == body
    r = client(on.port, "dev_a").request(body)
    token_from_response(r)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_matching_signing_certificate(gt, start_httpd, client, kind):
    ident = gt.pki.maid_rsa if kind == "rsa" else gt.pki.maid_ec
    h = start_httpd([gt.vhost(signing_key=ident.key_path,
                              directives="GetTokenSigningCertificate %s" % ident.cert_path)])
    r = client(h, "dev_a").checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    # verified against the public key of the certificate registered with ABM/ASM
    verify_maid_token(token_from_response(r), ident.cert.public_key(), h.vhosts[0].uuid, time.time())


def test_two_vhosts_sign_with_their_own_key_and_uuid(gt, start_httpd, client):
    a = gt.vhost(signing_key=gt.pki.maid_rsa.key_path, uuid=str(uuid.uuid4()))
    b = gt.vhost(signing_key=gt.pki.maid_ec.key_path, uuid=str(uuid.uuid4()))
    c2 = gt.vhost(signing_key=gt.pki.maid_rsa2.key_path, uuid=str(uuid.uuid4()))
    start_httpd([a, b, c2])
    udid = gt.devices["dev_a"].enrollment_id
    keys = {a.port: gt.pki.maid_rsa, b.port: gt.pki.maid_ec, c2.port: gt.pki.maid_rsa2}
    for v in (a, b, c2, a):
        tok = token_from_response(client(v.port, "dev_a").checkin(gettoken_fields(udid=udid)))
        verify_maid_token(tok, keys[v.port].public_key, v.uuid, time.time())
        for other, ident in keys.items():
            if other != v.port and type(ident.public_key) is type(keys[v.port].public_key):
                assert not signature_valid(tok, ident.public_key)


def test_settings_inherited_from_main_server(gt, start_httpd, client):
    server_uuid = str(uuid.uuid4())
    v = gt.vhost(signing_key=None, uuid=None)
    h = start_httpd([v], extra_global="GetTokenServerUUID %s\nGetTokenSigningKey %s"
                    % (server_uuid, gt.pki.maid_ec.key_path))
    r = client(h, "dev_a").checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, server_uuid, time.time())


@pytest.mark.gt_log("GT00806")
def test_uppercase_uuid_accepted(gt, start_httpd, client):
    u = str(uuid.uuid4()).upper()
    h = start_httpd([gt.vhost(uuid=u)])
    r = client(h, "dev_a").checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    claims = decode_unverified(token_from_response(r))[1]
    assert claims["iss"].lower() == u.lower()


# --- GetTokenEnrollmentSQL none: only a chain mod_ssl verified counts ----------
@pytest.fixture(scope="module")
def nobind_server(gt):
    h = gt.httpd([gt.vhost(db="", ca_file=gt.pki.ca_cert_path,
                           directives="GetTokenEnrollmentSQL none")], omit_modules=("dbd",))
    try:
        yield h.start()
    finally:
        h.stop()


@pytest.mark.gt_log("GT01301")
def test_enrollment_sql_none_warns_at_startup(nobind_server):
    lines = [l for l in nobind_server.read_error_log().splitlines()
             if re.search(r"GetTokenEnrollmentSQL", l)]
    assert lines and re.search(r":(warn|error|crit|alert|emerg)\]", lines[0]), lines


def test_enrollment_sql_none_accepts_verified_chain(nobind_server, client, gt):
    # dev_unenrolled has no DB row, but its chain verifies against SSLCACertificateFile
    dev = gt.devices["dev_unenrolled"]
    r = client(nobind_server, "dev_unenrolled").checkin(gettoken_fields(udid=dev.enrollment_id))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, nobind_server.vhosts[0].uuid,
                      time.time())


@pytest.mark.gt_log("GT01203")
def test_enrollment_sql_none_refuses_unverified_chain(nobind_server, client, gt):
    dev = gt.devices["dev_rogue"]       # optional_no_ca let it in; its chain did not verify
    r = client(nobind_server, "dev_rogue").checkin(gettoken_fields(udid=dev.enrollment_id))
    assert r.status in (401, 403), r.status
    assert b"TokenData" not in r.body


@pytest.mark.gt_log("GT00804")
def test_stop_works_when_the_key_became_unreadable(gt):
    """apachectl stop re-reads the configuration: a key (or HSM) that went
    away since start-up must not keep the server from stopping."""
    import shutil
    key = os.path.join(gt.dir, "moving-key.pem")
    shutil.copyfile(gt.pki.maid_rsa.key_path, key)
    h = gt.httpd([gt.vhost(signing_key=key)]).start()
    pid = h.pid
    os.remove(key)
    p = subprocess.run(["/usr/sbin/apache2", "-f", h.conf, "-k", "stop"], capture_output=True,
                       text=True, timeout=60, env=httpd_env())
    assert p.returncode == 0, p.stdout + p.stderr
    deadline = time.time() + 10
    while time.time() < deadline and h._alive(pid):
        time.sleep(0.1)
    assert not h._alive(pid), "httpd still running after -k stop"
    # and the config test still reports the missing key
    rc, out = h.configtest()
    assert rc != 0 and "GetTokenSigningKey" in out, out
