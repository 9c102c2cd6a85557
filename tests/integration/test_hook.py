# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The service hook, exercised through tests/modules' echo module:
TokenServiceType com.example.echo -> TokenData "echo:<enrollment id>:<Message>";
TokenParameters {"Status": "429"} -> the hook returns 429 and the request ends with it."""
import os
import time

import pytest

from gt_client import gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import ECHO_SO


@pytest.fixture(scope="module")
def echo_server(gt):
    assert os.path.exists(ECHO_SO), "echo module not built (make check builds it): " + ECHO_SO
    yield from gt.served(load_echo=True, loglevel="info")


@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_echo_service_with_message(echo_server, client, gt, fmt):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(echo_server, "dev_a").checkin(
        gettoken_fields(service="com.example.echo", udid=udid, params={"Message": "hello wörld"}), fmt=fmt)
    assert token_from_response(r) == "echo:%s:hello wörld" % udid
    assert echo_server.record(r.test_id, timeout=0) is None


def test_echo_service_without_parameters(echo_server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(echo_server, "dev_a").checkin(gettoken_fields(service="com.example.echo", udid=udid))
    assert token_from_response(r) == "echo:%s:" % udid


def test_echo_service_user_enrollment(echo_server, client, gt):
    eid = gt.devices["dev_user"].enrollment_id
    r = client(echo_server, "dev_user").checkin(
        gettoken_fields(service="com.example.echo", enrollment_id=eid, params={"Message": "m"}))
    assert token_from_response(r) == "echo:%s:m" % eid


def test_echo_service_custom_log(echo_server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(echo_server, "dev_a").checkin(gettoken_fields(service="com.example.echo", udid=udid))
    assert r.status == 200
    lines = echo_server.access_lines(r.test_id)
    assert lines and " 200 svc=com.example.echo enr=%s " % udid in lines[0], lines


def test_hook_status_ends_request(echo_server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(echo_server, "dev_a").checkin(
        gettoken_fields(service="com.example.echo", udid=udid, params={"Status": "429"}))
    assert r.status == 429, (r.status, r.body[:200])
    assert b"TokenData" not in r.body
    assert echo_server.record(r.test_id, timeout=0) is None


@pytest.mark.gt_log("GT01204", "GT01303")
def test_hook_services_still_require_identity(echo_server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    r = client(echo_server, None).checkin(gettoken_fields(service="com.example.echo", udid=udid))
    assert r.status == 401
    r = client(echo_server, "dev_unenrolled").checkin(gettoken_fields(service="com.example.echo", udid=udid))
    assert r.status == 403


@pytest.mark.gt_log("GT01401")
def test_builtin_and_unknown_services_alongside_echo(echo_server, client, gt):
    udid = gt.devices["dev_a"].enrollment_id
    c = client(echo_server, "dev_a")
    r = c.checkin(gettoken_fields(udid=udid))
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, echo_server.vhosts[0].uuid, time.time())
    r = c.checkin(gettoken_fields(service="com.example.nobody", udid=udid))
    assert r.status == 400
