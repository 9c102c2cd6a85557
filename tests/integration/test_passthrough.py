# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Everything that is not a GetToken for mod_gettoken reaches the backend
byte-for-byte."""
import hashlib
import http.server
import os
import plistlib
import threading
import time

import pytest

from gt_client import checkin_body, gettoken_fields, token_from_response, verify_maid_token
from gt_httpd import free_port


def assert_passed_through(h, resp, body, method="PUT", headers=None):
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.body == b"BACKEND-OK " + resp.test_id.encode() + b"\n"
    assert resp.header("X-Backend") == "cgi"
    got = h.record(resp.test_id)
    assert got is not None, "backend never saw the request"
    rec, seen = got
    assert rec["method"] == method
    assert seen == body, "body changed: %d bytes sent, %d seen" % (len(body), len(seen))
    assert rec["body_sha256"] == hashlib.sha256(body).hexdigest()
    for k, v in (headers or {}).items():
        assert rec["headers"].get(k.lower()) == v, (k, rec["headers"])
    return rec


AUTHENTICATE = {"MessageType": "Authenticate", "Topic": "com.apple.mgmt.External.x",
                "UDID": "0000FE00-1234567890ABCDEF", "DeviceName": "iPad", "Model": "iPad13,1"}
TOKEN_UPDATE = {"MessageType": "TokenUpdate", "Topic": "com.apple.mgmt.External.x",
                "UDID": "0000FE00-1234567890ABCDEF", "Token": os.urandom(32),
                "PushMagic": "5E0E3F4D-1111-2222-3333-444455556666", "UnlockToken": os.urandom(300)}


@pytest.mark.parametrize("msg", [AUTHENTICATE, TOKEN_UPDATE, {"MessageType": "CheckOut", "UDID": "U"}],
                         ids=["Authenticate", "TokenUpdate", "CheckOut"])
@pytest.mark.parametrize("fmt", ["xml", "binary"])
def test_other_checkin_messages_pass_through(server, client, msg, fmt):
    body = checkin_body(msg, fmt)
    hdrs = {"Mdm-Signature": "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCA", "X-Extra": "kept"}
    r = client(server, "dev_a").request(body, headers=hdrs)
    rec = assert_passed_through(server, r, body, headers=hdrs)
    assert rec["content_type"] == "application/x-apple-aspen-mdm-checkin"
    assert rec["content_length"] == str(len(body))


NOT_GETTOKEN = {
    "empty": b"",
    "binary-junk": bytes(range(256)) * 12,
    "json": b'{"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"}',
    "plist-array": plistlib.dumps(["GetToken", {"MessageType": "GetToken"}]),
    "plist-string": plistlib.dumps("GetToken"),
    "truncated-xml-plist": checkin_body(gettoken_fields(udid="U"))[:-30],
    "bplist-garbage": b"bplist00" + os.urandom(200),
    "MessageType-lowercase": checkin_body(gettoken_fields(udid="U") | {"MessageType": "gettoken"}),
    "MessageType-integer": checkin_body(gettoken_fields(udid="U") | {"MessageType": 1}),
    "no-MessageType": checkin_body({"TokenServiceType": "com.apple.maid", "UDID": "U"}),
}


@pytest.mark.parametrize("case", sorted(NOT_GETTOKEN))
def test_non_gettoken_bodies_pass_through(server, client, case):
    body = NOT_GETTOKEN[case]
    r = client(server, "dev_a").request(body)
    assert_passed_through(server, r, body)


# MessageType written so that the body never holds the eight bytes "GetToken":
# libplist still reads a GetToken, so the module must parse these (and not
# hand them on unparsed as it does with other check-ins).
SPELLED_GETTOKEN = {
    "char-ref": b"&#71;etToken", "hex-char-ref": b"GetT&#x6f;ken",
    "comment": b"Get<!-- -->Token", "cdata": b"Get<![CDATA[Tok]]>en",
}


def spelled(fields, spelling):
    body = checkin_body(fields)
    assert body.count(b"<string>GetToken</string>") == 1
    body = body.replace(b"<string>GetToken</string>", b"<string>" + spelling + b"</string>")
    assert b"GetToken" not in body
    return body


@pytest.mark.parametrize("case", sorted(SPELLED_GETTOKEN))
def test_gettoken_spelled_without_the_word_is_answered(server, client, gt, case):
    body = spelled(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id),
                   SPELLED_GETTOKEN[case])
    r = client(server, "dev_a").request(body)
    assert r.status == 200, (r.status, r.body[:300])
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key,
                      server.vhosts[0].uuid, time.time())


@pytest.mark.gt_log("GT01407")
def test_malformed_gettoken_spelled_without_the_word_is_refused(server, client):
    # no TokenServiceType: the 400 of a malformed GetToken, not the backend
    body = spelled({"MessageType": "GetToken", "UDID": "U"}, SPELLED_GETTOKEN["char-ref"])
    r = client(server, "dev_a").request(body)
    assert r.status == 400, (r.status, r.body[:300])
    assert b"BACKEND-OK" not in r.body


def test_get_passes_through(server, client):
    r = client(server, "dev_a").request(b"", method="GET")
    assert_passed_through(server, r, b"", method="GET")


@pytest.mark.parametrize("path", ["/mdm/plain", "/mdm/off", "/mdm/checkin/off"],
                         ids=["no-directive", "GetToken-Off", "Off-inside-On"])
def test_gettoken_where_not_enabled_passes_through(server, client, gt, path):
    body = checkin_body(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id))
    r = client(server, "dev_a").request(body, path=path)
    assert_passed_through(server, r, body)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_non_plist_body_streams_through(server, client, chunked):
    body = os.urandom(1024 * 1024 + 17)               # far beyond the 65536 default
    r = client(server, "dev_a").request(body, chunked=chunked)
    assert_passed_through(server, r, body)


@pytest.fixture(scope="module")
def small_limit_server(gt):
    h = gt.httpd([gt.vhost(directives="GetTokenMaxBodySize 1024")])
    try:
        yield h.start()
    finally:
        h.stop()


def padded_gettoken(gt, size):
    f = gettoken_fields(udid=gt.devices["dev_a"].enrollment_id, UserLongName="")
    base = len(checkin_body(f))
    f["UserLongName"] = "x" * (size - base)
    body = checkin_body(f)
    assert len(body) == size
    return body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_gettoken_over_max_body_size_passes_through_whole(small_limit_server, client, gt, chunked):
    body = padded_gettoken(gt, 5000)
    r = client(small_limit_server, "dev_a").request(body, chunked=chunked)
    assert_passed_through(small_limit_server, r, body)


def test_gettoken_at_max_body_size_is_answered(small_limit_server, client, gt):
    body = padded_gettoken(gt, 1024)
    r = client(small_limit_server, "dev_a").request(body)
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key,
                      small_limit_server.vhosts[0].uuid, time.time())


def test_gettoken_one_byte_over_max_body_size_passes_through(small_limit_server, client, gt):
    body = padded_gettoken(gt, 1025)
    r = client(small_limit_server, "dev_a").request(body)
    assert_passed_through(small_limit_server, r, body)


# --- mod_proxy backend, the usual deployment behind GetToken -----------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.seen.append((self.command, self.path, dict(self.headers), body))
        out = b"PROXIED-OK"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PUT

    def log_message(self, *a):
        pass


@pytest.fixture
def proxy_backend():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorder)
    _Recorder.seen = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_proxypass_backend(start_httpd, client, gt, proxy_backend):
    port = proxy_backend.server_address[1]
    h = start_httpd([gt.vhost(directives="""
        <Location /mdm/proxied>
            GetToken On
            ProxyPass http://127.0.0.1:%d/checkin
        </Location>""" % port)])
    c = client(h, "dev_a")
    body = checkin_body(AUTHENTICATE, "binary")
    r = c.request(body, path="/mdm/proxied", headers={"Mdm-Signature": "c2ln"})
    assert r.status == 200 and r.body == b"PROXIED-OK"
    assert len(_Recorder.seen) == 1
    method, path, hdrs, seen = _Recorder.seen[0]
    assert (method, path, seen) == ("PUT", "/checkin", body)
    assert hdrs.get("Mdm-Signature") == "c2ln"
    r = c.checkin(gettoken_fields(udid=gt.devices["dev_a"].enrollment_id), path="/mdm/proxied")
    verify_maid_token(token_from_response(r), gt.pki.maid_rsa.public_key, h.vhosts[0].uuid,
                      time.time())
    assert len(_Recorder.seen) == 1, "GetToken must not reach the proxied MDM"
