# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""com.apple.maid tokens: the success answers and the token format a device's MDM relies on."""
import re
import threading
import time

import pytest

from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token, decode_unverified
from gt_httpd import GT_LINE_RX


def now():
    return time.time()


def maid(server, client, gt, device="dev_a", fmt="xml", **fields):
    dev = gt.devices[device]
    if "udid" not in fields and "enrollment_id" not in fields:
        fields["udid"] = dev.enrollment_id
    c = client(server, device)
    return c.checkin(gettoken_fields(**fields), fmt=fmt)


@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_maid_token_device_enrollment(server, client, gt, fmt):
    r = maid(server, client, gt, fmt=fmt)
    tok = token_from_response(r)
    claims = verify_maid_token(tok, gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())
    assert decode_unverified(tok)[0] == {"alg": "RS256", "typ": "JWT"}
    assert claims["service_type"] == "com.apple.maid"
    # answered by mod_gettoken: the backend never saw it
    assert server.record(r.test_id, timeout=0) is None


def test_maid_token_user_enrollment(server, client, gt):
    dev = gt.devices["dev_user"]
    r = maid(server, client, gt, device="dev_user", enrollment_id=dev.enrollment_id)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())


@pytest.mark.parametrize("extra", [
    # macOS user channel of a device enrollment
    {"UserID": "A1B2C3D4-0000-1111-2222-333344445555", "UserShortName": "alice",
     "UserLongName": "Alice Example"},
    # Shared iPad user channel
    {"UserID": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "UserShortName": "alice@example.org"},
], ids=["macos-user-channel", "shared-ipad"])
def test_maid_token_user_channel_device_enrollment(server, client, gt, extra):
    r = maid(server, client, gt, fmt="binary", **extra)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())
    lines = server.access_lines(r.test_id)
    assert lines and " enr=%s " % gt.devices["dev_a"].enrollment_id in lines[0], lines


def test_maid_token_user_enrollment_user_channel(server, client, gt):
    dev = gt.devices["dev_user"]
    r = maid(server, client, gt, device="dev_user", enrollment_id=dev.enrollment_id,
             EnrollmentUserID="E5F6A7B8-0000-1111-2222-333344445555", UserShortName="bob",
             UserLongName="Bob Example")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())
    lines = server.access_lines(r.test_id)
    assert lines and " enr=%s " % dev.enrollment_id in lines[0], lines


def test_maid_token_with_token_parameters(server, client, gt):
    r = maid(server, client, gt, params={"SomeFutureKey": "x"})
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())


def test_post_accepted(server, client, gt):
    c = client(server, "dev_a")
    body = checkin_body(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    r = c.request(body, method="POST")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())
    assert server.record(r.test_id, timeout=0) is None


def test_rsa_client_certificate(server, client, gt):
    # dev_b presents an RSA device identity (dev_a an EC one)
    r = maid(server, client, gt, device="dev_b")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())


def test_chunked_gettoken_request(server, client, gt):
    c = client(server, "dev_a")
    body = checkin_body(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    r = c.request(body, chunked=True)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, server.vhosts[0].uuid, now())


def test_jti_unique_and_fresh_over_many_requests(server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    body = checkin_body(gettoken_fields(udid=udid))
    pub, iss = gt.pki.maid_rsa.public_key, server.vhosts[0].uuid
    jtis, errors = [], []

    def worker(n):
        c = gt.client(server.port, "dev_a")
        try:
            for _ in range(n):
                r = c.request(body)
                jtis.append(verify_maid_token(token_from_response(r), pub, iss, now())["jti"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()

    worker(100)                                  # one keep-alive connection
    threads = [threading.Thread(target=worker, args=(25,)) for _ in range(4)]
    for t in threads:                            # and four at once
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert len(jtis) == 200
    assert len(set(j.lower() for j in jtis)) == 200


def test_custom_log_has_service_enrollment_and_jti(server, client, gt):
    r = maid(server, client, gt)
    claims = decode_unverified(token_from_response(r))[1]
    lines = server.access_lines(r.test_id)
    assert len(lines) == 1, lines
    assert " 200 svc=com.apple.maid enr=%s jti=%s " % (gt.devices["dev_a"].enrollment_id, claims["jti"]) in lines[0]


@pytest.mark.gt_log("GT01401")
def test_no_token_or_key_material_in_logs(server, client, gt):
    """Tokens are bearer credentials: not in the error log, even at gettoken:debug."""
    tokens = [token_from_response(maid(server, client, gt)) for _ in range(3)]
    maid(server, client, gt, service="com.example.unknown")      # a failure, too
    time.sleep(0.3)
    log = server.read_error_log()
    assert re.search(GT_LINE_RX, log, re.M)     # the module did log (at debug)
    for tok in tokens:
        for part in [tok] + tok.split("."):
            assert part not in log
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.", log)
    assert "PRIVATE KEY" not in log
    key_pem = open(gt.pki.maid_rsa.key_path).read().splitlines()
    for line in key_pem[1:-1]:
        assert line not in log
    with open(server.access_log) as f:
        access = f.read()
    for tok in tokens:
        assert tok.split(".")[2] not in access


@pytest.fixture(scope="module")
def ec_server(gt):
    yield from gt.served([gt.vhost(signing_key=gt.pki.maid_ec.key_path)])


@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_maid_token_es256_with_ec_key(ec_server, client, gt, fmt):
    r = maid(ec_server, client, gt, fmt=fmt)
    tok = token_from_response(r)
    verify_maid_token(tok, gt.pki.maid_ec.public_key, ec_server.vhosts[0].uuid, now())
    assert decode_unverified(tok)[0] == {"alg": "ES256", "typ": "JWT"}


def test_ssl_verify_client_require_with_ca(start_httpd, client, gt):
    h = start_httpd([gt.vhost(verify_client="require", ca_file=gt.pki.ca_cert_path)])
    r = maid(h, client, gt)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, h.vhosts[0].uuid, now())
