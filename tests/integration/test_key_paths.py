# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Key locations other than a plain path, in every build: a file: URI goes
to OpenSSL's key store like a path; a pkcs11: URI that no loaded provider
opens goes to libp11's engine where OpenSSL still has ENGINE, and is
refused naming pkcs11-provider where it has not (OpenSSL 4, or the
deprecated API switched off)."""
import os
import subprocess
import time

from gt_client import gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import GETTOKEN_SO
from gt_hsm import pkcs11_uri


def module_has_engine():
    """Whether the module under test was built with the ENGINE route (it
    then imports ENGINE_load_private_key from libcrypto)."""
    out = subprocess.run(["nm", "-D", "--undefined-only", GETTOKEN_SO],
                         capture_output=True, text=True, check=True).stdout
    return "ENGINE_load_private_key" in out


def test_file_uri_signs_like_a_path(gt, client, start_httpd):
    v = gt.vhost(signing_key="file:" + gt.pki.maid_ec.key_path)
    h = start_httpd([v])
    with client(h, "dev_a") as c:
        r = c.checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    verify_maid_token(token_from_response(r), gt.pki.maid_ec.public_key, v.uuid, time.time())


def test_relative_path_with_a_colon_is_a_file(gt):
    """"keys/abm:2026.pem" has no URI scheme (a '/' comes first): it is a
    file under ServerRoot, and a missing one is named as a key file."""
    h = gt.httpd([gt.vhost(signing_key="keys/abm:2026.pem")])
    rc, out = h.configtest()
    assert rc != 0, out
    assert "GetTokenSigningKey %s in " % os.path.join(h.dir, "keys/abm:2026.pem") in out, out
    assert "the key file cannot be read" in out, out


def test_pkcs11_uri_without_a_provider(gt):
    h = gt.httpd([gt.vhost(signing_key='"%s"' % pkcs11_uri("no-such-object", pin="SECRET9"))])
    rc, out = h.configtest()
    assert rc != 0, out
    lines = [l for l in out.splitlines() if "gettoken:" in l]
    assert len(lines) == 1 and "GetTokenSigningKey pkcs11:" in lines[0], out
    assert "SECRET9" not in out
    if module_has_engine():
        assert "no private key matches the pkcs11 URI" in lines[0], out
    else:
        assert "no loaded OpenSSL provider opens pkcs11: locations" in lines[0], out
        assert "GetTokenKeyProvider" in lines[0], out
